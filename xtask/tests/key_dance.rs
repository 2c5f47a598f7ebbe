//! The key dance and the service end to end through QEMU (TCG): the guest boots, brings up virtio-net, reaches the
//! in-process broker only through QEMU's restricted user network, attests, gets its key, unseals the model and
//! serves sealed inferences; or it is refused with the right reason and nothing is released. No output of a run
//! carries the key.

mod common;

use std::time::Duration;

use base64::Engine;
use broker::registry::AuditEntry;
use common::{Run, TestKey, boot, broker_dir, broker_dir_path, image, run_serving, unwrapped_key};
use ovmf::exit::ExitCode;
use protocol::console::Record;
use protocol::sealed_blob::MAX_CHUNK_LEN;
use xtask::dance::{BrokerOptions, attach, free_port, start_broker};
use xtask::image::Variant;
use xtask::qemu::{Outcome, RunReport};

fn options() -> BrokerOptions {
    BrokerOptions::for_checkout(&xtask::paths::repo_root())
}

/// A run in which the guest is expected to be refused (it never serves).
fn run(name: &str, options: BrokerOptions) -> Run {
    run_serving(name, options, |_| panic!("the guest serves although it should have been refused"))
}

fn refusal_reason(report: &RunReport) -> String {
    let (record, _) = report.record("key refused").unwrap_or_else(|| panic!("no refusal record: {:#?}", report.lines));
    record.field("reason").unwrap().to_string()
}

/// The run's decisions in its registry's audit trail.
fn decisions(run: &Run) -> Vec<AuditEntry> {
    let trail = run.broker.audit_trail().unwrap();
    trail.into_iter().filter(|row| row.actor == "broker:run-qemu").collect()
}

/// A test registry whose key sealed a blob of the MLP for the run `name`, and the blob's path.
fn test_key(name: &str) -> (TestKey, std::path::PathBuf) {
    let key = TestKey::new(name);
    let path = broker_dir_path(&format!("{name}-registry")).join("mlp.sealed");
    key.blob(&path, [5; 7], MAX_CHUNK_LEN);
    (key, path)
}

#[test]
fn the_guest_attests_unseals_and_serves_and_no_output_carries_the_key() {
    let root = xtask::paths::repo_root();
    let releases = |trail: Vec<AuditEntry>, key_id| {
        trail
            .iter()
            .filter(|r| r.action == "release" && r.key_id == Some(key_id) && r.actor == "broker:run-qemu")
            .count()
    };
    let before = options().state.open().ok().map(|(_, _, mut registry)| registry.audit_trail().unwrap());
    let run = run_serving("happy", options(), move |port| {
        let guest = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let policy = xtask::serve::policy_of(&broker_dir_path("happy").join("policy.toml")).unwrap();
        let cases = xtask::serve::reference_cases(&root).unwrap();
        let summary = xtask::serve::check_reference_cases(guest, &policy, &cases).unwrap();
        assert_eq!(summary.predictions.len(), cases.len());
        bad_requests_then_a_good_one(guest, &policy, &cases[0].features);
    });
    assert_eq!(run.report.outcome, Outcome::Stopped, "{:#?}", run.report.lines);
    for msg in ["attested", "key released", "model unsealed", "serving"] {
        assert!(run.report.record(msg).is_some(), "no {msg:?} record");
    }
    let bytes = std::fs::read(image(Variant::Release)).unwrap();
    let key_id = run.broker.key_id;
    let (released, _) = run.report.record("key released").unwrap();
    assert_eq!(released.field("key_id"), Some(hex::encode(key_id).as_str()));
    let (measured, _) = run.report.record("measured").unwrap();
    assert_eq!(measured.field("measurement"), Some(hex::encode(xtask::dance::plain_measurement(&bytes)).as_str()));
    assert_eq!(run.broker.broker.stats().get("released"), Some(&1));
    // Its release row (other tests may release the same development key meanwhile: at least one more).
    let before = before.map_or(0, |trail| releases(trail, key_id));
    assert!(releases(run.broker.audit_trail().unwrap(), key_id) > before, "no release row for the run");

    // The key in any common encoding, in every output of the run; and no input or output value in the serial log.
    let key: [u8; 32] = *unwrapped_key(&options().state, &key_id);
    let needles = [
        hex::encode(key),
        hex::encode_upper(key),
        base64::engine::general_purpose::STANDARD.encode(key),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key),
    ];
    let serial = run.report.lines.join("\n") + &run.report.stderr;
    let broker_log = std::fs::read_to_string(&run.broker.log).unwrap();
    let audit = format!("{:?}", run.broker.audit_trail().unwrap());
    let config = std::fs::read_to_string(run.broker.log.with_file_name("broker.toml")).unwrap();
    assert!(broker_log.contains("SIMULATED EVIDENCE ACCEPTED"), "the broker's log flags simulated evidence");
    for (name, text) in [("serial", &serial), ("broker log", &broker_log), ("audit trail", &audit), ("config", &config)]
    {
        for needle in &needles {
            assert!(!text.contains(needle.as_str()), "the {name} contains the key");
        }
    }
    let cases = xtask::serve::reference_cases(&xtask::paths::repo_root()).unwrap();
    for value in cases[0].features.iter().filter(|v| v.fract() != 0.0) {
        assert!(!serial.contains(&value.to_string()), "the serial log carries an input value");
    }
    for line in run.report.lines.iter().filter(|l| l.contains("target=service")) {
        let record = Record::parse(line).unwrap();
        assert!(
            record.fields().all(|f| f.is_ok_and(|(k, _)| [
                "request",
                "us",
                "model_cycles",
                "batch",
                "batch_requests",
                "batch_wait_us",
                "error",
                "port",
                "connections",
                "max_request_len",
                "request_deadline_ms",
                "send_deadline_ms",
                "idle_timeout_ms",
                "reason",
                "requests",
                "ms",
                "heap_used",
                "heap_peak",
            ]
            .contains(&k))),
            "{line}"
        );
    }
    run.broker.stop();
}

