//! The SEV-SNP attestation report layout (SEV-SNP Firmware ABI specification, table "ATTESTATION_REPORT
//! Structure"), read through a bounds-checked view, and the **simulated** report that plain-mode guests produce.
//!
//! A simulated report has the real layout so that one verifier pipeline serves both, but it is marked in a way no
//! real report can be: its SIGNATURE_ALGO is [`SIGNATURE_ALGO_SIMULATED`] (the ABI defines only 1, ECDSA P-384
//! with SHA-384), and its "signature" is HMAC-SHA-384 under [`SIMULATION_KEY`], a key that is public on purpose.
//! A simulated report proves nothing about the platform; the broker accepts one only with `allow_simulated`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha384;

/// The report's size.
pub const REPORT_LEN: usize = 0x4a0;
/// Where the signed part ends and the signature starts.
pub const SIGNATURE_OFFSET: usize = 0x2a0;

const VERSION: usize = 0x000;
const POLICY: usize = 0x008;
const VMPL: usize = 0x030;
const SIGNATURE_ALGO: usize = 0x034;
const REPORT_DATA: usize = 0x050;
const MEASUREMENT: usize = 0x090;
const HOST_DATA: usize = 0x0c0;
const REPORTED_TCB: usize = 0x180;
const CHIP_ID: usize = 0x1a0;

/// SIGNATURE_ALGO of every real report: ECDSA P-384 with SHA-384.
pub const SIGNATURE_ALGO_ECDSA_P384_SHA384: u32 = 1;
/// SIGNATURE_ALGO of a simulated report: "AMPS", a value the ABI does not define.
pub const SIGNATURE_ALGO_SIMULATED: u32 = u32::from_le_bytes(*b"AMPS");
/// The report version simulated reports carry (the layout of ABI 1.55+).
pub const SIMULATED_REPORT_VERSION: u32 = 2;
/// The well-known, public key of simulated reports. Knowing it lets anyone forge one: that is the point.
pub const SIMULATION_KEY: &[u8] = b"ampoule/simulated-attestation/v1: public test key, proves nothing";

/// Guest policy bits (SEV-SNP ABI, 4.3 "Guest Policy").
pub mod policy {
    /// SMT is allowed on the host.
    pub const SMT: u64 = 1 << 16;
    /// Bit 17 is reserved and must be 1.
    pub const RESERVED_MUST_BE_ONE: u64 = 1 << 17;
    /// A migration agent may be associated.
    pub const MIGRATE_MA: u64 = 1 << 18;
    /// Debugging is allowed: the hypervisor can read guest memory.
    pub const DEBUG: u64 = 1 << 19;
}

/// Why bytes are not a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportError {
    /// Not [`REPORT_LEN`] bytes.
    Length(usize),
    /// A simulated report whose HMAC does not verify.
    BadSimulatedSignature,
    /// Not a simulated report.
    NotSimulated,
}

/// A bounds-checked view of an SNP report.
#[derive(Clone, Copy, Debug)]
pub struct SnpReport<'a>(&'a [u8; REPORT_LEN]);

impl<'a> SnpReport<'a> {
    /// Views `bytes`, which must be exactly one report.
    pub fn new(bytes: &'a [u8]) -> Result<Self, ReportError> {
        bytes.try_into().map(SnpReport).map_err(|_| ReportError::Length(bytes.len()))
    }

    fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
    }

    /// VERSION.
    pub fn version(&self) -> u32 {
        self.u32(VERSION)
    }

    /// POLICY: the guest policy the guest was launched with.
    pub fn policy(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[POLICY..POLICY + 8]);
        u64::from_le_bytes(b)
    }

    /// VMPL of the requester.
    pub fn vmpl(&self) -> u32 {
        self.u32(VMPL)
    }

    /// SIGNATURE_ALGO.
    pub fn signature_algo(&self) -> u32 {
        self.u32(SIGNATURE_ALGO)
    }

    /// REPORT_DATA: what the guest asked to be signed.
    pub fn report_data(&self) -> &'a [u8; 64] {
        self.0[REPORT_DATA..REPORT_DATA + 64].try_into().expect("64 bytes")
    }

    /// MEASUREMENT: the launch digest.
    pub fn measurement(&self) -> &'a [u8; 48] {
        self.0[MEASUREMENT..MEASUREMENT + 48].try_into().expect("48 bytes")
    }

    /// HOST_DATA: 32 bytes the host gave at launch, which the guest cannot change (Ampoule: the sealed model's
    /// digest, `protocol::sealed_blob::launch_binding`).
    pub fn host_data(&self) -> &'a [u8; 32] {
        self.0[HOST_DATA..HOST_DATA + 32].try_into().expect("32 bytes")
    }

    /// REPORTED_TCB: the TCB version the report's signing key (VCEK) was derived for, as 8 raw bytes (their
    /// layout depends on the processor generation).
    pub fn reported_tcb(&self) -> [u8; 8] {
        self.0[REPORTED_TCB..REPORTED_TCB + 8].try_into().expect("8 bytes")
    }

    /// CHIP_ID: the processor's unique id (zeros if the guest policy masks it), which the VCEK certificate names.
    pub fn chip_id(&self) -> &'a [u8; 64] {
        self.0[CHIP_ID..CHIP_ID + 64].try_into().expect("64 bytes")
    }

    /// The signed part: everything before SIGNATURE.
    pub fn signed_bytes(&self) -> &'a [u8] {
        &self.0[..SIGNATURE_OFFSET]
    }

    /// SIGNATURE's R and S components, each 72 bytes little-endian (ECDSA P-384 uses the low 48).
    pub fn signature_components(&self) -> (&'a [u8; 72], &'a [u8; 72]) {
        let r = &self.0[SIGNATURE_OFFSET..SIGNATURE_OFFSET + 72];
        let s = &self.0[SIGNATURE_OFFSET + 72..SIGNATURE_OFFSET + 144];
        (r.try_into().expect("72 bytes"), s.try_into().expect("72 bytes"))
    }

    /// The rest of SIGNATURE after R and S: reserved, zero in every report a PSP signs (and not signed itself).
    pub fn signature_reserved(&self) -> &'a [u8] {
        &self.0[SIGNATURE_OFFSET + 144..]
    }

    /// Whether the report says it is simulated.
    pub fn is_simulated(&self) -> bool {
        self.signature_algo() == SIGNATURE_ALGO_SIMULATED
    }

    /// Checks a simulated report's HMAC (constant time).
    pub fn verify_simulated(&self) -> Result<(), ReportError> {
        if !self.is_simulated() {
            return Err(ReportError::NotSimulated);
        }
        let mut mac = simulation_mac();
        mac.update(&self.0[..SIGNATURE_OFFSET]);
        mac.verify_slice(&self.0[SIGNATURE_OFFSET..SIGNATURE_OFFSET + 48])
            .map_err(|_| ReportError::BadSimulatedSignature)
    }
}

fn simulation_mac() -> Hmac<Sha384> {
    Hmac::<Sha384>::new_from_slice(SIMULATION_KEY).expect("HMAC takes keys of any length")
}

/// A simulated report for `measurement`, `report_data` and `policy`, at VMPL 0, with no HOST_DATA, signed under
/// [`SIMULATION_KEY`].
pub fn simulated_report(measurement: &[u8; 48], report_data: &[u8; 64], policy: u64) -> [u8; REPORT_LEN] {
    simulated_launch_report(measurement, &[0; 32], report_data, policy)
}

