//! The key dance end to end in process: the real loader against the real broker, and the attack matrix of issue 6.
//! Every attack shows that nothing is released, with the right reason, audited; the broker serves on afterwards.

mod common;

use common::*;
use hmac::{Hmac, KeyInit, Mac};
use loader::{LoaderError, SimulatedAttester, Step, StreamTransport, obtain_key};
use protocol::binding::report_data;
use protocol::message::{Message, PROTOCOL_VERSION};
use protocol::refusal::RefusalCode;
use protocol::report::{REPORT_LEN, SIGNATURE_OFFSET, policy, sign_simulated, simulated_report};
use protocol::tee::Tee;
use sha2::Sha384;

const POLICY: u64 = policy::RESERVED_MUST_BE_ONE | policy::SMT;

/// Runs the loader for a guest measuring `measurement` and asking for `key_id`.
fn dance(
    b: &TestBroker,
    measurement: [u8; 48],
    key_id: [u8; 16],
) -> Result<loader::ReleasedKey, LoaderError<std::io::Error>> {
    let mut transport = StreamTransport(b.connect());
    let mut steps = Vec::new();
    let result = obtain_key(&mut transport, &mut SimulatedAttester::new(measurement), &mut guest_rng(), key_id, |s| {
        steps.push(s)
    });
    if result.is_ok() {
        assert_eq!(steps, [Step::Challenged, Step::Attested]);
    }
    result
}

fn refused_with(result: Result<loader::ReleasedKey, LoaderError<std::io::Error>>) -> RefusalCode {
    match result {
        Err(LoaderError::Refused(code)) => code,
        Err(e) => panic!("expected a refusal, got {e:?}"),
        Ok(_) => panic!("a key was released"),
    }
}

/// Sends an Attest on `client` (after its Hello) and returns the broker's answer.
fn attest(
    client: &mut Client,
    tee: Tee,
    nonce: [u8; 32],
    key_id: [u8; 16],
    pk: [u8; 32],
    evidence: Vec<u8>,
) -> Message {
    client.send(&Message::Attest { tee, nonce, key_id, guest_public_key: pk, evidence });
    client.recv().expect("a reply")
}

fn assert_refused(reply: Message, code: RefusalCode) {
    assert_eq!(reply, Message::Refused { code });
}

/// Evidence for `nonce` and `pk` from a guest measuring `measurement`.
fn evidence(measurement: &[u8; 48], nonce: &[u8; 32], pk: &[u8; 32], policy: u64) -> Vec<u8> {
    simulated_report(measurement, &report_data(nonce, pk), policy).to_vec()
}

const PK: [u8; 32] = [9; 32];

#[test]
fn a_guest_with_an_allowed_measurement_gets_its_key_and_the_audit_log_says_so() {
    let b = test_broker(true);
    let released = dance(&b, MEASUREMENT_A, KEY_ID_A).unwrap();
    assert_eq!(*released.key, KEY_A);
    assert_eq!(released.key_id, KEY_ID_A);
    assert!(released.expires_at > 1_800_000_000);
    let audit = b.audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["decision"], "released");
    assert_eq!(audit[0]["key_id"], hex::encode(KEY_ID_A));
    assert_eq!(audit[0]["measurement"], hex::encode(MEASUREMENT_A));
    assert_eq!(audit[0]["tee"], "plain");
    assert!(audit[0]["reason"].is_null());
    let log = std::fs::read_to_string(&b.audit_log).unwrap();
    assert!(!log.contains(&hex::encode(KEY_A)), "the audit log holds key material");
    assert_eq!(b.broker.stats().get("released"), Some(&1));
}

#[test]
fn unknown_measurement_is_refused() {
    let b = test_broker(true);
    assert_eq!(refused_with(dance(&b, [0xee; 48], KEY_ID_A)), RefusalCode::UnknownMeasurement);
    assert_eq!(b.audit()[0]["reason"], "unknown_measurement");
    assert_eq!(b.audit()[0]["measurement"], hex::encode([0xee; 48]));
}

#[test]
fn a_key_for_measurement_a_is_not_released_to_measurement_b() {
    let b = test_broker(true);
    assert_eq!(refused_with(dance(&b, MEASUREMENT_B, KEY_ID_A)), RefusalCode::KeyNotForMeasurement);
    assert_eq!(*dance(&b, MEASUREMENT_B, KEY_ID_B).unwrap().key, KEY_B);
}

#[test]
fn simulated_evidence_is_refused_unless_allowed() {
    let b = test_broker(false);
    assert_eq!(refused_with(dance(&b, MEASUREMENT_A, KEY_ID_A)), RefusalCode::SimulatedNotAllowed);
}

