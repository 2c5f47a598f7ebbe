//! Evidence: what a platform's hardware (or, in plain mode, a simulation) says about the guest.

use alloc::vec::Vec;

use protocol::report::{policy, simulated_report};
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
}

/// Plain mode's attester: a simulated SNP report of the image's own measurement (the SHA-384 of the image as
/// mapped, computed at boot), marked simulated and signed with the public simulation key. It proves nothing about
/// the platform; the broker accepts it only with `allow_simulated`.
pub struct SimulatedAttester {
    measurement: [u8; 48],
}

impl SimulatedAttester {
    /// The guest policy simulated reports carry: the one run-qemu launches SNP guests with (SMT allowed, debug
    /// and migration agent off).
    pub const POLICY: u64 = policy::RESERVED_MUST_BE_ONE | policy::SMT;

    /// An attester for a guest whose image measures `measurement`.
    pub fn new(measurement: [u8; 48]) -> Self {
        Self { measurement }
    }
}

impl Attester for SimulatedAttester {
    fn tee(&self) -> Tee {
        Tee::Plain
    }

    fn evidence(&mut self, report_data: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
        Ok(simulated_report(&self.measurement, report_data, Self::POLICY).to_vec())
    }
}
