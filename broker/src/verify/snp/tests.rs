//! The SNP verifier against real hardware output (the Milan report, VCEK and AMD chain that the sev crate
//! publishes with its tests, read from its source in cargo's registry), and each rule against reports signed here
//! with a test key.

use p384::ecdsa::SigningKey;
use protocol::report::{REPORT_LEN, SIGNATURE_OFFSET, simulated_report};
use simulated_firmware::SimulatedPsp;
use simulated_firmware::certificates::{TestChain, VcekSubject};
use simulated_firmware::published::sev_test_data;

use super::*;

fn milan_report() -> Vec<u8> {
    let hex_text = sev_test_data("report_milan.hex");
    hex::decode(String::from_utf8(hex_text).unwrap().trim()).unwrap()
}

/// The published report: policy 0x30000 (SMT allowed, ABI 0.0), VMPL 0, REPORTED_TCB boot loader 3, TEE 0,
/// SNP 8, microcode 115.
const MILAN_RULES: SnpRules = SnpRules {
    allow_smt: true,
    min_abi: (0, 0),
    vmpl: 0,
    min_tcb: Tcb { bootloader: 3, tee: 0, snp: 8, microcode: 115 },
};

/// 2025-01-01 00:00 UTC: inside the published VCEK's validity (2023-04-03 to 2030-04-03) and AMD's Milan ARK and
/// ASK's, and inside the test chains' (2020 to 2049).
const IN_2025: u64 = 1_735_689_600;

/// A clock that reads [`IN_2025`].
fn at_2025() -> crate::Clock {
    Box::new(|| IN_2025)
}

fn milan_verifier(rules: SnpRules) -> SnpVerifier {
    SnpVerifier::new(None, &[&sev_test_data("vcek_milan.der")], Product::Milan, rules, at_2025()).unwrap()
}

#[test]
fn the_published_milan_report_verifies_through_amds_chain() {
    let verified = milan_verifier(MILAN_RULES).verify(&milan_report()).unwrap();
    assert_eq!(verified.tee, Tee::Snp);
    assert_eq!(hex::encode(&verified.measurement[..8]), "7a1e5c266c0108db");
    assert_eq!(hex::encode(&verified.report_data[..8]), "d447b55d197491bf");
    assert!(!verified.debug);
}

#[test]
fn one_flipped_bit_anywhere_in_the_published_report_is_refused() {
    let verifier = milan_verifier(MILAN_RULES);
    let report = milan_report();
    for index in 0..report.len() {
        let mut flipped = report.clone();
        flipped[index] ^= 1 << (index % 8);
        assert!(verifier.verify(&flipped).is_err(), "a flip at {index:#x} was accepted");
    }
}

#[test]
fn a_chain_that_does_not_verify_is_refused_when_the_verifier_is_made() {
    let vcek = sev_test_data("vcek_milan.der");
    // The Milan VCEK under Genoa's and Turin's roots.
    for product in [Product::Genoa, Product::Turin] {
        assert!(SnpVerifier::new(None, &[&vcek], product, MILAN_RULES, at_2025()).is_err(), "{product:?}");
    }
    // A VCEK whose signature bytes were changed.
    let mut tampered = vcek.clone();
    let last = tampered.len() - 10;
    tampered[last] ^= 0x01;
    assert!(SnpVerifier::new(None, &[&tampered], Product::Milan, MILAN_RULES, at_2025()).is_err());
    // The ASK given as the ARK (not self-signed).
    let ask = builtin::milan::ask().unwrap().to_der().unwrap();
    assert!(SnpVerifier::new(Some((&ask, &ask)), &[&vcek], Product::Milan, MILAN_RULES, at_2025()).is_err());
    // One good VCEK does not excuse a bad one in the same list; the same VCEK twice is ambiguous; none is nothing.
    assert!(SnpVerifier::new(None, &[&vcek, &tampered], Product::Milan, MILAN_RULES, at_2025()).is_err());
    assert!(SnpVerifier::new(None, &[&vcek, &vcek], Product::Milan, MILAN_RULES, at_2025()).is_err());
    assert!(SnpVerifier::new(None, &[], Product::Milan, MILAN_RULES, at_2025()).is_err());
}

