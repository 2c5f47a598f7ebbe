//! Intel TDX evidence: a DCAP quote (version 4 or 5) for a TD, verified with dcap-qvl against collateral from a
//! file the configuration names (TCB info, QE identity, CRLs and their chains, from a PCCS or Intel's PCS, fetched
//! ahead of time: no network). The time the collateral must be valid at is an input ([`TdxVerifier::verify_at`]),
//! so tests are deterministic. Per quote, in this order:
//!
//! 1. exactly one quote of a TD, version 4 or 5, with no slack: no bytes after it, and certification data that is
//!    the QE report's (type 6) carrying a PCK certificate chain (type 5) that fills it exactly. dcap-qvl reads the
//!    outer data as a QE report whatever its type says and ignores bytes after the chain; those type and length
//!    fields are signed by nobody, so they are checked here;
//! 2. dcap-qvl: the quote's signature, the QE report, the PCK chain to Intel's root, the collateral's signatures
//!    and validity at the given time, and the platform's TCB status;
//! 3. the TCB status is one the configuration accepts (default: `UpToDate` only);
//! 4. the full TD ATTRIBUTES and XFAM equal the configured values (debug, SEPT_VE_DISABLE and the rest, not only the
//!    debug bit: DESIGN.md §9);
//! 5. RTMR0..3 equal the configured values (default all zero: Ampoule extends no RTMR).
//!
//! The measurement is MRTD; the debug bit (ATTRIBUTES.TUD) and MRCONFIGID (the sealed model's binding) are returned
//! for the common policy to judge.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dcap_qvl::QuoteCollateralV3;
use dcap_qvl::quote::{AuthData, Quote, Report};
use dcap_qvl::verify::QuoteVerifier;
use protocol::refusal::RefusalCode;
use protocol::tee::Tee;
use serde::Deserialize;

use super::{Verified, Verifier};
use crate::Clock;

/// TD ATTRIBUTES bit 0 (TUD.DEBUG) and bit 28 (SEPT_VE_DISABLE) (Intel TDX module ABI, "ATTRIBUTES").
pub const TD_ATTRIBUTES_DEBUG: u64 = 1 << 0;
/// SEPT_VE_DISABLE: QEMU sets it by default.
pub const TD_ATTRIBUTES_SEPT_VE_DISABLE: u64 = 1 << 28;
/// Certification data types (Intel DCAP quote format): QE report certification data, and the PCK certificate
/// chain (PEM) inside it.
const CERT_TYPE_QE_REPORT: u16 = 6;
const CERT_TYPE_PCK_CHAIN: u16 = 5;

/// The `[tdx]` table of the broker's configuration.
///
/// ```toml
/// [tdx]
/// collateral = "collateral.json"   # dcap-qvl's QuoteCollateralV3 JSON for the platforms' FMSPC
/// accepted_tcb_status = ["UpToDate"]
/// td_attributes = 0x10000000       # exactly: SEPT_VE_DISABLE, debug off
/// xfam = 0x61ae7                   # exactly: the extended state the TD may use
/// # rtmrs = ["00...", "00...", "00...", "00..."]   # default: all zero
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdxConfig {
    /// The collateral (JSON).
    pub collateral: PathBuf,
    /// Intel's SGX root CA (DER), instead of the one dcap-qvl carries.
    #[serde(default)]
    pub root_ca: Option<PathBuf>,
    /// The TCB statuses accepted.
    #[serde(default = "up_to_date_only")]
    pub accepted_tcb_status: Vec<String>,
    /// The exact TD ATTRIBUTES.
    #[serde(default = "qemu_td_attributes")]
    pub td_attributes: u64,
    /// The exact XFAM.
    pub xfam: u64,
    /// The exact RTMR0..3, hex.
    #[serde(default)]
    pub rtmrs: Option<[String; 4]>,
}

fn up_to_date_only() -> Vec<String> {
    vec!["UpToDate".into()]
}

fn qemu_td_attributes() -> u64 {
    TD_ATTRIBUTES_SEPT_VE_DISABLE
}

/// What a TD quote must satisfy beyond its signature.
#[derive(Clone, Debug)]
pub struct TdxRules {
    /// The TCB statuses accepted (dcap-qvl's names: UpToDate, SWHardeningNeeded, ConfigurationNeeded, OutOfDate...).
    pub accepted_tcb_status: Vec<String>,
    /// The exact TD ATTRIBUTES.
    pub td_attributes: u64,
    /// The exact XFAM.
    pub xfam: u64,
    /// The exact RTMR0..3.
    pub rtmrs: [[u8; 48]; 4],
}

/// Verifies TD quotes against collateral, Intel's root and the rules.
pub struct TdxVerifier {
    collateral: QuoteCollateralV3,
    root_ca: Option<Vec<u8>>,
    rules: TdxRules,
    clock: Clock,
}