/// A simulated report of a launch given `host_data` (plain mode's stand-in for SNP's HOST_DATA).
pub fn simulated_launch_report(
    measurement: &[u8; 48],
    host_data: &[u8; 32],
    report_data: &[u8; 64],
    policy: u64,
) -> [u8; REPORT_LEN] {
    let mut report = [0u8; REPORT_LEN];
    report[HOST_DATA..HOST_DATA + 32].copy_from_slice(host_data);
    report[VERSION..VERSION + 4].copy_from_slice(&SIMULATED_REPORT_VERSION.to_le_bytes());
    report[POLICY..POLICY + 8].copy_from_slice(&policy.to_le_bytes());
    report[SIGNATURE_ALGO..SIGNATURE_ALGO + 4].copy_from_slice(&SIGNATURE_ALGO_SIMULATED.to_le_bytes());
    report[REPORT_DATA..REPORT_DATA + 64].copy_from_slice(report_data);
    report[MEASUREMENT..MEASUREMENT + 48].copy_from_slice(measurement);
    sign_simulated(&mut report);
    report
}

/// (Re)computes a simulated report's HMAC over its signed part. Tests use it to build validly signed reports with
/// chosen fields (a debug policy, say), which the broker must still refuse on policy.
pub fn sign_simulated(report: &mut [u8; REPORT_LEN]) {
    let mut mac = simulation_mac();
    mac.update(&report[..SIGNATURE_OFFSET]);
    let tag = mac.finalize().into_bytes();
    report[SIGNATURE_OFFSET..SIGNATURE_OFFSET + 48].copy_from_slice(&tag);
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY_DEFAULT: u64 = policy::RESERVED_MUST_BE_ONE | policy::SMT;

    #[test]
    fn a_simulated_report_carries_its_fields_and_verifies() {
        let report = simulated_report(&[3; 48], &[4; 64], POLICY_DEFAULT);
        let view = SnpReport::new(&report).unwrap();
        assert_eq!(view.measurement(), &[3; 48]);
        assert_eq!(view.report_data(), &[4; 64]);
        assert_eq!(view.policy(), 0x30000);
        assert_eq!(view.vmpl(), 0);
        assert!(view.is_simulated());
        view.verify_simulated().unwrap();
        assert_eq!(view.host_data(), &[0; 32]);
        let launched = simulated_launch_report(&[3; 48], &[6; 32], &[4; 64], POLICY_DEFAULT);
        let view = SnpReport::new(&launched).unwrap();
        assert_eq!((view.host_data(), view.measurement()), (&[6; 32], &[3; 48]));
        view.verify_simulated().unwrap();
    }

    #[test]
    fn any_signed_byte_tampered_breaks_the_signature() {
        let report = simulated_report(&[3; 48], &[4; 64], POLICY_DEFAULT);
        for at in (0..SIGNATURE_OFFSET).filter(|&a| !(SIGNATURE_ALGO..SIGNATURE_ALGO + 4).contains(&a)) {
            let mut tampered = report;
            tampered[at] ^= 0x01;
            assert_eq!(SnpReport::new(&tampered).unwrap().verify_simulated(), Err(ReportError::BadSimulatedSignature));
        }
        let mut tampered = report;
        tampered[SIGNATURE_OFFSET + 5] ^= 0x80;
        assert_eq!(SnpReport::new(&tampered).unwrap().verify_simulated(), Err(ReportError::BadSimulatedSignature));
    }

    #[test]
    fn real_algorithm_ids_are_never_simulated_and_lengths_are_exact() {
        let mut report = simulated_report(&[0; 48], &[0; 64], POLICY_DEFAULT);
        report[SIGNATURE_ALGO..SIGNATURE_ALGO + 4].copy_from_slice(&SIGNATURE_ALGO_ECDSA_P384_SHA384.to_le_bytes());
        assert_eq!(SnpReport::new(&report).unwrap().verify_simulated(), Err(ReportError::NotSimulated));
        assert_eq!(SnpReport::new(&report[1..]).unwrap_err(), ReportError::Length(REPORT_LEN - 1));
        assert_ne!(SIGNATURE_ALGO_SIMULATED, SIGNATURE_ALGO_ECDSA_P384_SHA384);
    }
}