#[test]
fn the_published_report_is_refused_under_stricter_rules() {
    let report = milan_report();
    let refused = |rules| milan_verifier(rules).verify(&report).unwrap_err();
    assert_eq!(refused(SnpRules { allow_smt: false, ..MILAN_RULES }), RefusalCode::GuestPolicy);
    assert_eq!(refused(SnpRules { min_abi: (1, 51), ..MILAN_RULES }), RefusalCode::GuestPolicy);
    assert_eq!(refused(SnpRules { vmpl: 1, ..MILAN_RULES }), RefusalCode::WrongVmpl);
    for min_tcb in [
        Tcb { bootloader: 4, ..MILAN_RULES.min_tcb },
        Tcb { tee: 1, ..MILAN_RULES.min_tcb },
        Tcb { snp: 9, ..MILAN_RULES.min_tcb },
        Tcb { microcode: 116, ..MILAN_RULES.min_tcb },
    ] {
        assert_eq!(refused(SnpRules { min_tcb, ..MILAN_RULES }), RefusalCode::TcbTooLow, "{min_tcb:?}");
    }
}

const TEST_KEY: [u8; 48] = [0x17; 48];

/// The simulated PSP, signing with [`TEST_KEY`].
fn test_psp() -> SimulatedPsp {
    SimulatedPsp::new([0x42; 32], [0xa1; 48], SigningKey::from_slice(&TEST_KEY).unwrap())
}

/// A report with the given fields, signed by [`TEST_KEY`] as a PSP would sign it.
fn signed_report(policy_bits: u64, vmpl: u32, reported_tcb: [u8; 8]) -> [u8; REPORT_LEN] {
    let mut psp = test_psp();
    (psp.policy, psp.reported_tcb) = (policy_bits, reported_tcb);
    let mut report = psp.report(&[0x5e; 64]);
    report[0x30..0x34].copy_from_slice(&vmpl.to_le_bytes());
    psp.sign(&mut report);
    report
}

const GOOD_POLICY: u64 = policy::RESERVED_MUST_BE_ONE;
/// Milan layout: boot loader 3, TEE 0, SNP 8 (byte 6), microcode 115 (byte 7).
const GOOD_TCB: [u8; 8] = [3, 0, 0, 0, 0, 0, 8, 115];

/// The simulated PSP's CHIP_ID.
const TEST_CHIP_ID: [u8; 64] = [0xc1; 64];

/// A verifier trusting [`TEST_KEY`] as the VCEK of the simulated PSP's chip at `GOOD_TCB`.
fn test_verifier(rules: SnpRules, product: Product) -> SnpVerifier {
    test_verifier_at(rules, product, GOOD_TCB)
}

/// The same, for a VCEK issued at `reported_tcb` (raw, as `product` lays it out).
fn test_verifier_at(rules: SnpRules, product: Product, reported_tcb: [u8; 8]) -> SnpVerifier {
    let key = SigningKey::from_slice(&TEST_KEY).unwrap();
    let identity = VcekIdentity { tcb: Tcb::from_raw(reported_tcb, product), hw_id: TEST_CHIP_ID.to_vec() };
    SnpVerifier::trusting(*key.verifying_key(), identity, product, rules)
}

