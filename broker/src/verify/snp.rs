//! SEV-SNP evidence: an attestation report signed by the platform's VCEK (SEV-SNP Firmware ABI, "ATTESTATION_REPORT
//! Structure"), whose certificate chain ARK -> ASK -> VCEK is checked once, when the verifier is made, from files
//! the configuration names (no network). Then, per report, in this order:
//!
//! 1. exactly one report, not a simulated one, VERSION >= 2, SIGNATURE_ALGO = ECDSA P-384 with SHA-384, the
//!    signature's reserved bytes zero;
//! 2. the VCEK's certificate names the report's CHIP_ID and REPORTED_TCB (`vcek`), its chain is valid at the
//!    verifier's time (`chain`: checked when the verifier is made, and again per report), and the signature, over
//!    the report's own first 0x2A0 bytes (not a re-encoding of them), is the VCEK's;
//! 3. VMPL as required (0: the report was asked for by the guest kernel itself);
//! 4. the guest policy: no migration agent, SMT only if allowed, the minimum ABI at least the configured one;
//! 5. REPORTED_TCB at least the configured minimum for the product (boot loader, TEE, SNP firmware, microcode).
//!
//! The debug bit is returned in [`Verified`]; `Policy` refuses it unless debugging is allowed.

use std::path::Path;

use anyhow::{Context, Result, bail};
use p384::ecdsa::signature::hazmat::PrehashVerifier;
use p384::ecdsa::{Signature, VerifyingKey};
use protocol::refusal::RefusalCode;
use protocol::report::{SIGNATURE_ALGO_ECDSA_P384_SHA384, SnpReport, policy};
use protocol::tee::Tee;
use serde::Deserialize;
use sev::certs::snp::{Certificate, Chain, Verifiable, builtin, ca};
use sha2::{Digest, Sha384};

use super::{Verified, Verifier};

/// The processor generation: which AMD root signs, and how REPORTED_TCB is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    /// EPYC 7003.
    Milan,
    /// EPYC 9004.
    Genoa,
    /// EPYC 9005.
    Turin,
}

/// A TCB version's security version numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tcb {
    /// The PSP boot loader's SVN.
    pub bootloader: u8,
    /// The PSP OS's SVN.
    pub tee: u8,
    /// The SNP firmware's SVN.
    pub snp: u8,
    /// The lowest microcode patch level of all cores.
    pub microcode: u8,
}

impl Tcb {
    /// Reads REPORTED_TCB as `product` lays it out (ABI, "TCB_VERSION"): Milan and Genoa put the boot loader,
    /// TEE, SNP and microcode SVNs at bytes 0, 1, 6, 7; Turin puts an FMC SVN first and them at 1, 2, 3, 7.
    pub fn from_raw(raw: [u8; 8], product: Product) -> Tcb {
        match product {
            Product::Milan | Product::Genoa => Tcb { bootloader: raw[0], tee: raw[1], snp: raw[6], microcode: raw[7] },
            Product::Turin => Tcb { bootloader: raw[1], tee: raw[2], snp: raw[3], microcode: raw[7] },
        }
    }

    /// Whether every component is at least `minimum`'s.
    pub fn at_least(&self, minimum: &Tcb) -> bool {
        self.bootloader >= minimum.bootloader
            && self.tee >= minimum.tee
            && self.snp >= minimum.snp
            && self.microcode >= minimum.microcode
    }
}

