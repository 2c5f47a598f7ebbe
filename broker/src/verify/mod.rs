//! Evidence verification: one module per TEE, each turning evidence bytes into [`Verified`] facts or a refusal:
//! simulated (plain-mode) evidence, SEV-SNP reports and TDX quotes.

mod simulated;
pub mod snp;
pub mod tdx;

pub use simulated::SimulatedVerifier;
pub use snp::SnpVerifier;
pub use tdx::TdxVerifier;

use protocol::refusal::RefusalCode;
use protocol::tee::Tee;

/// What verified evidence says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The TEE that produced it.
    pub tee: Tee,
    /// The launch measurement.
    pub measurement: Vec<u8>,
    /// The 64 bytes the guest had signed.
    pub report_data: [u8; 64],
    /// Whether the guest was launched with debugging allowed.
    pub debug: bool,
    /// What the host gave the launch, which the guest cannot change: HOST_DATA (SNP; plain mode's simulated report)
    /// zero-extended from 32 bytes, or MRCONFIGID (TDX). Ampoule binds the sealed model's digest there.
    pub host_data: [u8; 48],
    /// The TCB level the evidence reports, for metrics: SNP's REPORTED_TCB SVNs, the TDX TCB status of Intel's
    /// collateral, or `simulated`.
    pub tcb: String,
}

/// An SNP report's 32-byte HOST_DATA as [`Verified::host_data`].
pub fn snp_host_data(host_data: &[u8; 32]) -> [u8; 48] {
    let mut extended = [0u8; 48];
    extended[..32].copy_from_slice(host_data);
    extended
}

/// A verifier for one TEE's evidence.
pub trait Verifier: Send + Sync {
    /// The TEE whose evidence it verifies.
    fn tee(&self) -> Tee;
    /// Checks the evidence's format and signature and extracts its facts.
    fn verify(&self, evidence: &[u8]) -> Result<Verified, RefusalCode>;
}
