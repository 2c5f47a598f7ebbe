//! The SEV-SNP attester: a report from the PSP, asked for with an SNP guest message (MSG_REPORT_REQ under VMPCK0,
//! `protocol::snp_guest_message`) that the kernel hands to the hypervisor ([`GuestRequest`]: the GHCB's
//! SNP_GUEST_REQUEST exit, GHCB specification §4.1.8). The hypervisor carries the pages and may answer "busy"; the
//! same request bytes are then sent again, a bounded number of times. Any other failure retires VMPCK0, as the
//! SEV-SNP ABI requires: this attester then makes no more evidence for the rest of the boot.

use alloc::vec::Vec;

use protocol::report::SnpReport;
use protocol::snp_guest_message::{
    GuestChannel, MSG_REPORT_REQ, REPORT_REQ_VERSION, report_from_response, report_request,
};
use protocol::tee::Tee;

use crate::attester::{AttestError, Attester};

/// The size of the request and response pages.
pub const MESSAGE_PAGE_LEN: usize = 4096;
/// How often a request the hypervisor called busy is sent again.
pub const MAX_BUSY_RETRIES: u32 = 16;

/// How the hypervisor answered a guest request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestRequestError {
    /// Busy (the GHCB's SW_EXITINFO2 says so): send the same bytes again.
    Busy,
    /// Anything else, with the hypervisor's or firmware's error code.
    Failed(u64),
}

/// Carries one guest message to the PSP and its response back (the kernel: shared pages and a VMGEXIT).
pub trait GuestRequest {
    /// Sends `request` and fills `response` with the response page.
    fn exchange(&mut self, request: &[u8], response: &mut [u8; MESSAGE_PAGE_LEN]) -> Result<(), GuestRequestError>;
}

/// Evidence from the PSP for a guest at VMPL0.
pub struct SnpAttester<G> {
    channel: GuestChannel,
    transport: G,
}

impl<G: GuestRequest> SnpAttester<G> {
    /// An attester with VMPCK0 and the message counter from the secrets page, over `transport`.
    pub fn new(vmpck0: [u8; 32], last_seqno: u64, transport: G) -> Self {
        Self { channel: GuestChannel::new(vmpck0, 0, last_seqno), transport }
    }

    /// The transport (tests inspect what crossed it).
    pub fn transport(&self) -> &G {
        &self.transport
    }

    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut G {
        &mut self.transport
    }

    /// Whether VMPCK0 has been retired (no more evidence this boot).
    pub fn is_retired(&self) -> bool {
        self.channel.is_retired()
    }

    fn send(&mut self, request: &[u8]) -> Result<[u8; MESSAGE_PAGE_LEN], AttestError> {
        let mut response = [0u8; MESSAGE_PAGE_LEN];
        for _ in 0..=MAX_BUSY_RETRIES {
            match self.transport.exchange(request, &mut response) {
                Ok(()) => return Ok(response),
                Err(GuestRequestError::Busy) => continue,
                Err(GuestRequestError::Failed(_)) => break,
            }
        }
        // Failed, or busy beyond the bound: the PSP may have seen this sequence number, so the key is retired.
        self.channel.retire();
        Err(AttestError::Platform)
    }
}

impl<G: GuestRequest> Attester for SnpAttester<G> {
    fn tee(&self) -> Tee {
        Tee::Snp
    }

    fn evidence(&mut self, report_data: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
        let request = self
            .channel
            .request(MSG_REPORT_REQ, REPORT_REQ_VERSION, &report_request(report_data, 0))
            .map_err(|_| AttestError::Platform)?;
        let response = self.send(&request)?;
        let payload = self.channel.response(&response).map_err(|_| AttestError::Platform)?;
        let report = report_from_response(&payload).map_err(|_| AttestError::Platform)?;
        // The PSP signs what it was asked for; a report for other data or another VMPL is not this guest's evidence.
        let view = SnpReport::new(report).map_err(|_| AttestError::Platform)?;
        if view.report_data() != report_data || view.vmpl() != 0 {
            return Err(AttestError::Platform);
        }
        Ok(report.to_vec())
    }

    /// HOST_DATA from a report of its own (one more guest message; its report data is zero).
    fn launch_binding(&mut self) -> Result<[u8; 48], AttestError> {
        let report = self.evidence(&[0; 64])?;
        let view = SnpReport::new(&report).map_err(|_| AttestError::Platform)?;
        let mut binding = [0u8; 48];
        binding[..32].copy_from_slice(view.host_data());
        Ok(binding)
    }
}

// Tested against the simulated PSP in simulated-firmware/tests/snp_attester.rs (a host crate: the guest's
// dependency graph must not reach it).