/// The `[snp]` table of the broker's configuration.
///
/// ```toml
/// [snp]
/// product = "milan"
/// vcek = "vcek.der"          # the platform's VCEK, DER or PEM (relative to the configuration file)
/// # ark = "ark.pem"          # default: AMD's ARK and ASK for the product, as the sev crate ships them
/// # ask = "ask.pem"
/// allow_smt = true
/// min_abi = [1, 51]          # the guest policy's minimum ABI must be at least this (major, minor)
/// vmpl = 0
/// [snp.min_tcb]
/// bootloader = 3
/// tee = 0
/// snp = 8
/// microcode = 115
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnpConfig {
    /// The processor generation of the platforms.
    pub product: Product,
    /// The VCEK certificate, or a list of them (one per chip and TCB).
    pub vcek: VcekFiles,
    /// The ARK certificate, instead of AMD's built-in one (with `ask`).
    #[serde(default)]
    pub ark: Option<std::path::PathBuf>,
    /// The ASK certificate, instead of AMD's built-in one (with `ark`).
    #[serde(default)]
    pub ask: Option<std::path::PathBuf>,
    /// See [`SnpRules::allow_smt`].
    #[serde(default)]
    pub allow_smt: bool,
    /// See [`SnpRules::min_abi`].
    #[serde(default)]
    pub min_abi: (u8, u8),
    /// See [`SnpRules::vmpl`].
    #[serde(default)]
    pub vmpl: u32,
    /// See [`SnpRules::min_tcb`].
    pub min_tcb: Tcb,
}

/// What an SNP report must satisfy beyond its signature.
#[derive(Clone, Copy, Debug)]
pub struct SnpRules {
    /// Accept guests whose policy lets the host use SMT.
    pub allow_smt: bool,
    /// The lowest acceptable minimum ABI in the guest policy, (major, minor).
    pub min_abi: (u8, u8),
    /// The VMPL the report must come from.
    pub vmpl: u32,
    /// The lowest acceptable REPORTED_TCB.
    pub min_tcb: Tcb,
}

pub mod chain;
mod vcek;

pub use vcek::VcekIdentity;

use crate::Clock;

/// One chip's VCEK at one TCB: its key, what its certificate names, and when its chain is valid.
struct CertifiedVcek {
    key: VerifyingKey,
    identity: VcekIdentity,
    valid: chain::Window,
}

/// Verifies SNP reports against the platforms' keys (one VCEK per chip and TCB) and the rules.
pub struct SnpVerifier {
    vceks: Vec<CertifiedVcek>,
    product: Product,
    rules: SnpRules,
    /// Seconds since the Unix epoch: the time the chains must be valid at.
    clock: Clock,
}

/// The `vcek` entry of `[snp]`: one file, or one per platform (chip and TCB) of a fleet.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum VcekFiles {
    /// One platform's VCEK.
    One(std::path::PathBuf),
    /// Several platforms' VCEKs; each report is verified with the one that names its chip and TCB.
    Many(Vec<std::path::PathBuf>),
}

impl VcekFiles {
    /// The files, in order.
    pub fn paths(&self) -> &[std::path::PathBuf] {
        match self {
            VcekFiles::One(path) => std::slice::from_ref(path),
            VcekFiles::Many(paths) => paths,
        }
    }
}

fn certificate(bytes: &[u8]) -> Result<Certificate> {
    Certificate::from_der(bytes).or_else(|_| Certificate::from_pem(bytes)).context("not a DER or PEM certificate")
}

impl SnpVerifier {
    /// Checks the chain ARK -> ASK -> VCEK for each VCEK (certificates, DER or PEM; AMD's built-in ARK and ASK for
    /// `product` when `ca` is `None`): signatures, names, and validity at `clock` (Unix seconds), now and at each
    /// report; keeps each VCEK's key and the chip and TCB it names. Refuses an empty list and two VCEKs naming the
    /// same chip and TCB.
    pub fn new(
        ca: Option<(&[u8], &[u8])>,
        vceks: &[&[u8]],
        product: Product,
        rules: SnpRules,
        clock: Clock,
    ) -> Result<Self> {
        let ca = match ca {
            Some((ark, ask)) => ca::Chain { ark: certificate(ark)?, ask: certificate(ask)? },
            None => match product {
                Product::Milan => ca::Chain { ark: builtin::milan::ark()?, ask: builtin::milan::ask()? },
                Product::Genoa => ca::Chain { ark: builtin::genoa::ark()?, ask: builtin::genoa::ask()? },
                Product::Turin => ca::Chain { ark: builtin::turin::ark()?, ask: builtin::turin::ask()? },
            },
        };
        anyhow::ensure!(!vceks.is_empty(), "[snp] names no VCEK");
        let mut certified: Vec<CertifiedVcek> = Vec::with_capacity(vceks.len());
        for (index, vcek) in vceks.iter().enumerate() {
            let vcek = certified_vcek(&ca, vcek, clock()).with_context(|| format!("VCEK {}", index + 1))?;
            anyhow::ensure!(
                certified.iter().all(|other| other.identity != vcek.identity),
                "VCEK {} names the same chip and TCB as an earlier one",
                index + 1
            );
            certified.push(vcek);
        }
        Ok(SnpVerifier { vceks: certified, product, rules, clock })
    }

