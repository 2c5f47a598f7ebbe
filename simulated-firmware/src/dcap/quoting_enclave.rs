//! The simulated TD quoting enclave: turns a TD's report body into a DCAP quote, version 4, in Intel's layout
//! (Intel TDX DCAP Quoting Library API, "Quote Format"):
//!
//! ```text
//! header (48) | TD quote body (584) | signature data length u32 | signature data:
//!   quote signature (64, ECDSA P-256 r || s over header and body, by the attestation key)
//!   attestation public key (64, x || y)
//!   certification data: type 6 (QE report certification data), size u32, then
//!     QE report (384) | its signature (64, by the PCK key) | QE auth data: size u16, bytes
//!     certification data: type 5 (PCK certificate chain, PEM), size u32, the chain
//! ```
//!
//! The QE report's REPORTDATA binds the attestation key: its first 32 bytes are SHA-256(attestation key || QE
//! auth data). The attestation key is fixed, as the platform's QE would keep it across quotes.

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sha2_010::{Digest, Sha256};

use super::pki::SimulatedIntelPki;
use super::{PlatformTcb, quoting_enclave_identity as qe};

/// The TD 1.0 quote body's length.
pub const TD_QUOTE_BODY_LEN: usize = 584;
/// Quote version 4, attestation key type 2 (ECDSA-256 with P-256), TEE type 0x81 (TDX).
const QUOTE_VERSION: u16 = 4;
const ATTESTATION_KEY_TYPE_ECDSA_P256: u16 = 2;
const TEE_TYPE_TDX: u32 = 0x81;
/// Intel's QE vendor ID (939A7233-F79C-4CA9-940A-0DB3957F0607): the only one dcap-qvl accepts.
const INTEL_QE_VENDOR_ID: [u8; 16] =
    [0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07];
/// Certification data types: a PEM PCK certificate chain (5), QE report certification data (6).
const CERT_TYPE_PCK_CHAIN: u16 = 5;
const CERT_TYPE_QE_REPORT: u16 = 6;
/// The QE auth data: 32 bytes, as Intel's QE sends them.
const QE_AUTH_DATA: [u8; 32] = {
    let mut bytes = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        bytes[i] = i as u8;
        i += 1;
    }
    bytes
};

/// Offsets in the SGX REPORT body (Intel SDM Vol. 3D, "REPORT"), 384 bytes.
mod report_offset {
    pub const CPU_SVN: usize = 0;
    pub const MISC_SELECT: usize = 16;
    pub const ATTRIBUTES: usize = 48;
    pub const MR_ENCLAVE: usize = 64;
    pub const MR_SIGNER: usize = 128;
    pub const ISV_PROD_ID: usize = 256;
    pub const ISV_SVN: usize = 258;
    pub const REPORT_DATA: usize = 320;
    pub const LEN: usize = 384;
}

/// The platform's TD quoting enclave.
pub struct QuotingEnclave {
    attestation_key: SigningKey,
    pck_key: SigningKey,
    pck_chain: String,
    platform: PlatformTcb,
}

impl QuotingEnclave {
    /// The quoting enclave of `platform`, certified by `pki`.
    pub fn new(pki: &SimulatedIntelPki, platform: &PlatformTcb) -> QuotingEnclave {
        QuotingEnclave {
            attestation_key: SigningKey::from_slice(&[0x2a; 32]).expect("a valid P-256 scalar"),
            pck_key: pki.pck.key.clone(),
            pck_chain: pki.pck_chain_pem(),
            platform: *platform,
        }
    }

    fn attestation_public_key(&self) -> [u8; 64] {
        let point = self.attestation_key.verifying_key().to_encoded_point(false);
        point.as_bytes()[1..].try_into().expect("an uncompressed P-256 point")
    }

    /// The QE's own report, whose REPORTDATA binds the attestation key.
    fn qe_report(&self) -> [u8; report_offset::LEN] {
        use report_offset as at;
        let mut report = [0u8; at::LEN];
        report[at::CPU_SVN..at::CPU_SVN + 16].copy_from_slice(&self.platform.cpu_svn);
        report[at::MISC_SELECT..at::MISC_SELECT + 4].copy_from_slice(&qe::MISCSELECT.to_le_bytes());
        report[at::ATTRIBUTES..at::ATTRIBUTES + 16].copy_from_slice(&qe::ATTRIBUTES);
        report[at::MR_ENCLAVE..at::MR_ENCLAVE + 32].copy_from_slice(&[0xe1; 32]);
        report[at::MR_SIGNER..at::MR_SIGNER + 32].copy_from_slice(&qe::MRSIGNER);
        report[at::ISV_PROD_ID..at::ISV_PROD_ID + 2].copy_from_slice(&qe::ISVPRODID.to_le_bytes());
        report[at::ISV_SVN..at::ISV_SVN + 2].copy_from_slice(&self.platform.qe_svn.to_le_bytes());
        let mut hashed = self.attestation_public_key().to_vec();
        hashed.extend_from_slice(&QE_AUTH_DATA);
        report[at::REPORT_DATA..at::REPORT_DATA + 32].copy_from_slice(&Sha256::digest(&hashed));
        report
    }

    /// The quote header: version 4, ECDSA P-256, TDX, the QE's and PCE's SVNs, Intel's vendor ID, and the QE's
    /// identifier in the user data.
    fn header(&self) -> [u8; 48] {
        let mut header = [0u8; 48];
        header[0..2].copy_from_slice(&QUOTE_VERSION.to_le_bytes());
        header[2..4].copy_from_slice(&ATTESTATION_KEY_TYPE_ECDSA_P256.to_le_bytes());
        header[4..8].copy_from_slice(&TEE_TYPE_TDX.to_le_bytes());
        header[8..10].copy_from_slice(&self.platform.qe_svn.to_le_bytes());
        header[10..12].copy_from_slice(&self.platform.pce_svn.to_le_bytes());
        header[12..28].copy_from_slice(&INTEL_QE_VENDOR_ID);
        header[28..44].copy_from_slice(&[0x0e; 16]);
        header
    }

    /// The signed quote of a TD quote body.
    pub fn quote(&self, body: &[u8; TD_QUOTE_BODY_LEN]) -> Vec<u8> {
        let mut quote = self.header().to_vec();
        quote.extend_from_slice(body);
        let quote_signature: Signature = self.attestation_key.sign(&quote);
        let qe_report = self.qe_report();
        let qe_report_signature: Signature = self.pck_key.sign(&qe_report);

        let mut qe_certification = qe_report.to_vec();
        qe_certification.extend_from_slice(&qe_report_signature.to_bytes());
        qe_certification.extend_from_slice(&(QE_AUTH_DATA.len() as u16).to_le_bytes());
        qe_certification.extend_from_slice(&QE_AUTH_DATA);
        qe_certification.extend_from_slice(&CERT_TYPE_PCK_CHAIN.to_le_bytes());
        qe_certification.extend_from_slice(&(self.pck_chain.len() as u32).to_le_bytes());
        qe_certification.extend_from_slice(self.pck_chain.as_bytes());

        let mut signature_data = quote_signature.to_bytes().to_vec();
        signature_data.extend_from_slice(&self.attestation_public_key());
        signature_data.extend_from_slice(&CERT_TYPE_QE_REPORT.to_le_bytes());
        signature_data.extend_from_slice(&(qe_certification.len() as u32).to_le_bytes());
        signature_data.extend_from_slice(&qe_certification);

        quote.extend_from_slice(&(signature_data.len() as u32).to_le_bytes());
        quote.extend_from_slice(&signature_data);
        quote
    }
}
