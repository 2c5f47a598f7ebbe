//! The TDX verifier against real hardware output: the quotes and collateral dcap-qvl publishes with its sources
//! (`sample/`, read from cargo's registry), at a time inside the collateral's validity.

use super::*;

use simulated_firmware::published::dcap_qvl_sample as sample;

fn td_of(quote: &[u8]) -> dcap_qvl::quote::TDReport10 {
    match Quote::parse(quote).unwrap().report {
        Report::TD10(td) => td,
        Report::TD15(td) => td.base,
        Report::TD15Ex(td) => td.base.base,
        Report::SgxEnclave(_) => panic!("not a TD quote"),
    }
}

/// Rules that the published quote meets: its own attributes, XFAM and RTMRs, any TCB status dcap-qvl reports.
fn rules_of(quote: &[u8], status: &str) -> TdxRules {
    let td = td_of(quote);
    TdxRules {
        accepted_tcb_status: vec![status.into()],
        td_attributes: u64::from_le_bytes(td.td_attributes),
        xfam: u64::from_le_bytes(td.xfam),
        rtmrs: [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3],
    }
}

fn verifier(rules: TdxRules) -> TdxVerifier {
    verifier_at(rules, 0)
}

/// A verifier whose clock reads `now`, for the paths that call [`Verifier::verify`].
fn verifier_at(rules: TdxRules, now: u64) -> TdxVerifier {
    TdxVerifier::new(&sample("tdx_quote_collateral.json"), None, rules, Box::new(move || now)).unwrap()
}

/// Inside the published collateral's validity (TCB info and QE identity issued 2025-06-19 10:32 UTC, next update
/// 2025-07-19): 2025-06-20 00:00 UTC.
const SAMPLE_TIME: u64 = 1_750_377_600;

/// The published quote, without the 70 zero bytes that follow it in the sample file (a GetQuote buffer's padding:
/// the broker takes exactly one quote).
fn published_quote() -> Vec<u8> {
    let mut quote = sample("tdx_quote");
    let len = protocol::tdx::quote_len::of(&quote).unwrap();
    assert!(quote[len..].iter().all(|&b| b == 0), "only zero padding after the quote");
    quote.truncate(len);
    quote
}

fn published_status() -> String {
    let collateral: QuoteCollateralV3 = serde_json::from_slice(&sample("tdx_quote_collateral.json")).unwrap();
    QuoteVerifier::new_prod().verify(&published_quote(), &collateral, SAMPLE_TIME).unwrap().status
}

#[test]
fn the_published_quote_verifies_with_its_collateral() {
    let quote = published_quote();
    let status = published_status();
    assert_eq!(status, "UpToDate");
    let td = td_of(&quote);
    let verified = verifier(rules_of(&quote, &status)).verify_at(&quote, SAMPLE_TIME).unwrap();
    assert_eq!(verified.tee, Tee::Tdx);
    assert_eq!(verified.measurement, td.mr_td.to_vec());
    assert_eq!(verified.report_data, td.report_data);
    assert!(!verified.debug);
    // Its ATTRIBUTES are QEMU's default (SEPT_VE_DISABLE only), which is the configuration's default too.
    assert_eq!(u64::from_le_bytes(td.td_attributes), TD_ATTRIBUTES_SEPT_VE_DISABLE);
}

#[test]
fn trailing_bytes_truncation_and_other_quotes_are_refused() {
    let quote = published_quote();
    let verifier = verifier(rules_of(&quote, "UpToDate"));
    let mut padded = quote.clone();
    padded.push(0);
    assert_eq!(verifier.verify_at(&padded, SAMPLE_TIME).unwrap_err(), RefusalCode::MalformedEvidence);
    assert_eq!(verifier.verify_at(&sample("tdx_quote"), SAMPLE_TIME).unwrap_err(), RefusalCode::MalformedEvidence);
    assert_eq!(verifier.verify_at(&quote[..quote.len() - 1], SAMPLE_TIME).unwrap_err(), RefusalCode::MalformedEvidence);
    assert_eq!(verifier.verify_at(&[], SAMPLE_TIME).unwrap_err(), RefusalCode::MalformedEvidence);
    let mut sgx = sample("sgx_quote");
    sgx.truncate(protocol::tdx::quote_len::of(&sgx).unwrap());
    assert_eq!(verifier.verify_at(&sgx, SAMPLE_TIME).unwrap_err(), RefusalCode::WrongTee);
}

