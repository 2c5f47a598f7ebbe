//! The collateral Intel's PCS serves for a platform, made for the simulated one: the TCB info (version 3, `TDX`)
//! and the TD quoting enclave's identity (version 2, `TD_QE`), each a JSON document signed with the TCB-signing
//! key (ECDSA P-256, the raw r || s of the signature over the document's bytes), with the signer's chain and the
//! two CRLs. [`Collateral::to_json`] writes it in the JSON dcap-qvl's `QuoteCollateralV3` reads (binary fields in
//! hex), the file the broker's `[tdx] collateral` names.

use chrono::{DateTime, SecondsFormat};
use p256::ecdsa::Signature;
use p256::ecdsa::signature::Signer;
use serde_json::json;

use super::pki::SimulatedIntelPki;
use super::{Dates, MRSIGNERSEAM, PlatformTcb, quoting_enclave_identity as qe};

/// The TCB evaluation data number the documents carry (Intel's increases with each TCB recovery).
const TCB_EVALUATION_DATA_NUMBER: u32 = 17;
/// The date of the platform's TCB level (fixed, so the documents depend only on their own dates).
const TCB_DATE: &str = "2026-01-01T00:00:00Z";

/// What the collateral says, so that a test can make it wrong in one way.
#[derive(Clone, Copy, Debug)]
pub struct CollateralSpec {
    /// The TCB info's, the QE identity's and the CRLs' dates.
    pub dates: Dates,
    /// The status of the TCB level the platform meets (`UpToDate` unless a test says otherwise).
    pub platform_status: &'static str,
    /// The QE identity's MRSIGNER.
    pub qe_mrsigner: [u8; 32],
}

impl CollateralSpec {
    /// Collateral dated `dates` that the simulated platform meets exactly.
    pub fn current(dates: Dates) -> CollateralSpec {
        CollateralSpec { dates, platform_status: "UpToDate", qe_mrsigner: qe::MRSIGNER }
    }
}

/// A platform's collateral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collateral {
    /// The TCB info document.
    pub tcb_info: String,
    /// Its signature (r || s).
    pub tcb_info_signature: [u8; 64],
    /// The QE identity document.
    pub qe_identity: String,
    /// Its signature (r || s).
    pub qe_identity_signature: [u8; 64],
    /// The TCB-signing chain (PEM), for both documents.
    pub signing_chain: String,
    /// The root CA's CRL (DER).
    pub root_ca_crl: Vec<u8>,
    /// The PCK Platform CA's CRL (DER).
    pub pck_crl: Vec<u8>,
    /// The PCK CRL's issuer chain (PEM).
    pub pck_crl_issuer_chain: String,
}