/// A burst of malformed requests, each refused with its reason, then a valid one that is served.
fn bad_requests_then_a_good_one(guest: std::net::SocketAddr, policy: &broker::policy::Policy, good: &[f32]) {
    use protocol::service::{ServiceErrorCode, ServiceReply};
    let mut client = client::GuestClient::connect(guest, policy, Duration::from_secs(30)).unwrap();
    let error = |reply: ServiceReply| match reply {
        ServiceReply::Error { code } => code,
        other => panic!("expected an error, got {other:?}"),
    };
    for body in [&[0xffu8][..], &[17, 1, 2, 3], &[16; 40], &[1, 0, 1, 0]] {
        assert_eq!(error(client.raw(body).unwrap()), ServiceErrorCode::Malformed);
    }
    let mut nan = good.to_vec();
    nan[2] = f32::NAN;
    let mut huge = good.to_vec();
    huge[0] = 1e9;
    let cases: [(&[f32], ServiceErrorCode); 4] = [
        (&good[..29], ServiceErrorCode::WrongValueCount),
        (&[good, &[1.0][..]].concat(), ServiceErrorCode::WrongValueCount),
        (&nan, ServiceErrorCode::NonFiniteValue),
        (&huge, ServiceErrorCode::ValueOutOfRange),
    ];
    for _ in 0..3 {
        for (values, code) in &cases {
            assert_eq!(client.infer(values).unwrap().unwrap_err(), *code);
        }
    }
    assert_eq!(client.health().unwrap(), (true, true));
    assert_eq!(client.infer(good).unwrap().unwrap().len(), 2, "a valid request after the burst is served");
    // An oversized frame: refused, that connection closed; a new connection is served.
    let mut raw = std::net::TcpStream::connect(guest).unwrap();
    std::io::Write::write_all(&mut raw, &(1u32 << 20).to_be_bytes()).unwrap();
    let mut again = client::GuestClient::connect(guest, policy, Duration::from_secs(30)).unwrap();
    assert_eq!(again.infer(good).unwrap().unwrap().len(), 2);
    a_session_refuses_replayed_and_foreign_records(guest, policy, good);
}

/// Through the real guest: a session serves numbered records; a replayed record ends it (`session-record-refused`,
/// then `no-session`), as does another connection's record; a new session on a new connection is served.
fn a_session_refuses_replayed_and_foreign_records(
    guest: std::net::SocketAddr,
    policy: &broker::policy::Policy,
    good: &[f32],
) {
    use protocol::service::{ServiceErrorCode, ServiceReply, ServiceRequest};
    use protocol::session::{Session, SessionRequest, decode_reply};
    let rng = || protocol::seal::rand_core::UnwrapErr(getrandom::SysRng);
    let open = || {
        let mut connection = client::GuestClient::connect(guest, policy, Duration::from_secs(30)).unwrap();
        let ServiceReply::EvidenceIs { service_public_key, .. } =
            connection.raw(&ServiceRequest::Evidence { client_nonce: [9; 32] }.encode().unwrap()).unwrap()
        else {
            panic!("no evidence")
        };
        let (encapped_key, session) = Session::open(&service_public_key, &mut rng()).unwrap();
        let opened = connection.raw(&ServiceRequest::SessionOpen { encapped_key }.encode().unwrap()).unwrap();
        assert_eq!(opened, ServiceReply::SessionOpened);
        (connection, session)
    };
    let request = SessionRequest::Infer(good.to_vec()).encode().unwrap();
    let (mut a, mut session_a) = open();
    let (number, record) = session_a.seal_next(&request).unwrap();
    let first = ServiceRequest::SessionRecord { number, record }.encode().unwrap();
    let ServiceReply::SessionReply { number, record } = a.raw(&first).unwrap() else { panic!("no reply record") };
    assert_eq!(decode_reply(&session_a.open_next(number, &record).unwrap()).unwrap().unwrap().len(), 2);
    let refused = |code| ServiceReply::Error { code };
    assert_eq!(a.raw(&first).unwrap(), refused(ServiceErrorCode::SessionRecordRefused), "a replay");
    let (number, record) = session_a.seal_next(&request).unwrap();
    let next = ServiceRequest::SessionRecord { number, record }.encode().unwrap();
    assert_eq!(a.raw(&next).unwrap(), refused(ServiceErrorCode::NoSession), "after a refusal, no session");

    let (mut b, _session_b) = open();
    let (mut c, mut session_c) = open();
    let (number, record) = session_c.seal_next(&request).unwrap();
    let of_c = ServiceRequest::SessionRecord { number, record }.encode().unwrap();
    assert_eq!(b.raw(&of_c).unwrap(), refused(ServiceErrorCode::SessionRecordRefused), "another session's record");
    assert!(matches!(c.raw(&of_c).unwrap(), ServiceReply::SessionReply { .. }), "its own connection serves it");
}

