//! What a VCEK certificate certifies (AMD, "Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface
//! Specification", table "VCEK Certificate Extensions"): the chip (hwID) and the TCB (blSPL, teeSPL, snpSPL,
//! ucodeSPL) its key was derived for. A report is the VCEK's only if its CHIP_ID and REPORTED_TCB are those: a
//! VCEK of the same chip at another TCB is another key, and a report naming another TCB was not meant for it.

use anyhow::{Context, Result};
use x509_cert::der::Decode;
use x509_cert::der::asn1::{ObjectIdentifier, OctetString};

use super::Tcb;

/// blSPL: the boot loader SVN (INTEGER).
const BL_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
/// teeSPL: the PSP OS SVN.
const TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
/// snpSPL: the SNP firmware SVN.
const SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
/// ucodeSPL: the microcode SVN.
const UCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
/// hwID: the chip id (64 bytes; 8 on Turin).
const HW_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");

/// The chip and TCB a VCEK certificate names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcekIdentity {
    /// The TCB the key was derived for.
    pub tcb: Tcb,
    /// The chip id: 64 bytes, or the first 8 of CHIP_ID on Turin.
    pub hw_id: Vec<u8>,
}

fn extension(certificate: &x509_cert::Certificate, oid: ObjectIdentifier) -> Result<&[u8]> {
    let extensions = certificate.tbs_certificate.extensions.as_deref().unwrap_or_default();
    let found = extensions.iter().find(|extension| extension.extn_id == oid);
    Ok(found.with_context(|| format!("the VCEK has no extension {oid}"))?.extn_value.as_bytes())
}

fn svn(certificate: &x509_cert::Certificate, oid: ObjectIdentifier) -> Result<u8> {
    u8::from_der(extension(certificate, oid)?).with_context(|| format!("the VCEK's {oid} is not an SVN"))
}

impl VcekIdentity {
    /// Reads the extensions; refuses a certificate without them (an ARK, an ASK, a VLEK).
    pub fn of(certificate: &x509_cert::Certificate) -> Result<VcekIdentity> {
        let tcb = Tcb {
            bootloader: svn(certificate, BL_SPL)?,
            tee: svn(certificate, TEE_SPL)?,
            snp: svn(certificate, SNP_SPL)?,
            microcode: svn(certificate, UCODE_SPL)?,
        };
        // AMD's KDS puts the raw id in the extension value; accept a DER OCTET STRING around it too.
        let raw = extension(certificate, HW_ID)?;
        let hw_id = match raw.len() {
            8 | 64 => raw.to_vec(),
            _ => OctetString::from_der(raw).context("the VCEK's hwID")?.as_bytes().to_vec(),
        };
        anyhow::ensure!(matches!(hw_id.len(), 8 | 64), "the VCEK's hwID is {} bytes, not 64 (or 8)", hw_id.len());
        Ok(VcekIdentity { tcb, hw_id })
    }

    /// Whether a report with `chip_id` and REPORTED_TCB `tcb` is one this VCEK signs.
    pub fn certifies(&self, chip_id: &[u8; 64], tcb: &Tcb) -> bool {
        self.tcb == *tcb && chip_id.starts_with(&self.hw_id)
    }
}