/// The base64 characters between each BEGIN and END marker of a PEM text (what the certificates decode from), for
/// the first `count` certificates.
fn certificate_text(pem: &[u8], count: usize) -> Vec<u8> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let find = |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).position(|w| w == needle);
    let (mut rest, mut text) = (pem, Vec::new());
    for _ in 0..count {
        let Some(begin) = find(rest, BEGIN) else { break };
        let body = &rest[begin + BEGIN.len()..];
        let Some(end) = find(body, END) else { break };
        text.extend(body[..end].iter().filter(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b)));
        text.push(b'|');
        rest = &body[end + END.len()..];
    }
    text
}

/// Every one-bit flip of the published quote is refused, except flips in the PEM text of its certificate chain
/// that leave the PCK certificate and its issuing CA's base64 unchanged: a newline turned into another whitespace
/// character or into a character between two certificates, or a change to the chain's copy of Intel's root, which
/// nothing trusts (dcap-qvl anchors the chain at its own copy). The PEM text is signed by nobody; the certificates
/// are what is checked.
#[test]
fn one_flipped_bit_is_refused_unless_the_certificates_read_the_same() {
    let quote = published_quote();
    let verifier = verifier(rules_of(&quote, "UpToDate"));
    let pem_start = quote.windows(11).position(|w| w == b"-----BEGIN ").expect("the quote carries a PEM chain");
    let mut harmless = 0;
    for index in 0..quote.len() {
        let mut flipped = quote.clone();
        flipped[index] ^= 1 << (index % 8);
        if verifier.verify_at(&flipped, SAMPLE_TIME).is_ok() {
            let same = certificate_text(&flipped[pem_start..], 2) == certificate_text(&quote[pem_start..], 2);
            assert!(index >= pem_start && same, "a flip at {index:#x} ({:#04x}) was accepted", quote[index]);
            harmless += 1;
        }
    }
    // The root's copy is about 900 bytes of the 4,936; the other harmless flips are a few dozen newlines.
    assert!(harmless < 1500, "{harmless} accepted flips");
}

#[test]
fn collateral_outside_its_validity_is_refused() {
    let quote = published_quote();
    let verifier = verifier(rules_of(&quote, "UpToDate"));
    let before_issue = 1_750_300_000; // 2025-06-19 02:26 UTC
    let after_next_update = 1_753_000_000; // 2025-07-20 08:26 UTC
    for now in [before_issue, after_next_update] {
        assert_eq!(verifier.verify_at(&quote, now).unwrap_err(), RefusalCode::BadSignature, "at {now}");
    }
    // The clock the broker passes is the one `verify` uses.
    let at = |now: u64| {
        TdxVerifier::new(
            &sample("tdx_quote_collateral.json"),
            None,
            rules_of(&quote, "UpToDate"),
            Box::new(move || now),
        )
        .unwrap()
    };
    assert!(at(SAMPLE_TIME).verify(&quote).is_ok());
    assert_eq!(at(after_next_update).verify(&quote).unwrap_err(), RefusalCode::BadSignature);
}