fn rfc3339(seconds: u64) -> String {
    let seconds = i64::try_from(seconds).expect("a date before 2262");
    DateTime::from_timestamp(seconds, 0).expect("a representable date").to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn components(svns: &[u8]) -> Vec<serde_json::Value> {
    svns.iter().map(|svn| json!({ "svn": svn })).collect()
}

/// The TCB info for `platform`: its own TCB at `status`, and an older level (one SVN lower everywhere) out of date.
fn tcb_info(platform: &PlatformTcb, spec: &CollateralSpec) -> String {
    let level = |cpu_svn: &[u8], pce_svn: u16, tee_tcb_svn: &[u8], status: &str| {
        json!({
            "tcb": {
                "sgxtcbcomponents": components(cpu_svn),
                "pcesvn": pce_svn,
                "tdxtcbcomponents": components(tee_tcb_svn),
            },
            "tcbDate": TCB_DATE,
            "tcbStatus": status,
        })
    };
    let lower = |svns: &[u8]| svns.iter().map(|svn| svn.saturating_sub(1)).collect::<Vec<u8>>();
    let module_svn = platform.tee_tcb_svn[0];
    let module = |id: &str, levels: serde_json::Value| {
        json!({
            "id": id,
            "mrsigner": hex::encode_upper(MRSIGNERSEAM),
            "attributes": "0000000000000000",
            "attributesMask": "FFFFFFFFFFFFFFFF",
            "tcbLevels": levels,
        })
    };
    let module_levels = json!([{ "tcb": { "isvsvn": module_svn }, "tcbDate": TCB_DATE, "tcbStatus": "UpToDate" }]);
    json!({
        "id": "TDX",
        "version": 3,
        "issueDate": rfc3339(spec.dates.issued),
        "nextUpdate": rfc3339(spec.dates.next_update),
        "fmspc": hex::encode_upper(platform.fmspc),
        "pceId": hex::encode_upper(platform.pce_id),
        "tcbType": 0,
        "tcbEvaluationDataNumber": TCB_EVALUATION_DATA_NUMBER,
        "tdxModule": {
            "mrsigner": hex::encode_upper(MRSIGNERSEAM),
            "attributes": "0000000000000000",
            "attributesMask": "FFFFFFFFFFFFFFFF",
        },
        "tdxModuleIdentities": [module(&format!("TDX_{:02X}", platform.tee_tcb_svn[1]), module_levels)],
        "tcbLevels": [
            level(&platform.cpu_svn, platform.pce_svn, &platform.tee_tcb_svn, spec.platform_status),
            level(&lower(&platform.cpu_svn), platform.pce_svn - 1, &lower(&platform.tee_tcb_svn), "OutOfDate"),
        ],
    })
    .to_string()
}

/// The TD quoting enclave's identity: its MRSIGNER, ISVPRODID, ATTRIBUTES and MISCSELECT with Intel's masks, and
/// one TCB level at the platform's QE SVN.
fn qe_identity(platform: &PlatformTcb, spec: &CollateralSpec) -> String {
    json!({
        "id": "TD_QE",
        "version": 2,
        "issueDate": rfc3339(spec.dates.issued),
        "nextUpdate": rfc3339(spec.dates.next_update),
        "tcbEvaluationDataNumber": TCB_EVALUATION_DATA_NUMBER,
        "miscselect": hex::encode_upper(qe::MISCSELECT.to_le_bytes()),
        "miscselectMask": "FFFFFFFF",
        "attributes": hex::encode_upper(qe::ATTRIBUTES),
        "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
        "mrsigner": hex::encode_upper(spec.qe_mrsigner),
        "isvprodid": qe::ISVPRODID,
        "tcbLevels": [{ "tcb": { "isvsvn": platform.qe_svn }, "tcbDate": TCB_DATE, "tcbStatus": "UpToDate" }],
    })
    .to_string()
}

impl Collateral {
    /// The collateral `pki` signs for `platform` as `spec` describes it.
    pub fn new(pki: &SimulatedIntelPki, platform: &PlatformTcb, spec: &CollateralSpec) -> Collateral {
        let sign = |document: &str| -> [u8; 64] {
            let signature: Signature = pki.tcb_signing.key.sign(document.as_bytes());
            signature.to_bytes().into()
        };
        let tcb_info = tcb_info(platform, spec);
        let qe_identity = qe_identity(platform, spec);
        Collateral {
            tcb_info_signature: sign(&tcb_info),
            qe_identity_signature: sign(&qe_identity),
            tcb_info,
            qe_identity,
            signing_chain: pki.tcb_signing_chain_pem(),
            root_ca_crl: pki.root_ca_crl(spec.dates),
            pck_crl: pki.pck_crl(spec.dates),
            pck_crl_issuer_chain: pki.platform_ca_chain_pem(),
        }
    }

    /// The JSON of dcap-qvl's `QuoteCollateralV3` (the PCCS's collateral for a quote, binary fields in hex).
    pub fn to_json(&self) -> String {
        json!({
            "pck_crl_issuer_chain": self.pck_crl_issuer_chain,
            "root_ca_crl": hex::encode(&self.root_ca_crl),
            "pck_crl": hex::encode(&self.pck_crl),
            "tcb_info_issuer_chain": self.signing_chain,
            "tcb_info": self.tcb_info,
            "tcb_info_signature": hex::encode(self.tcb_info_signature),
            "qe_identity_issuer_chain": self.signing_chain,
            "qe_identity": self.qe_identity,
            "qe_identity_signature": hex::encode(self.qe_identity_signature),
        })
        .to_string()
    }
}