#[test]
fn a_replayed_nonce_is_refused() {
    let b = test_broker(true);
    let mut first = Client(b.connect());
    let nonce = first.hello(Tee::Plain);
    let ev = evidence(&MEASUREMENT_A, &nonce, &PK, POLICY);
    assert!(matches!(attest(&mut first, Tee::Plain, nonce, KEY_ID_A, PK, ev.clone()), Message::KeyRelease { .. }));
    // The same nonce and evidence again, on a new session.
    let mut second = Client(b.connect());
    second.hello(Tee::Plain);
    assert_refused(attest(&mut second, Tee::Plain, nonce, KEY_ID_A, PK, ev), RefusalCode::NonceUnknown);
}

#[test]
fn an_expired_nonce_is_refused() {
    let b = test_broker(true);
    let mut client = Client(b.connect());
    let nonce = client.hello(Tee::Plain);
    b.advance_secs(NONCE_LIFETIME_SECS + 1);
    let ev = evidence(&MEASUREMENT_A, &nonce, &PK, POLICY);
    assert_refused(attest(&mut client, Tee::Plain, nonce, KEY_ID_A, PK, ev), RefusalCode::NonceExpired);
}

#[test]
fn a_nonce_issued_to_another_connection_is_refused() {
    let b = test_broker(true);
    let mut a = Client(b.connect());
    let nonce_a = a.hello(Tee::Plain);
    let mut other = Client(b.connect());
    other.hello(Tee::Plain);
    let ev = evidence(&MEASUREMENT_A, &nonce_a, &PK, POLICY);
    assert_refused(attest(&mut other, Tee::Plain, nonce_a, KEY_ID_A, PK, ev), RefusalCode::NonceOtherConnection);
}

#[test]
fn report_data_not_binding_the_nonce_and_key_is_refused() {
    let b = test_broker(true);
    let mut client = Client(b.connect());
    let nonce = client.hello(Tee::Plain);
    // Validly signed, but for another public key: the release would be sealed to a key the evidence does not name.
    let ev = evidence(&MEASUREMENT_A, &nonce, &[8; 32], POLICY);
    assert_refused(attest(&mut client, Tee::Plain, nonce, KEY_ID_A, PK, ev), RefusalCode::BindingMismatch);
    let mut client = Client(b.connect());
    let nonce = client.hello(Tee::Plain);
    let ev = evidence(&MEASUREMENT_A, &[1; 32], &PK, POLICY);
    assert_refused(attest(&mut client, Tee::Plain, nonce, KEY_ID_A, PK, ev), RefusalCode::BindingMismatch);
}

#[test]
fn any_signed_byte_of_the_report_tampered_is_refused() {
    let b = test_broker(true);
    let algo = 0x34..0x38;
    for at in (0..SIGNATURE_OFFSET).filter(|a| !algo.contains(a)).step_by(7).chain([0x90, 0x50, 0x08]) {
        let mut client = Client(b.connect());
        let nonce = client.hello(Tee::Plain);
        let mut ev = evidence(&MEASUREMENT_A, &nonce, &PK, POLICY);
        ev[at] ^= 0x01;
        assert_refused(attest(&mut client, Tee::Plain, nonce, KEY_ID_A, PK, ev), RefusalCode::BadSignature);
    }
}

#[test]
fn a_report_signed_by_a_wrong_key_is_refused() {
    let b = test_broker(true);
    let mut client = Client(b.connect());
    let nonce = client.hello(Tee::Plain);
    let mut ev: [u8; REPORT_LEN] = evidence(&MEASUREMENT_A, &nonce, &PK, POLICY).try_into().unwrap();
    let mut mac = Hmac::<Sha384>::new_from_slice(b"not the simulation key").unwrap();
    mac.update(&ev[..SIGNATURE_OFFSET]);
    ev[SIGNATURE_OFFSET..SIGNATURE_OFFSET + 48].copy_from_slice(&mac.finalize().into_bytes());
    assert_refused(attest(&mut client, Tee::Plain, nonce, KEY_ID_A, PK, ev.to_vec()), RefusalCode::BadSignature);
}

#[test]
fn a_debug_policy_is_refused_even_when_validly_signed() {
    let b = test_broker(true);
    let mut client = Client(b.connect());
    let nonce = client.hello(Tee::Plain);
    let mut ev = simulated_report(&MEASUREMENT_A, &report_data(&nonce, &PK), POLICY | policy::DEBUG);
    sign_simulated(&mut ev);
    assert_refused(attest(&mut client, Tee::Plain, nonce, KEY_ID_A, PK, ev.to_vec()), RefusalCode::DebugPolicy);
}