#[test]
fn each_rule_refuses_the_published_quote_when_it_does_not_hold() {
    let quote = published_quote();
    let good = rules_of(&quote, "UpToDate");
    let refused = |rules: TdxRules| verifier(rules).verify_at(&quote, SAMPLE_TIME).unwrap_err();
    let statuses = vec!["SWHardeningNeeded".into(), "OutOfDate".into()];
    assert_eq!(refused(TdxRules { accepted_tcb_status: statuses, ..good.clone() }), RefusalCode::TcbTooLow);
    for bit in [1, 27, 29, 30, 63] {
        let td_attributes = good.td_attributes ^ (1 << bit);
        assert_eq!(refused(TdxRules { td_attributes, ..good.clone() }), RefusalCode::GuestPolicy, "bit {bit}");
    }
    assert_eq!(refused(TdxRules { td_attributes: 0, ..good.clone() }), RefusalCode::GuestPolicy, "SEPT_VE_DISABLE");
    assert_eq!(refused(TdxRules { xfam: good.xfam ^ (1 << 5), ..good.clone() }), RefusalCode::GuestPolicy);
    for index in 0..4 {
        let mut rtmrs = good.rtmrs;
        rtmrs[index][0] ^= 1;
        assert_eq!(refused(TdxRules { rtmrs, ..good.clone() }), RefusalCode::UnknownMeasurement, "RTMR{index}");
    }
}

/// A sample quote with its collateral, trimmed to the quote, and a time an hour after the collateral was issued.
fn sample_with_time(quote: &str, collateral: &str) -> (Vec<u8>, Vec<u8>, u64) {
    let mut bytes = sample(quote);
    bytes.truncate(protocol::tdx::quote_len::of(&bytes).unwrap());
    let collateral = sample(collateral);
    let parsed: QuoteCollateralV3 = serde_json::from_slice(&collateral).unwrap();
    let tcb_info: serde_json::Value = serde_json::from_str(&parsed.tcb_info).unwrap();
    let qe_identity: serde_json::Value = serde_json::from_str(&parsed.qe_identity).unwrap();
    let issued = [&tcb_info, &qe_identity].map(|json| time_of(json["issueDate"].as_str().unwrap()));
    (bytes, collateral, issued[0].max(issued[1]) + 3600)
}