#[test]
fn each_rule_refuses_a_validly_signed_report_that_breaks_it() {
    let rules = SnpRules { allow_smt: false, ..MILAN_RULES };
    let verifier = test_verifier(rules, Product::Milan);
    assert!(verifier.verify(&signed_report(GOOD_POLICY, 0, GOOD_TCB)).is_ok());
    let refused = |report: [u8; REPORT_LEN]| verifier.verify(&report).unwrap_err();
    assert_eq!(refused(signed_report(GOOD_POLICY | policy::MIGRATE_MA, 0, GOOD_TCB)), RefusalCode::GuestPolicy);
    assert_eq!(refused(signed_report(GOOD_POLICY | policy::SMT, 0, GOOD_TCB)), RefusalCode::GuestPolicy);
    assert_eq!(refused(signed_report(GOOD_POLICY, 2, GOOD_TCB)), RefusalCode::WrongVmpl);
    for (byte, below) in [(0, 2), (6, 7), (7, 114)] {
        let mut tcb = GOOD_TCB;
        tcb[byte] = below;
        // Signed by the VCEK of that lower TCB, which the verifier holds.
        let at_that_tcb = test_verifier_at(rules, Product::Milan, tcb);
        let report = signed_report(GOOD_POLICY, 0, tcb);
        assert_eq!(at_that_tcb.verify(&report).unwrap_err(), RefusalCode::TcbTooLow, "byte {byte}");
        // The verifier holding the VCEK of GOOD_TCB: not its report at all.
        assert_eq!(refused(report), RefusalCode::BadSignature, "byte {byte}");
    }
    let strict_abi = test_verifier(SnpRules { min_abi: (1, 51), ..rules }, Product::Milan);
    assert_eq!(
        strict_abi.verify(&signed_report(GOOD_POLICY | 0x0132, 0, GOOD_TCB)).unwrap_err(),
        RefusalCode::GuestPolicy
    );
    assert!(strict_abi.verify(&signed_report(GOOD_POLICY | 0x0133, 0, GOOD_TCB)).is_ok());
    // Debugging is a fact for the policy to judge, not a verification failure.
    assert!(verifier.verify(&signed_report(GOOD_POLICY | policy::DEBUG, 0, GOOD_TCB)).unwrap().debug);
}

#[test]
fn turin_reads_its_own_tcb_layout() {
    // Turin: FMC at byte 0, then boot loader, TEE, SNP; microcode at byte 7.
    let turin_tcb = [9, 3, 0, 8, 0, 0, 0, 115];
    let verifier = test_verifier_at(MILAN_RULES, Product::Turin, turin_tcb);
    assert!(verifier.verify(&signed_report(GOOD_POLICY | policy::SMT, 0, turin_tcb)).is_ok());
    // Milan's layout read as Turin's: boot loader, TEE and SNP 0.
    let misread = test_verifier_at(MILAN_RULES, Product::Turin, GOOD_TCB);
    assert_eq!(
        misread.verify(&signed_report(GOOD_POLICY | policy::SMT, 0, GOOD_TCB)).unwrap_err(),
        RefusalCode::TcbTooLow
    );
}

#[test]
fn malformed_simulated_and_badly_signed_reports_are_refused() {
    let verifier = test_verifier(MILAN_RULES, Product::Milan);
    let good = signed_report(GOOD_POLICY, 0, GOOD_TCB);
    assert_eq!(verifier.verify(&good[..REPORT_LEN - 1]).unwrap_err(), RefusalCode::MalformedEvidence);
    assert_eq!(verifier.verify(&[&good[..], &[0]].concat()).unwrap_err(), RefusalCode::MalformedEvidence);
    let simulated = simulated_report(&[0xa1; 48], &[0; 64], GOOD_POLICY);
    assert_eq!(verifier.verify(&simulated).unwrap_err(), RefusalCode::WrongTee);
    let mut version_one = good;
    version_one[0] = 1;
    test_psp().sign(&mut version_one);
    assert_eq!(verifier.verify(&version_one).unwrap_err(), RefusalCode::MalformedEvidence);
    // Non-zero bytes above the 48 that P-384 uses.
    let mut padded = good;
    padded[SIGNATURE_OFFSET + 60] = 1;
    assert_eq!(verifier.verify(&padded).unwrap_err(), RefusalCode::BadSignature);
    // Signed by another key.
    let other = SigningKey::from_slice(&[0x18; 48]).unwrap();
    let identity = VcekIdentity { tcb: Tcb::from_raw(GOOD_TCB, Product::Milan), hw_id: TEST_CHIP_ID.to_vec() };
    let stranger = SnpVerifier::trusting(*other.verifying_key(), identity, Product::Milan, MILAN_RULES);
    assert_eq!(stranger.verify(&good).unwrap_err(), RefusalCode::BadSignature);
}

