//! The guest's attester for this boot: the simulated one in plain mode, the PSP's under SNP, the TDX module's and
//! the quote-generation service's under TDX. One value serves the key dance and then the service's client
//! evidence, so under SNP one message channel (one VMPCK0 sequence) is used for the whole boot.

use alloc::vec::Vec;

use loader::{AttestError, Attester, SimulatedAttester, SnpAttester, TdxAttester};
use protocol::tee::Tee;

use crate::snp::guest_request::GhcbGuestRequest;
use crate::tdx::quote::TdQuoteCalls;

/// Evidence from the platform the guest runs on.
pub enum GuestAttester {
    /// Plain mode: a simulated report of the image's SHA-384.
    Simulated(SimulatedAttester),
    /// SEV-SNP: reports from the PSP.
    Snp(SnpAttester<GhcbGuestRequest>),
    /// TDX: TDREPORTs turned into quotes by the VMM's quote-generation service.
    Tdx(TdxAttester<TdQuoteCalls>),
}

impl Attester for GuestAttester {
    fn tee(&self) -> Tee {
        match self {
            GuestAttester::Simulated(attester) => attester.tee(),
            GuestAttester::Snp(attester) => attester.tee(),
            GuestAttester::Tdx(attester) => attester.tee(),
        }
    }

    fn evidence(&mut self, report_data: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
        match self {
            GuestAttester::Simulated(attester) => attester.evidence(report_data),
            GuestAttester::Snp(attester) => attester.evidence(report_data),
            GuestAttester::Tdx(attester) => attester.evidence(report_data),
        }
    }

    fn launch_binding(&mut self) -> Result<[u8; 48], AttestError> {
        match self {
            GuestAttester::Simulated(attester) => attester.launch_binding(),
            GuestAttester::Snp(attester) => attester.launch_binding(),
            GuestAttester::Tdx(attester) => attester.launch_binding(),
        }
    }
}