    /// The verifier a configuration's `[snp]` table describes (`Config::load` made its paths absolute), with the
    /// chains valid at `clock` (Unix seconds).
    pub fn from_config(config: &SnpConfig, clock: Clock) -> Result<SnpVerifier> {
        let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        let ca = match (&config.ark, &config.ask) {
            (Some(ark), Some(ask)) => Some((read(ark)?, read(ask)?)),
            (None, None) => None,
            _ => bail!("[snp] names ark or ask without the other"),
        };
        let vceks = config.vcek.paths().iter().map(|path| read(path)).collect::<Result<Vec<_>>>()?;
        let vceks: Vec<&[u8]> = vceks.iter().map(Vec::as_slice).collect();
        let rules = SnpRules {
            allow_smt: config.allow_smt,
            min_abi: config.min_abi,
            vmpl: config.vmpl,
            min_tcb: config.min_tcb,
        };
        let ca = ca.as_ref().map(|(ark, ask)| (ark.as_slice(), ask.as_slice()));
        SnpVerifier::new(ca, &vceks, config.product, rules, clock)
    }

    /// The same paths, relative to `base`.
    pub fn resolve_paths(config: &mut SnpConfig, base: &Path) {
        config.vcek = match &config.vcek {
            VcekFiles::One(path) => VcekFiles::One(base.join(path)),
            VcekFiles::Many(paths) => VcekFiles::Many(paths.iter().map(|path| base.join(path)).collect()),
        };
        config.ark = config.ark.as_ref().map(|p| base.join(p));
        config.ask = config.ask.as_ref().map(|p| base.join(p));
    }

    /// A verifier trusting `vcek` directly as the key of `identity`, for tests that sign their own reports.
    #[cfg(test)]
    pub(crate) fn trusting(key: VerifyingKey, identity: VcekIdentity, product: Product, rules: SnpRules) -> Self {
        let valid = chain::Window { not_before: 0, not_after: u64::MAX };
        SnpVerifier { vceks: vec![CertifiedVcek { key, identity, valid }], product, rules, clock: Box::new(|| 0) }
    }

    /// The chips and TCBs the configured VCEKs were issued for, in configuration order.
    pub fn identities(&self) -> impl Iterator<Item = &VcekIdentity> {
        self.vceks.iter().map(|vcek| &vcek.identity)
    }
}

/// One VCEK, its chain checked (signatures by the sev crate; names and validity at `now` by `chain`), with its
/// key, identity and validity window.
fn certified_vcek(ca: &ca::Chain, vcek: &[u8], now: u64) -> Result<CertifiedVcek> {
    let signed = Chain { ca: ca.clone(), vek: certificate(vcek).context("the VCEK")? };
    let vcek = (&signed).verify().map_err(|e| anyhow::anyhow!("the chain ARK -> ASK -> VCEK does not verify: {e}"))?;
    let (ark, ask): (x509_cert::Certificate, x509_cert::Certificate) = (ca.ark.clone().into(), ca.ask.clone().into());
    let x509_vcek: x509_cert::Certificate = vcek.clone().into();
    chain::check_names(&ark, &ask, &x509_vcek)?;
    let valid = chain::window([&ark, &ask, &x509_vcek])?;
    anyhow::ensure!(
        valid.contains(now),
        "the chain ARK -> ASK -> VCEK is valid from {} to {} (Unix seconds), not now ({now})",
        valid.not_before,
        valid.not_after
    );
    let identity = VcekIdentity::of(&x509_vcek)?;
    let key = VerifyingKey::from_sec1_bytes(vcek.public_key_sec1())
        .map_err(|_| anyhow::anyhow!("the VCEK's key is not a P-384 point"))?;
    Ok(CertifiedVcek { key, identity, valid })
}