#[test]
fn the_model_does_not_open_with_another_key() {
    // A new version of the key is made after the blob was sealed, and run-qemu binds the newest: the wrong one.
    let (key, blob) = test_key("wrong-key");
    key.another(Some(&key.key_id));
    let run = run("wrong-key", key.options(&blob));
    assert_eq!(run.report.outcome, Outcome::Guest(ExitCode::KeyNotReleased), "{:#?}", run.report.lines);
    let (record, _) = run.report.record("model not unsealed").expect("a record saying the model did not open");
    assert_eq!(record.field("reason"), Some("blob-chunk-did-not-open"));
    assert!(run.report.record("serving").is_none());
    let released = decisions(&run);
    assert_eq!((released.len(), released[0].action.as_str(), released[0].version), (1, "release", Some(2)));
    run.broker.stop();
}

#[test]
fn an_unknown_measurement_gets_nothing_end_to_end() {
    let (key, blob) = test_key("unknown-measurement");
    let mut elsewhere = key.launch(&blob);
    elsewhere.measurement = vec![0x11; 48];
    key.bind(&key.key_id, 1, &elsewhere);
    let run = run("unknown-measurement", BrokerOptions { bind_launch: false, ..key.options(&blob) });
    assert_eq!(run.report.outcome, Outcome::Guest(ExitCode::KeyNotReleased), "{:#?}", run.report.lines);
    assert_eq!(refusal_reason(&run.report), "unknown_measurement");
    assert!(run.report.record("key released").is_none());
    let refused = decisions(&run);
    assert_eq!(refused.len(), 1);
    assert!(refused[0].action == "refusal" && refused[0].detail.contains("unknown_measurement"), "{refused:?}");
    run.broker.stop();
}

#[test]
fn simulated_evidence_gets_nothing_when_not_allowed_end_to_end() {
    let run = run("no-simulated", BrokerOptions { allow_simulated: false, ..options() });
    assert_eq!(run.report.outcome, Outcome::Guest(ExitCode::KeyNotReleased), "{:#?}", run.report.lines);
    assert_eq!(refusal_reason(&run.report), "simulated_not_allowed");
    run.broker.stop();
}

#[test]
fn a_key_for_another_measurement_gets_nothing_end_to_end() {
    // The registry binds the image's launch to another key than the one its sealed model asks for.
    let (key, blob) = test_key("other-key");
    let (other, version) = key.another(None);
    key.bind(&other, version, &key.launch(&blob));
    let run = run("other-key", BrokerOptions { bind_launch: false, ..key.options(&blob) });
    assert_eq!(run.report.outcome, Outcome::Guest(ExitCode::KeyNotReleased), "{:#?}", run.report.lines);
    assert_eq!(refusal_reason(&run.report), "key_not_for_measurement");
    run.broker.stop();
}

#[test]
fn a_retired_key_is_never_released_again_end_to_end() {
    let (key, blob) = test_key("retired");
    key.bind(&key.key_id, 1, &key.launch(&blob));
    let mut registry = key.state.open().unwrap().2;
    broker::lifecycle::retire(&mut registry, &key.key_id, None, &xtask::broker_state::actor("test")).unwrap();
    let run = run("retired", BrokerOptions { bind_launch: false, ..key.options(&blob) });
    assert_eq!(run.report.outcome, Outcome::Guest(ExitCode::KeyNotReleased), "{:#?}", run.report.lines);
    assert!(run.report.record("key released").is_none());
    assert!(decisions(&run).iter().all(|row| row.action == "refusal"));
    run.broker.stop();
}

#[test]
fn a_stopped_broker_is_a_clear_failure_not_a_hang() {
    let bytes = std::fs::read(image(Variant::Release)).unwrap();
    let broker = start_broker(&broker_dir("stopped"), &bytes, &options()).unwrap();
    let (port, model) = (broker.port, broker.model.clone());
    broker.stop();
    let report = boot(Variant::Release, |c| {
        c.timeout = Duration::from_secs(60);
        attach(c, port, free_port().unwrap(), model.as_ref());
    });
    // QEMU connects the forward when it starts: with nothing listening it refuses to start, and says why.
    assert_eq!(report.outcome, Outcome::QemuError(Some(1)), "{report:#?}");
    assert!(report.stderr.contains("Connection refused"), "{}", report.stderr);
    assert!(report.wall < Duration::from_secs(40));
}