#[test]
fn a_td_1_5_quote_verifies_and_a_platform_matching_no_tcb_level_is_refused() {
    // TDX module 1.5 with the extended report body (quote version 5).
    let (quote, collateral, now) = sample_with_time("tdx_quote_td15ex", "tdx_quote_td15ex_collateral.json");
    assert_eq!(u16::from_le_bytes([quote[0], quote[1]]), 5);
    let parsed: QuoteCollateralV3 = serde_json::from_slice(&collateral).unwrap();
    let status = QuoteVerifier::new_prod().verify(&quote, &parsed, now).unwrap().status;
    let verifier = TdxVerifier::new(&collateral, None, rules_of(&quote, &status), Box::new(|| 0)).unwrap();
    assert_eq!(verifier.verify_at(&quote, now).unwrap().measurement, td_of(&quote).mr_td.to_vec());
    // dcap-qvl's "outdated" sample: its platform's TCB matches no level of its collateral.
    let (quote, collateral, now) = sample_with_time("tdx_quote_outdated", "tdx_quote_outdated_collateral.json");
    let statuses = ["UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "OutOfDate"].map(String::from).to_vec();
    let rules = TdxRules { accepted_tcb_status: statuses, ..rules_of(&quote, "UpToDate") };
    let verifier = TdxVerifier::new(&collateral, None, rules, Box::new(|| 0)).unwrap();
    assert_eq!(verifier.verify_at(&quote, now).unwrap_err(), RefusalCode::BadSignature);
}

/// Seconds since the Unix epoch of an RFC 3339 time ("2025-06-19T10:16:03Z").
fn time_of(text: &str) -> u64 {
    let time = chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    u64::try_from(time.timestamp()).expect("after 1970")
}

#[test]
fn time_of_reads_utc_times() {
    assert_eq!(time_of("1970-01-01T00:00:00Z"), 0);
    assert_eq!(time_of("2025-06-20T00:00:00Z"), SAMPLE_TIME);
}

#[test]
fn a_broker_configuration_with_a_tdx_table_loads_and_refuses_stale_collateral_today() {
    let dir = std::env::temp_dir().join(format!("ampoule-tdx-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("collateral.json"), sample("tdx_quote_collateral.json")).unwrap();
    let quote = published_quote();
    let td = td_of(&quote);
    let config = format!(
        "listen = \"127.0.0.1:0\"\naudit_log = \"audit.jsonl\"\n\
         [tdx]\ncollateral = \"collateral.json\"\nxfam = {}\n\
         [[allow]]\ntee = \"tdx\"\nmeasurement = \"{}\"\nkey_id = \"{}\"\n",
        u64::from_le_bytes(td.xfam),
        hex::encode(td.mr_td),
        "00".repeat(16)
    );
    std::fs::write(dir.join("broker.toml"), config).unwrap();
    let config = crate::config::Config::load(&dir.join("broker.toml")).unwrap();
    let tdx = config.tdx.as_ref().unwrap();
    assert_eq!(
        (tdx.td_attributes, tdx.accepted_tcb_status.as_slice()),
        (TD_ATTRIBUTES_SEPT_VE_DISABLE, &["UpToDate".to_string()][..])
    );
    // With the defaults (QEMU's attributes, RTMRs zero) and this configuration's XFAM, the published quote passes
    // every rule at the collateral's time...
    let verifier = TdxVerifier::from_config(tdx, Box::new(|| SAMPLE_TIME)).unwrap();
    let rtmrs_are_zero = [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3] == [[0; 48]; 4];
    assert_eq!(verifier.verify(&quote).is_ok(), rtmrs_are_zero);
    // ...and the broker, on the system's clock, refuses it: that collateral's next update was 2025-07-19.
    let policy = crate::policy::Policy::from_config(&config).unwrap();
    assert_eq!(policy.verify(Tee::Tdx, &quote).unwrap_err(), RefusalCode::BadSignature);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The broker's policy on a real quote, at a time its collateral is valid: the quote is accepted only with the
/// report data it carries (the binding to the broker's nonce and the guest's key) and an MRTD allowlisted for TDX.
#[test]
fn the_policy_refuses_the_published_quote_for_other_report_data_or_an_mrtd_not_allowlisted_for_tdx() {
    use crate::config::Allowed;
    use crate::policy::Policy;

    let quote = published_quote();
    let td = td_of(&quote);
    let policy = |allowlist: Vec<Allowed>| Policy {
        verifiers: vec![Box::new(verifier_at(rules_of(&quote, "UpToDate"), SAMPLE_TIME))],
        allow_debug: false,
        allowlist,
    };
    let allowed = |tee, measurement: &[u8]| Allowed {
        tee,
        measurement: measurement.to_vec(),
        key_id: [0x5a; 16],
        model_digest: None,
    };

    let good = policy(vec![allowed(Tee::Tdx, &td.mr_td)]);
    let (verified, entry) = good.check(Tee::Tdx, &quote, &td.report_data).unwrap();
    assert_eq!((verified.measurement.as_slice(), entry.key_id), (&td.mr_td[..], [0x5a; 16]));
    let mut other_data = td.report_data;
    other_data[63] ^= 1;
    assert_eq!(good.check(Tee::Tdx, &quote, &other_data).unwrap_err(), RefusalCode::BindingMismatch);
    // The quote announced as another TEE finds no verifier.
    assert_eq!(good.check(Tee::Snp, &quote, &td.report_data).unwrap_err(), RefusalCode::TeeNotSupported);

    let mut other_mrtd = td.mr_td;
    other_mrtd[0] ^= 1;
    let stranger = policy(vec![allowed(Tee::Tdx, &other_mrtd)]);
    assert_eq!(stranger.check(Tee::Tdx, &quote, &td.report_data).unwrap_err(), RefusalCode::UnknownMeasurement);
    // The same digest allowlisted for SNP does not admit a TD.
    let snp_only = policy(vec![allowed(Tee::Snp, &td.mr_td)]);
    assert_eq!(snp_only.check(Tee::Tdx, &quote, &td.report_data).unwrap_err(), RefusalCode::WrongTee);
}