impl TdxVerifier {
    /// A verifier for `collateral` (dcap-qvl's JSON), with Intel's root built into dcap-qvl unless `root_ca` (DER)
    /// is given; `clock` says the time the collateral must be valid at, in seconds since the Unix epoch.
    pub fn new(collateral_json: &[u8], root_ca: Option<Vec<u8>>, rules: TdxRules, clock: Clock) -> Result<Self> {
        let collateral = serde_json::from_slice(collateral_json).context("the TDX collateral is not valid JSON")?;
        Ok(TdxVerifier { collateral, root_ca, rules, clock })
    }

    /// The verifier a configuration's `[tdx]` table describes (`Config::load` made its paths absolute).
    pub fn from_config(config: &TdxConfig, clock: Clock) -> Result<TdxVerifier> {
        let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        let root_ca = config.root_ca.as_deref().map(read).transpose()?;
        let mut rtmrs = [[0u8; 48]; 4];
        for (rtmr, text) in rtmrs.iter_mut().zip(config.rtmrs.iter().flatten()) {
            let bytes = hex::decode(text).context("an RTMR in [tdx] is not hex")?;
            *rtmr = bytes.try_into().map_err(|_| anyhow::anyhow!("an RTMR in [tdx] is not 48 bytes"))?;
        }
        let rules = TdxRules {
            accepted_tcb_status: config.accepted_tcb_status.clone(),
            td_attributes: config.td_attributes,
            xfam: config.xfam,
            rtmrs,
        };
        TdxVerifier::new(&read(&config.collateral)?, root_ca, rules, clock)
    }

    /// The same paths, relative to `base`.
    pub fn resolve_paths(config: &mut TdxConfig, base: &Path) {
        config.collateral = base.join(&config.collateral);
        config.root_ca = config.root_ca.as_ref().map(|p| base.join(p));
    }

    /// Verifies `evidence` with the collateral valid at `now` (seconds since the Unix epoch).
    pub fn verify_at(&self, evidence: &[u8], now: u64) -> Result<Verified, RefusalCode> {
        if protocol::tdx::quote_len::of(evidence) != Some(evidence.len()) {
            return Err(RefusalCode::MalformedEvidence);
        }
        let quote = Quote::parse(evidence).map_err(|_| RefusalCode::MalformedEvidence)?;
        let td = match &quote.report {
            Report::TD10(td) => td,
            Report::TD15(td) => &td.base,
            Report::TD15Ex(td) => &td.base.base,
            Report::SgxEnclave(_) => return Err(RefusalCode::WrongTee),
        };
        if !certification_data_is_exact(&quote) {
            return Err(RefusalCode::MalformedEvidence);
        }
        let verifier = match &self.root_ca {
            Some(root) => QuoteVerifier::new(root.clone()),
            None => QuoteVerifier::new_prod(),
        };
        // Debug TDs pass here and are judged by the common policy, like SNP guests.
        let verified = verifier
            .allow_debug(true)
            .verify(evidence, &self.collateral, now)
            .map_err(|_| RefusalCode::BadSignature)?;
        if !self.rules.accepted_tcb_status.contains(&verified.status) {
            return Err(RefusalCode::TcbTooLow);
        }
        let td_attributes = u64::from_le_bytes(td.td_attributes);
        if td_attributes & !TD_ATTRIBUTES_DEBUG != self.rules.td_attributes & !TD_ATTRIBUTES_DEBUG
            || u64::from_le_bytes(td.xfam) != self.rules.xfam
        {
            return Err(RefusalCode::GuestPolicy);
        }
        if [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3] != self.rules.rtmrs {
            return Err(RefusalCode::UnknownMeasurement);
        }
        Ok(Verified {
            tee: Tee::Tdx,
            measurement: td.mr_td.to_vec(),
            report_data: td.report_data,
            debug: td_attributes & TD_ATTRIBUTES_DEBUG != 0,
            host_data: td.mr_config_id,
            tcb: verified.status.clone(),
        })
    }
}

/// The QE report's certification data (type 6) carries a PCK chain (type 5) that fills it exactly: dcap-qvl reads
/// the outer data as a QE report whatever its (unsigned) type says, and ignores bytes after the inner chain.
fn certification_data_is_exact(quote: &Quote) -> bool {
    const QE_REPORT_LEN: usize = 384;
    const QE_REPORT_SIGNATURE_LEN: usize = 64;
    let AuthData::V4(auth) = &quote.auth_data else { return false };
    let qe = &auth.qe_report_data;
    let inner_len = QE_REPORT_LEN + QE_REPORT_SIGNATURE_LEN + 2 + qe.qe_auth_data.data.len() + 2 + 4;
    auth.certification_data.cert_type == CERT_TYPE_QE_REPORT
        && qe.certification_data.cert_type == CERT_TYPE_PCK_CHAIN
        && auth.certification_data.body.data.len() == inner_len + qe.certification_data.body.data.len()
}

impl Verifier for TdxVerifier {
    fn tee(&self) -> Tee {
        Tee::Tdx
    }

    fn verify(&self, evidence: &[u8]) -> Result<Verified, RefusalCode> {
        self.verify_at(evidence, (self.clock)())
    }
}

#[cfg(test)]
mod simulated_tests;
#[cfg(test)]
mod tests;