#[test]
fn a_broker_configuration_with_an_snp_table_accepts_the_published_report() {
    let dir = std::env::temp_dir().join(format!("ampoule-snp-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("vcek.der"), sev_test_data("vcek_milan.der")).unwrap();
    let report = milan_report();
    let measurement = hex::encode(&report[0x90..0xc0]);
    let config = format!(
        "listen = \"127.0.0.1:0\"\naudit_log = \"audit.jsonl\"\n\
         [snp]\nproduct = \"milan\"\nvcek = \"vcek.der\"\nallow_smt = true\n\
         min_tcb = {{ bootloader = 3, tee = 0, snp = 8, microcode = 115 }}\n\
         [[allow]]\ntee = \"snp\"\nmeasurement = \"{measurement}\"\nkey_id = \"{}\"\n",
        "00".repeat(16)
    );
    std::fs::write(dir.join("broker.toml"), config).unwrap();
    let policy =
        crate::policy::Policy::from_config(&crate::config::Config::load(&dir.join("broker.toml")).unwrap()).unwrap();
    let report_data: [u8; 64] = report[0x50..0x90].try_into().unwrap();
    let (verified, allowed) = policy.check(Tee::Snp, &report, &report_data).unwrap();
    assert_eq!((verified.tee, allowed.key_id), (Tee::Snp, [0; 16]));
    assert_eq!(policy.check(Tee::Snp, &report, &[0; 64]).unwrap_err(), RefusalCode::BindingMismatch);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The simulated PSP's X.509 chain in AMD's shape (RSA-PSS ARK and ASK, a VCEK with AMD's extensions) for its
/// test key, naming its TCB and chip.
fn test_chain(seed: u64, tcb: [u8; 4]) -> TestChain {
    let key = SigningKey::from_slice(&TEST_KEY).unwrap();
    TestChain::new(seed, &key, &VcekSubject { tcb, chip_id: &TEST_CHIP_ID })
}

/// The guest's request code and this verifier meet: `loader::SnpAttester` asks the simulated PSP (through a
/// hypervisor that only carries pages) for evidence, and the verifier, holding the PSP's X.509 chain ARK -> ASK ->
/// VCEK (checked as AMD's are), accepts it.
#[test]
fn evidence_from_the_guests_snp_attester_verifies_through_the_psps_chain() {
    use loader::snp_attester::{GuestRequest, GuestRequestError, MESSAGE_PAGE_LEN};
    use loader::{Attester, SnpAttester};

    struct Carrier(SimulatedPsp);
    impl GuestRequest for Carrier {
        fn exchange(&mut self, request: &[u8], page: &mut [u8; MESSAGE_PAGE_LEN]) -> Result<(), GuestRequestError> {
            let response = self.0.answer(request).ok_or(GuestRequestError::Failed(0))?;
            page[..response.len()].copy_from_slice(&response);
            Ok(())
        }
    }
    let chain = test_chain(1, [3, 0, 8, 115]);
    let ca = Some((chain.ark.as_slice(), chain.ask.as_slice()));
    let verifier = SnpVerifier::new(ca, &[&chain.vcek], Product::Milan, MILAN_RULES, at_2025()).unwrap();
    let identity = verifier.identities().next().unwrap();
    assert_eq!((identity.tcb, identity.hw_id.as_slice()), (Tcb::from_raw(GOOD_TCB, Product::Milan), &TEST_CHIP_ID[..]));
    let mut attester = SnpAttester::new([0x42; 32], 0, Carrier(test_psp()));
    let evidence = attester.evidence(&[0x33; 64]).unwrap();
    let verified = verifier.verify(&evidence).unwrap();
    assert_eq!((verified.report_data, verified.measurement), ([0x33; 64], vec![0xa1; 48]));
    // Under stricter rules the same guest is refused.
    let strict =
        SnpVerifier::new(ca, &[&chain.vcek], Product::Milan, SnpRules { allow_smt: false, ..MILAN_RULES }, at_2025());
    assert_eq!(strict.unwrap().verify(&attester.evidence(&[0x34; 64]).unwrap()).unwrap_err(), RefusalCode::GuestPolicy);
    // A VCEK certificate for another TCB than the PSP reports: its reports are not that VCEK's.
    let other_tcb = test_chain(1, [3, 0, 8, 116]);
    let ca_other = Some((other_tcb.ark.as_slice(), other_tcb.ask.as_slice()));
    let at_other_tcb = SnpVerifier::new(ca_other, &[&other_tcb.vcek], Product::Milan, MILAN_RULES, at_2025()).unwrap();
    assert_eq!(at_other_tcb.verify(&evidence).unwrap_err(), RefusalCode::BadSignature);
}

/// The chain checks of AMD's roots apply to the simulated PSP's: another root, a VCEK from another chain, a
/// tampered certificate are refused when the verifier is made.
#[test]
fn the_psps_chain_is_checked_like_amds() {
    let chain = test_chain(1, [3, 0, 8, 115]);
    let stranger = test_chain(2, [3, 0, 8, 115]);
    let new = |ark: &[u8], ask: &[u8], vcek: &[u8]| {
        SnpVerifier::new(Some((ark, ask)), &[vcek], Product::Milan, MILAN_RULES, at_2025())
    };
    assert!(new(&chain.ark, &chain.ask, &chain.vcek).is_ok());
    assert!(new(&stranger.ark, &stranger.ask, &chain.vcek).is_err(), "a VCEK under another ASK");
    assert!(new(&chain.ark, &stranger.ask, &chain.vcek).is_err(), "an ASK under another ARK");
    assert!(new(&chain.ark, &chain.ask, &chain.ark).is_err(), "the ARK as a VCEK");
    // AMD's own Milan roots do not vouch for the test VCEK.
    assert!(SnpVerifier::new(None, &[&chain.vcek], Product::Milan, MILAN_RULES, at_2025()).is_err());
    for index in [chain.vcek.len() / 2, chain.vcek.len() - 5] {
        let mut tampered = chain.vcek.clone();
        tampered[index] ^= 0x01;
        assert!(new(&chain.ark, &chain.ask, &tampered).is_err(), "a flip at {index}");
    }
}

/// The report layout the guest side makes (the simulated PSP writes it with `protocol::report`'s offsets) is the
/// one the sev crate parses, field by field, and re-encodes byte for byte.
#[test]
fn reports_laid_out_here_read_the_same_in_the_sev_crate() {
    use sev::firmware::guest::AttestationReport;
    use sev::parser::ByteParser;

    let mut psp = test_psp();
    psp.policy |= policy::DEBUG;
    let ours = psp.report(&[0x5e; 64]);
    let theirs = AttestationReport::from_bytes(&ours).unwrap();
    assert_eq!((theirs.version, theirs.vmpl, theirs.sig_algo), (2, 0, 1));
    assert!(theirs.policy.debug_allowed() && theirs.policy.smt_allowed() && !theirs.policy.migrate_ma_allowed());
    assert_eq!((theirs.report_data, theirs.measurement), ([0x5e; 64], [0xa1; 48]));
    let tcb = theirs.reported_tcb;
    assert_eq!((tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode), (3, 0, 8, 115));
    assert_eq!(theirs.to_bytes().unwrap().as_slice(), &ours[..]);
    // And the published report reads the same both ways.
    let published = milan_report();
    let view = SnpReport::new(&published).unwrap();
    let theirs = AttestationReport::from_bytes(&published).unwrap();
    assert_eq!((view.version(), view.vmpl(), view.policy()), (theirs.version, theirs.vmpl, 0x30000));
    assert_eq!((view.measurement(), view.report_data()), (&theirs.measurement, &theirs.report_data));
}

/// The published VCEK names the chip and TCB of the published report (real hardware output on both sides).
#[test]
fn the_published_vcek_certifies_the_published_reports_chip_and_tcb() {
    let verifier = milan_verifier(MILAN_RULES);
    let report = milan_report();
    let view = SnpReport::new(&report).unwrap();
    let identity = verifier.identities().next().unwrap();
    assert_eq!(identity.hw_id.as_slice(), view.chip_id().as_slice());
    assert_eq!(identity.tcb, Tcb::from_raw(view.reported_tcb(), Product::Milan));
    assert_eq!(identity.tcb, Tcb { bootloader: 3, tee: 0, snp: 8, microcode: 115 });
    // Turin's published VCEK: its own TCB, and an 8-byte hwID.
    let turin = sev::certs::snp::Certificate::from_der(&sev_test_data("vcek_turin.der")).unwrap();
    let identity = VcekIdentity::of(&turin.into()).unwrap();
    assert_eq!(identity.hw_id.len(), 8, "{identity:?}");
    // The ARK is not a VCEK: no chip, no TCB.
    let ark: x509_cert::Certificate = builtin::milan::ark().unwrap().into();
    assert!(VcekIdentity::of(&ark).is_err());
}

/// A validly signed report naming another chip or another TCB than the VCEK's certificate is not the VCEK's.
#[test]
fn a_report_for_another_chip_or_tcb_than_the_vceks_is_refused() {
    let verifier = test_verifier(MILAN_RULES, Product::Milan);
    let mut psp = test_psp();
    psp.chip_id = [0xc2; 64];
    let mut report = psp.report(&[0x5e; 64]);
    psp.sign(&mut report);
    assert_eq!(verifier.verify(&report).unwrap_err(), RefusalCode::BadSignature);
    let mut higher = GOOD_TCB;
    higher[7] = 116;
    assert_eq!(verifier.verify(&signed_report(GOOD_POLICY, 0, higher)).unwrap_err(), RefusalCode::BadSignature);
    assert!(verifier.verify(&signed_report(GOOD_POLICY, 0, GOOD_TCB)).is_ok());
}

/// A fleet's broker holds one VCEK per chip and TCB and verifies each report with the one naming its chip and TCB.
#[test]
fn each_report_is_verified_with_the_vcek_of_its_own_chip_and_tcb() {
    let key_of = |seed: u8| SigningKey::from_slice(&[seed; 48]).unwrap();
    let vcek = |seed: u8, chip: u8| CertifiedVcek {
        key: *key_of(seed).verifying_key(),
        identity: VcekIdentity { tcb: Tcb::from_raw(GOOD_TCB, Product::Milan), hw_id: vec![chip; 64] },
        valid: chain::Window { not_before: 0, not_after: u64::MAX },
    };
    let verifier = SnpVerifier {
        vceks: vec![vcek(0x21, 0xa1), vcek(0x22, 0xa2)],
        product: Product::Milan,
        rules: MILAN_RULES,
        clock: at_2025(),
    };
    let report_from = |seed: u8, chip: u8| {
        let mut psp = SimulatedPsp::new([0x42; 32], [0xa1; 48], key_of(seed));
        psp.chip_id = [chip; 64];
        let mut report = psp.report(&[0x5e; 64]);
        psp.sign(&mut report);
        report
    };
    assert!(verifier.verify(&report_from(0x21, 0xa1)).is_ok());
    assert!(verifier.verify(&report_from(0x22, 0xa2)).is_ok());
    // Chip 0xa2's key signing a report that names chip 0xa1: checked against 0xa1's key, refused.
    assert_eq!(verifier.verify(&report_from(0x22, 0xa1)).unwrap_err(), RefusalCode::BadSignature);
    // A chip with no VCEK here.
    assert_eq!(verifier.verify(&report_from(0x21, 0xa3)).unwrap_err(), RefusalCode::BadSignature);
}

#[test]
fn the_vcek_entry_takes_one_file_or_a_list() {
    let one: SnpConfig = toml::from_str(
        "product = \"milan\"\nvcek = \"a.der\"\nmin_tcb = { bootloader = 0, tee = 0, snp = 0, microcode = 0 }",
    )
    .unwrap();
    assert_eq!(one.vcek.paths(), [Path::new("a.der")]);
    let many: SnpConfig = toml::from_str(
        "product = \"milan\"\nvcek = [\"a.der\", \"b.der\"]\nmin_tcb = { bootloader = 0, tee = 0, snp = 0, microcode = 0 }",
    )
    .unwrap();
    assert_eq!(many.vcek.paths(), [Path::new("a.der"), Path::new("b.der")]);
}