#[test]
fn a_wrong_tee_is_refused() {
    let b = test_broker(true);
    // Evidence claimed as SNP in a session announced as plain.
    let mut client = Client(b.connect());
    let nonce = client.hello(Tee::Plain);
    let ev = evidence(&MEASUREMENT_A, &nonce, &PK, POLICY);
    assert_refused(attest(&mut client, Tee::Snp, nonce, KEY_ID_A, PK, ev), RefusalCode::WrongTee);
    // Simulated evidence of a measurement the allowlist grants only to SNP guests.
    let mut client = Client(b.connect());
    let nonce = client.hello(Tee::Plain);
    let ev = evidence(&MEASUREMENT_SNP, &nonce, &PK, POLICY);
    assert_refused(attest(&mut client, Tee::Plain, nonce, KEY_ID_SNP, PK, ev), RefusalCode::WrongTee);
    // An SNP session: no SNP verifier yet.
    let mut client = Client(b.connect());
    let nonce = client.hello(Tee::Snp);
    let ev = evidence(&MEASUREMENT_SNP, &nonce, &PK, POLICY);
    assert_refused(attest(&mut client, Tee::Snp, nonce, KEY_ID_SNP, PK, ev), RefusalCode::TeeNotSupported);
}

#[test]
fn oversized_truncated_and_garbage_frames_are_refused_and_the_broker_serves_on() {
    let b = test_broker(true);
    // Oversized: the header alone decides.
    let mut client = Client(b.connect());
    client.send_raw(&(1u32 << 24).to_be_bytes());
    assert_eq!(client.recv(), Some(Message::Refused { code: RefusalCode::Oversized }));
    // Garbage body.
    let mut client = Client(b.connect());
    client.send_raw(&[0, 0, 0, 3, 0xde, 0xad, 0xbe]);
    assert_eq!(client.recv(), Some(Message::Refused { code: RefusalCode::MalformedMessage }));
    // A truncated message inside a complete frame.
    let mut client = Client(b.connect());
    let nonce = client.hello(Tee::Plain);
    let mut body =
        Message::Attest { tee: Tee::Plain, nonce, key_id: KEY_ID_A, guest_public_key: PK, evidence: vec![1; 100] }
            .encode()
            .unwrap();
    body.truncate(60);
    let mut framed = (body.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(&body);
    client.send_raw(&framed);
    assert_eq!(client.recv(), Some(Message::Refused { code: RefusalCode::MalformedMessage }));
    // A truncated frame: the peer goes away mid-frame; nothing to answer, nothing released.
    let mut client = Client(b.connect());
    client.send_raw(&[0, 0, 1, 0, 1, 2, 3]);
    drop(client);
    // Out of order, wrong version.
    let mut client = Client(b.connect());
    client.send(&Message::Challenge { nonce: [0; 32] });
    assert_eq!(client.recv(), Some(Message::Refused { code: RefusalCode::MalformedMessage }));
    let mut client = Client(b.connect());
    client.send(&Message::Hello { version: PROTOCOL_VERSION + 1, tee: Tee::Plain });
    assert_eq!(client.recv(), Some(Message::Refused { code: RefusalCode::ProtocolVersion }));
    // And a good guest still gets its key.
    assert_eq!(*dance(&b, MEASUREMENT_A, KEY_ID_A).unwrap().key, KEY_A);
    let stats = b.broker.stats();
    assert_eq!(stats.get("oversized"), Some(&1));
    assert_eq!(stats.get("malformed_message"), Some(&3));
    assert_eq!(stats.get("released"), Some(&1));
}

#[test]
fn every_refusal_is_audited_without_key_material() {
    let b = test_broker(true);
    let _ = dance(&b, [0xee; 48], KEY_ID_A);
    let _ = dance(&b, MEASUREMENT_B, KEY_ID_A);
    let _ = dance(&b, MEASUREMENT_A, KEY_ID_A);
    let audit = b.audit();
    assert_eq!(audit.len(), 3);
    for line in &audit {
        for key in ["time_ms", "peer", "tee", "measurement", "decision", "reason", "key_id"] {
            assert!(line.get(key).is_some(), "audit line lacks {key}: {line}");
        }
    }
    let text = std::fs::read_to_string(&b.audit_log).unwrap();
    for key in [KEY_A, KEY_B] {
        assert!(!text.contains(&hex::encode(key)));
    }
}
