//! The simulated DCAP platform's own shape; the broker's tests run its quotes and collateral through dcap-qvl.

use x509_cert::crl::CertificateList;
use x509_cert::der::Decode;

use super::collateral::{Collateral, CollateralSpec};
use super::pki::{PkiSpec, SimulatedIntelPki};
use super::quoting_enclave::QuotingEnclave;
use super::*;

const NOW: u64 = 1_796_000_000;

#[test]
fn a_quote_is_one_dcap_quote_carrying_the_body_and_the_pck_chain() {
    let pki = SimulatedIntelPki::new(&SIMULATED_PLATFORM);
    let enclave = QuotingEnclave::new(&pki, &SIMULATED_PLATFORM);
    let body = [0x42; quoting_enclave::TD_QUOTE_BODY_LEN];
    let quote = enclave.quote(&body);
    assert_eq!(protocol::tdx::quote_len::of(&quote), Some(quote.len()));
    assert_eq!(&quote[48..48 + body.len()], &body);
    let chain = String::from_utf8_lossy(&quote[quote.len() - pki.pck_chain_pem().len()..]).into_owned();
    assert_eq!(chain, pki.pck_chain_pem());
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 3);
    // Deterministic signatures (RFC 6979): the same body, the same quote.
    assert_eq!(enclave.quote(&body), quote);
}

#[test]
fn the_documents_carry_their_dates_and_the_platform() {
    let pki = SimulatedIntelPki::new(&SIMULATED_PLATFORM);
    let dates = Dates::current(NOW);
    assert_eq!((dates.issued, dates.next_update), (NOW - 3600, NOW + 30 * 86_400));
    let collateral = Collateral::new(&pki, &SIMULATED_PLATFORM, &CollateralSpec::current(dates));
    let tcb_info: serde_json::Value = serde_json::from_str(&collateral.tcb_info).unwrap();
    // Checked with `date -u -d @1795996400`.
    assert_eq!(tcb_info["issueDate"], "2026-11-29T23:53:20Z");
    assert_eq!(tcb_info["fmspc"], "5A4D50000000");
    assert_eq!(tcb_info["tdxModuleIdentities"][0]["id"], "TDX_01");
    let qe_identity: serde_json::Value = serde_json::from_str(&collateral.qe_identity).unwrap();
    assert_eq!(qe_identity["nextUpdate"], "2026-12-30T00:53:20Z");
    let json: serde_json::Value = serde_json::from_str(&collateral.to_json()).unwrap();
    assert_eq!(json["tcb_info"], collateral.tcb_info);
    assert_eq!(json["pck_crl"], hex::encode(&collateral.pck_crl));
}

#[test]
fn the_pck_crl_lists_the_pck_certificate_only_when_revoked() {
    let revoked_count = |spec: PkiSpec| {
        let pki = SimulatedIntelPki::with_spec(&SIMULATED_PLATFORM, spec);
        let crl = CertificateList::from_der(&pki.pck_crl(Dates::current(NOW))).unwrap();
        crl.tbs_cert_list.revoked_certificates.map_or(0, |list| list.len())
    };
    assert_eq!(revoked_count(PkiSpec::default()), 0);
    assert_eq!(revoked_count(PkiSpec { pck_revoked: true, ..PkiSpec::default() }), 1);
}
