//! The allowlist keyed by (TEE, measurement, model digest): a launch gets the key registered for the sealed model
//! its HOST_DATA / MRCONFIGID names, and nothing for another model or for none.

use protocol::message::KeyId;
use protocol::report::{policy, simulated_launch_report};
use protocol::sealed_blob::{BlobDigest, launch_binding};

use super::*;

const MEASUREMENT: [u8; 48] = [0xa1; 48];
const OLD_MODEL: BlobDigest = [0x01; 48];
const NEW_MODEL: BlobDigest = [0x02; 48];
const REPORT_DATA: [u8; 64] = [0x64; 64];

fn entry(model_digest: Option<BlobDigest>, key: u8) -> Allowed {
    Allowed { tee: Tee::Plain, measurement: MEASUREMENT.to_vec(), key_id: [key; 16], model_digest }
}

fn policy_of(allowlist: Vec<Allowed>) -> Policy {
    Policy { verifiers: vec![Box::new(SimulatedVerifier { allowed: true })], allow_debug: false, allowlist }
}

/// A plain launch's simulated report, its HOST_DATA bound to `model` (or to nothing).
fn report(model: Option<&BlobDigest>) -> Vec<u8> {
    let binding = model.map_or([0; 48], |digest| launch_binding(Tee::Plain, digest));
    let host_data: [u8; 32] = binding[..32].try_into().unwrap();
    let default_policy = policy::RESERVED_MUST_BE_ONE | policy::SMT;
    simulated_launch_report(&MEASUREMENT, &host_data, &REPORT_DATA, default_policy).to_vec()
}

fn key_for(policy: &Policy, evidence: &[u8]) -> Result<KeyId, RefusalCode> {
    policy.check(Tee::Plain, evidence, &REPORT_DATA).map(|(_, allowed)| allowed.key_id)
}

#[test]
fn a_launch_gets_the_key_of_the_model_it_is_bound_to_and_nothing_for_another() {
    // A rotation: the same image, the old and the new sealing, each with its key.
    let policy = policy_of(vec![entry(Some(OLD_MODEL), 1), entry(Some(NEW_MODEL), 2)]);
    assert_eq!(key_for(&policy, &report(Some(&OLD_MODEL))), Ok([1; 16]));
    assert_eq!(key_for(&policy, &report(Some(&NEW_MODEL))), Ok([2; 16]));
    assert_eq!(key_for(&policy, &report(Some(&[0x03; 48]))), Err(RefusalCode::HostDataMismatch));
    assert_eq!(key_for(&policy, &report(None)), Err(RefusalCode::HostDataMismatch));
    // Only the new sealing registered: the old blob's launch gets nothing.
    let rotated = policy_of(vec![entry(Some(NEW_MODEL), 2)]);
    assert_eq!(key_for(&rotated, &report(Some(&OLD_MODEL))), Err(RefusalCode::HostDataMismatch));
}

#[test]
fn an_entry_without_a_model_admits_only_a_launch_bound_to_none() {
    let policy = policy_of(vec![entry(None, 1)]);
    assert_eq!(key_for(&policy, &report(None)), Ok([1; 16]));
    assert_eq!(key_for(&policy, &report(Some(&OLD_MODEL))), Err(RefusalCode::HostDataMismatch));
    // The measurement check still comes first.
    let stranger = policy_of(vec![Allowed { measurement: vec![0xb2; 48], ..entry(None, 1) }]);
    assert_eq!(key_for(&stranger, &report(None)), Err(RefusalCode::UnknownMeasurement));
    let other_tee = policy_of(vec![Allowed { tee: Tee::Snp, ..entry(None, 1) }]);
    assert_eq!(key_for(&other_tee, &report(None)), Err(RefusalCode::WrongTee));
}

#[test]
fn the_configuration_keys_the_allowlist_by_measurement_and_model() {
    let line = |digest: Option<&str>| {
        let digest = digest.map(|d| format!("model_digest = \"{d}\"\n")).unwrap_or_default();
        format!(
            "[[allow]]\ntee = \"plain\"\nmeasurement = \"{}\"\nkey_id = \"{}\"\n{digest}",
            "a1".repeat(48),
            "0a".repeat(16)
        )
    };
    let config = |entries: &[Option<&str>]| -> anyhow::Result<Vec<Allowed>> {
        let text = format!(
            "listen = \"127.0.0.1:0\"\naudit_log = \"a.jsonl\"\n{}",
            entries.iter().map(|d| line(*d)).collect::<String>()
        );
        let config: Config = toml::from_str(&text)?;
        config.allowlist()
    };
    let (old, new) = ("01".repeat(48), "02".repeat(48));
    let allowed = config(&[Some(&old), Some(&new), None]).unwrap();
    assert_eq!(allowed.iter().map(|a| a.model_digest).collect::<Vec<_>>(), [Some(OLD_MODEL), Some(NEW_MODEL), None]);
    assert_eq!(allowed[1].expected_host_data(), launch_binding(Tee::Plain, &NEW_MODEL));
    assert!(format!("{:#}", config(&[Some(&old), Some(&old)]).unwrap_err()).contains("appears twice"));
    assert!(format!("{:#}", config(&[None, None]).unwrap_err()).contains("appears twice"));
    assert!(format!("{:#}", config(&[Some("0102")]).unwrap_err()).contains("not 48 bytes"));
    assert!(format!("{:#}", config(&[Some("xyz")]).unwrap_err()).contains("not hex"));
}
