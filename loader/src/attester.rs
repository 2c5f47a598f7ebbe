//! Evidence: what a platform's hardware (or, in plain mode, a simulation) says about the guest.

use alloc::vec::Vec;

use protocol::report::{policy, simulated_launch_report};
use protocol::tee::Tee;

/// Why no evidence was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttestError {
    /// The hardware or firmware refused or failed.
    Platform,
}

/// Makes evidence that binds 64 bytes of report data.
pub trait Attester {
    /// The TEE the evidence is from.
    fn tee(&self) -> Tee;
    /// Evidence (a report or quote) carrying `report_data`.
    fn evidence(&mut self, report_data: &[u8; 64]) -> Result<Vec<u8>, AttestError>;
    /// What the host bound the launch to, as the platform reports it (SNP: HOST_DATA, zero-extended to 48 bytes;
    /// TDX: MRCONFIGID): the guest loads only the sealed model whose digest this is.
    fn launch_binding(&mut self) -> Result<[u8; 48], AttestError>;
}

/// Plain mode's attester: a simulated SNP report of the image's own measurement (the SHA-384 of the image as
/// mapped, computed at boot), marked simulated and signed with the public simulation key. It proves nothing about
/// the platform; the broker accepts it only with `allow_simulated`.
pub struct SimulatedAttester {
    measurement: [u8; 48],
    host_data: [u8; 32],
}

impl SimulatedAttester {
    /// The guest policy simulated reports carry: the one run-qemu launches SNP guests with (SMT allowed, debug
    /// and migration agent off).
    pub const POLICY: u64 = policy::RESERVED_MUST_BE_ONE | policy::SMT;

    /// An attester for a guest whose image measures `measurement`, launched bound to nothing (HOST_DATA zero).
    pub fn new(measurement: [u8; 48]) -> Self {
        Self { measurement, host_data: [0; 32] }
    }

    /// The same, launched with `host_data` (plain mode: what the host says, as proven as the rest of a simulated
    /// report: not at all).
    pub fn with_host_data(self, host_data: [u8; 32]) -> Self {
        Self { host_data, ..self }
    }
}

impl Attester for SimulatedAttester {
    fn tee(&self) -> Tee {
        Tee::Plain
    }

    fn evidence(&mut self, report_data: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
        Ok(simulated_launch_report(&self.measurement, &self.host_data, report_data, Self::POLICY).to_vec())
    }

    fn launch_binding(&mut self) -> Result<[u8; 48], AttestError> {
        let mut binding = [0u8; 48];
        binding[..32].copy_from_slice(&self.host_data);
        Ok(binding)
    }
}