/// SIGNATURE's R or S: 72 bytes little-endian, of which P-384 uses the low 48; the rest must be zero.
fn scalar(component: &[u8; 72]) -> Option<[u8; 48]> {
    if component[48..].iter().any(|&b| b != 0) {
        return None;
    }
    let mut big_endian = [0u8; 48];
    big_endian.iter_mut().zip(component[..48].iter().rev()).for_each(|(out, b)| *out = *b);
    Some(big_endian)
}

impl Verifier for SnpVerifier {
    fn tee(&self) -> Tee {
        Tee::Snp
    }

    fn verify(&self, evidence: &[u8]) -> Result<Verified, RefusalCode> {
        self.verify_at(evidence, (self.clock)())
    }
}

impl SnpVerifier {
    /// Verifies `evidence` with the chains valid at `now` (Unix seconds).
    pub fn verify_at(&self, evidence: &[u8], now: u64) -> Result<Verified, RefusalCode> {
        let report = SnpReport::new(evidence).map_err(|_| RefusalCode::MalformedEvidence)?;
        if report.is_simulated() {
            return Err(RefusalCode::WrongTee);
        }
        if report.version() < 2 || report.signature_algo() != SIGNATURE_ALGO_ECDSA_P384_SHA384 {
            return Err(RefusalCode::MalformedEvidence);
        }
        // The unsigned reserved bytes after R and S must be zero: nothing may ride along unauthenticated.
        if report.signature_reserved().iter().any(|&b| b != 0) {
            return Err(RefusalCode::MalformedEvidence);
        }
        let (r, s) = report.signature_components();
        let signature = scalar(r)
            .zip(scalar(s))
            .and_then(|(r, s)| Signature::from_scalars(r, s).ok())
            .ok_or(RefusalCode::BadSignature)?;
        // Only the VCEK whose certificate names the report's chip and TCB may have signed it.
        let reported_tcb = Tcb::from_raw(report.reported_tcb(), self.product);
        let vcek = self.vceks.iter().find(|vcek| vcek.identity.certifies(report.chip_id(), &reported_tcb));
        let vcek = vcek.ok_or(RefusalCode::BadSignature)?;
        // A chain that has expired (or is not valid yet) vouches for nothing.
        if !vcek.valid.contains(now) {
            return Err(RefusalCode::BadSignature);
        }
        let digest = Sha384::digest(report.signed_bytes());
        vcek.key.verify_prehash(&digest, &signature).map_err(|_| RefusalCode::BadSignature)?;
        if report.vmpl() != self.rules.vmpl {
            return Err(RefusalCode::WrongVmpl);
        }
        let guest_policy = report.policy();
        let abi = ((guest_policy >> 8) as u8, guest_policy as u8);
        if guest_policy & policy::MIGRATE_MA != 0
            || (guest_policy & policy::SMT != 0 && !self.rules.allow_smt)
            || abi < self.rules.min_abi
        {
            return Err(RefusalCode::GuestPolicy);
        }
        let tcb = Tcb::from_raw(report.reported_tcb(), self.product);
        if !tcb.at_least(&self.rules.min_tcb) {
            return Err(RefusalCode::TcbTooLow);
        }
        Ok(Verified {
            tee: Tee::Snp,
            measurement: report.measurement().to_vec(),
            report_data: *report.report_data(),
            debug: guest_policy & policy::DEBUG != 0,
            host_data: super::snp_host_data(report.host_data()),
            tcb: format!("bl{}-tee{}-snp{}-ucode{}", tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode),
        })
    }
}

#[cfg(test)]
mod tests;
