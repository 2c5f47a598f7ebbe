//! The TDX verifier against the simulated DCAP platform (`simulated_firmware::dcap`): a quote its quoting enclave
//! signs, under its own root CA with collateral it signs, passes dcap-qvl's every check when the broker is given
//! that root, and each way the platform or its collateral can be wrong is refused.

use simulated_firmware::dcap::collateral::{Collateral, CollateralSpec};
use simulated_firmware::dcap::pki::{PkiSpec, SimulatedIntelPki};
use simulated_firmware::dcap::{Dates, SIMULATED_PLATFORM};
use simulated_firmware::{QuoteService, SimulatedTdx};

use super::*;

/// 2026-12-01 00:00 UTC: the collateral is issued an hour before.
const NOW: u64 = 1_796_083_200;
const MRTD: [u8; 48] = [0x3d; 48];
const REPORT_DATA: [u8; 64] = [0x57; 64];

/// The platform's quote for a TD measuring MRTD with REPORT_DATA.
fn simulated_quote() -> Vec<u8> {
    quote_certified_by(&SimulatedIntelPki::new(&SIMULATED_PLATFORM))
}

/// The same, by a quoting enclave certified by `pki`.
fn quote_certified_by(pki: &SimulatedIntelPki) -> Vec<u8> {
    let platform = SimulatedTdx::new(MRTD, QuoteService::AnswersAfter(0), 0).certified_by(pki);
    platform.quote(&platform.report(&REPORT_DATA))
}

fn rules() -> TdxRules {
    TdxRules {
        accepted_tcb_status: vec!["UpToDate".into()],
        td_attributes: TD_ATTRIBUTES_SEPT_VE_DISABLE,
        xfam: 0x7,
        rtmrs: [[0; 48]; 4],
    }
}

/// A verifier given the simulated root CA (or dcap-qvl's Intel root if `intel_root`) and collateral made by
/// `pki` as `spec` says.
fn verifier(pki: &SimulatedIntelPki, spec: &CollateralSpec, rules: TdxRules, intel_root: bool) -> TdxVerifier {
    let collateral = Collateral::new(pki, &SIMULATED_PLATFORM, spec).to_json();
    let root = (!intel_root).then(|| pki.root.certificate.clone());
    TdxVerifier::new(collateral.as_bytes(), root, rules, Box::new(|| NOW)).unwrap()
}

fn honest() -> (SimulatedIntelPki, CollateralSpec) {
    (SimulatedIntelPki::new(&SIMULATED_PLATFORM), CollateralSpec::current(Dates::current(NOW)))
}

#[test]
fn a_simulated_quote_verifies_under_the_simulated_root_with_its_collateral() {
    let (pki, spec) = honest();
    let verified = verifier(&pki, &spec, rules(), false).verify(&simulated_quote()).unwrap();
    assert_eq!((verified.tee, verified.measurement.as_slice()), (Tee::Tdx, &MRTD[..]));
    assert_eq!((verified.report_data, verified.debug), (REPORT_DATA, false));
}

#[test]
fn under_intels_root_the_simulated_platform_is_refused() {
    let (pki, spec) = honest();
    let refused = verifier(&pki, &spec, rules(), true).verify(&simulated_quote()).unwrap_err();
    assert_eq!(refused, RefusalCode::BadSignature);
}

#[test]
fn collateral_is_judged_at_the_given_time() {
    let (pki, spec) = honest();
    let verifier = verifier(&pki, &spec, rules(), false);
    let quote = simulated_quote();
    assert!(verifier.verify_at(&quote, spec.dates.issued).is_ok());
    // The CRLs expire at their nextUpdate (RFC 5280 §5.1.2.5), the TCB info and QE identity after it.
    assert!(verifier.verify_at(&quote, spec.dates.next_update - 1).is_ok());
    assert_eq!(verifier.verify_at(&quote, spec.dates.next_update).unwrap_err(), RefusalCode::BadSignature);
    assert_eq!(verifier.verify_at(&quote, spec.dates.issued - 1).unwrap_err(), RefusalCode::BadSignature);
}

#[test]
fn a_revoked_or_expired_certificate_is_refused() {
    let (_, spec) = honest();
    let expired = (NOW - 2 * 86_400, NOW - 86_400);
    for pki_spec in [
        PkiSpec { pck_revoked: true, ..PkiSpec::default() },
        PkiSpec { pck_validity: expired, ..PkiSpec::default() },
        PkiSpec { tcb_signing_validity: expired, ..PkiSpec::default() },
    ] {
        let pki = SimulatedIntelPki::with_spec(&SIMULATED_PLATFORM, pki_spec);
        let refused = verifier(&pki, &spec, rules(), false).verify(&quote_certified_by(&pki));
        assert_eq!(refused.map(|_| ()), Err(RefusalCode::BadSignature), "{pki_spec:?}");
    }
}

#[test]
fn a_bit_flipped_anywhere_in_the_quote_is_refused() {
    let (pki, spec) = honest();
    let verifier = verifier(&pki, &spec, rules(), false);
    let quote = simulated_quote();
    let signature_data = 48 + 584 + 4;
    // MRTD in the body, the quote's signature, the attestation key, the QE report, its signature, the auth data.
    for at in [48 + 136, signature_data, signature_data + 64, signature_data + 134, signature_data + 134 + 384] {
        let mut altered = quote.clone();
        altered[at] ^= 1;
        assert!(verifier.verify(&altered).is_err(), "byte {at} flipped");
    }
    assert!(verifier.verify(&quote).is_ok());
}

#[test]
fn collateral_that_does_not_vouch_for_the_platform_is_refused() {
    let (pki, honest_spec) = honest();
    let quote = simulated_quote();
    // The QE identity names another quoting enclave.
    let other_qe = CollateralSpec { qe_mrsigner: [0x11; 32], ..honest_spec };
    assert_eq!(verifier(&pki, &other_qe, rules(), false).verify(&quote).unwrap_err(), RefusalCode::BadSignature);
    // A TCB info edited after it was signed.
    let mut collateral = Collateral::new(&pki, &SIMULATED_PLATFORM, &honest_spec);
    collateral.tcb_info = collateral.tcb_info.replace("\"version\":3", "\"version\":3 ");
    let root = Some(pki.root.certificate.clone());
    let edited = TdxVerifier::new(collateral.to_json().as_bytes(), root, rules(), Box::new(|| NOW)).unwrap();
    assert_eq!(edited.verify(&quote).unwrap_err(), RefusalCode::BadSignature);
}

#[test]
fn an_out_of_date_platform_is_refused_unless_its_status_is_accepted() {
    let (pki, honest_spec) = honest();
    let spec = CollateralSpec { platform_status: "OutOfDate", ..honest_spec };
    let quote = simulated_quote();
    assert_eq!(verifier(&pki, &spec, rules(), false).verify(&quote).unwrap_err(), RefusalCode::TcbTooLow);
    let lenient = TdxRules { accepted_tcb_status: vec!["UpToDate".into(), "OutOfDate".into()], ..rules() };
    assert!(verifier(&pki, &spec, lenient, false).verify(&quote).is_ok());
}
