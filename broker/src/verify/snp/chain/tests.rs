//! The chain checks the sev crate leaves out, against chains made with `simulated_firmware::certificates` that are
//! wrong in exactly one way: an expired VCEK, a not-yet-valid ASK, a VCEK issued under another name, a
//! certificate that is not a VCEK.

use p384::ecdsa::SigningKey;
use protocol::refusal::RefusalCode;
use simulated_firmware::SimulatedPsp;
use simulated_firmware::certificates::{ChainSpec, DEFAULT_VALIDITY, TestChain, VcekSubject};

use super::super::{Product, SnpRules, SnpVerifier, Tcb};
use super::*;

const CHIP_ID: [u8; 64] = [0x3c; 64];
/// The simulated PSP's default REPORTED_TCB: boot loader 3, TEE 0, SNP 8, microcode 115.
const SVNS: [u8; 4] = [3, 0, 8, 115];
const RULES: SnpRules = SnpRules {
    allow_smt: true,
    min_abi: (0, 0),
    vmpl: 0,
    min_tcb: Tcb { bootloader: 3, tee: 0, snp: 8, microcode: 115 },
};
/// 2023-01-01, 2024-01-01, 2025-01-01 and 2026-01-01 00:00 UTC.
const IN_2023: u64 = 1_672_531_200;
const START_OF_2024: u64 = 1_704_067_200;
const IN_2025: u64 = 1_735_689_600;
const START_OF_2026: u64 = 1_767_225_600;

fn key() -> SigningKey {
    SigningKey::from_slice(&[0x2b; 48]).unwrap()
}

fn chain(spec: &ChainSpec<'_>) -> TestChain {
    TestChain::with_spec(11, &key(), &VcekSubject { tcb: SVNS, chip_id: &CHIP_ID }, spec)
}

fn verifier_at(chain: &TestChain, now: u64) -> anyhow::Result<SnpVerifier> {
    SnpVerifier::new(Some((&chain.ark, &chain.ask)), &[&chain.vcek], Product::Milan, RULES, Box::new(move || now))
}

/// A report the chain's VCEK signed.
fn report() -> Vec<u8> {
    let mut psp = SimulatedPsp::new([1; 32], [0xa1; 48], key());
    psp.chip_id = CHIP_ID;
    psp.report(&[7; 64]).to_vec()
}

fn error(result: anyhow::Result<SnpVerifier>) -> String {
    format!("{:#}", result.err().expect("the verifier must refuse the chain"))
}

#[test]
fn a_chain_right_in_every_way_verifies_a_report() {
    let verifier = verifier_at(&chain(&ChainSpec::default()), IN_2025).unwrap();
    assert!(verifier.verify_at(&report(), IN_2025).is_ok());
}

#[test]
fn an_expired_vcek_is_refused_when_the_verifier_is_made_and_per_report() {
    let expired = chain(&ChainSpec { vcek_validity: (DEFAULT_VALIDITY.0, START_OF_2024), ..ChainSpec::default() });
    assert!(error(verifier_at(&expired, IN_2025)).contains("not now"));
    // A verifier made while the VCEK was valid stops accepting its reports once it has expired.
    let verifier = verifier_at(&expired, IN_2023).unwrap();
    assert!(verifier.verify_at(&report(), IN_2023).is_ok());
    assert_eq!(verifier.verify_at(&report(), IN_2025).unwrap_err(), RefusalCode::BadSignature);
}

#[test]
fn a_not_yet_valid_ask_is_refused() {
    let early = chain(&ChainSpec { ask_validity: (START_OF_2026, DEFAULT_VALIDITY.1), ..ChainSpec::default() });
    assert!(error(verifier_at(&early, IN_2025)).contains("not now"));
    let verifier = verifier_at(&early, START_OF_2026).unwrap();
    assert_eq!(verifier.verify_at(&report(), IN_2025).unwrap_err(), RefusalCode::BadSignature);
    assert!(verifier.verify_at(&report(), START_OF_2026).is_ok());
}

#[test]
fn a_vcek_issued_under_another_name_than_the_asks_is_refused() {
    // Signed by the ASK's key, so the sev crate's signature check passes; only the names disagree.
    let renamed = chain(&ChainSpec { vcek_issuer: "SEV-Genoa", ..ChainSpec::default() });
    assert!(error(verifier_at(&renamed, IN_2025)).contains("is not the ASK"));
}

#[test]
fn a_certificate_that_is_not_a_vcek_is_refused() {
    let vlek = chain(&ChainSpec { vcek_name: "SEV-VLEK", ..ChainSpec::default() });
    assert!(error(verifier_at(&vlek, IN_2025)).contains("is not a VCEK"));
}

#[test]
fn names_are_checked_along_the_whole_chain() {
    let good = chain(&ChainSpec::default());
    let parse = |der: &[u8]| <Certificate as x509_cert::der::Decode>::from_der(der).unwrap();
    let (ark, ask, vcek) = (parse(&good.ark), parse(&good.ask), parse(&good.vcek));
    check_names(&ark, &ask, &vcek).unwrap();
    assert!(check_names(&ask, &ask, &vcek).unwrap_err().to_string().contains("not self-issued"));
    assert!(check_names(&ark, &ark, &vcek).unwrap_err().to_string().contains("is not the ASK"));
}

#[test]
fn the_window_is_the_intersection_and_includes_its_ends() {
    let spec = ChainSpec {
        ask_validity: (IN_2023, START_OF_2026),
        vcek_validity: (START_OF_2024, DEFAULT_VALIDITY.1),
        ..ChainSpec::default()
    };
    let made = chain(&spec);
    let parse = |der: &[u8]| <Certificate as x509_cert::der::Decode>::from_der(der).unwrap();
    let window = window([&parse(&made.ark), &parse(&made.ask), &parse(&made.vcek)]).unwrap();
    assert_eq!(window, Window { not_before: START_OF_2024, not_after: START_OF_2026 });
    assert!(window.contains(START_OF_2024) && window.contains(START_OF_2026));
    assert!(!window.contains(START_OF_2024 - 1) && !window.contains(START_OF_2026 + 1));
}
