//! The key dance and the service end to end through QEMU (TCG): the guest boots, brings up virtio-net, reaches the
//! in-process broker only through QEMU's restricted user network, attests, gets its key, unseals the model and
//! serves sealed inferences; or it is refused with the right reason and nothing is released. No output of a run
//! carries the key.

mod common;

use std::time::Duration;

use base64::Engine;
use common::{Run, boot, broker_dir, broker_dir_path, image, run_serving};
use ovmf::exit::ExitCode;
use protocol::console::Record;
use xtask::dance::{BrokerOptions, attach, free_port, start_broker};
use xtask::image::Variant;
use xtask::qemu::{Outcome, RunReport};

/// A key that is not the image's: the broker releases it, and the sealed model does not open with it.
const WRONG_KEY: [u8; 32] = [0x4b; 32];

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

fn audit(run: &Run) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&run.broker.audit_log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn the_guest_attests_unseals_and_serves_and_no_output_carries_the_key() {
    let root = xtask::paths::repo_root();
    let run = run_serving("happy", options(), move |port| {
        let guest = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let policy = xtask::serve::policy_of(&broker_dir_path("happy").join("broker.toml")).unwrap();
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
    assert_eq!(audit(&run)[0]["decision"], "released");
    assert_eq!(run.broker.broker.stats().get("released"), Some(&1));

    // The key in any common encoding, in every output of the run; and no input or output value in the serial log.
    let keys = xtask::sealing::load_keys(&options().state_dir).unwrap();
    let key: [u8; 32] = **keys.get(&key_id).unwrap();
    let needles = [
        hex::encode(key),
        hex::encode_upper(key),
        base64::engine::general_purpose::STANDARD.encode(key),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key),
    ];
    let serial = run.report.lines.join("\n") + &run.report.stderr;
    let broker_log = std::fs::read_to_string(&run.broker.log).unwrap();
    let audit_log = std::fs::read_to_string(&run.broker.audit_log).unwrap();
    let config = std::fs::read_to_string(run.broker.log.with_file_name("broker.toml")).unwrap();
    assert!(broker_log.contains("SIMULATED EVIDENCE ACCEPTED"), "the broker's log flags simulated evidence");
    for (name, text) in
        [("serial", &serial), ("broker log", &broker_log), ("audit log", &audit_log), ("config", &config)]
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
}

#[test]
fn the_model_does_not_open_with_another_key() {
    let run = run("wrong-key", BrokerOptions { key: Some(WRONG_KEY), ..options() });
    assert_eq!(run.report.outcome, Outcome::Guest(ExitCode::KeyNotReleased), "{:#?}", run.report.lines);
    let (record, _) = run.report.record("model not unsealed").expect("a record saying the model did not open");
    assert_eq!(record.field("reason"), Some("blob-chunk-did-not-open"));
    assert!(run.report.record("serving").is_none());
    run.broker.stop();
}

#[test]
fn an_unknown_measurement_gets_nothing_end_to_end() {
    let run = run("unknown-measurement", BrokerOptions { allowed_measurement: Some([0x11; 48]), ..options() });
    assert_eq!(run.report.outcome, Outcome::Guest(ExitCode::KeyNotReleased), "{:#?}", run.report.lines);
    assert_eq!(refusal_reason(&run.report), "unknown_measurement");
    assert!(run.report.record("key released").is_none());
    assert_eq!(audit(&run)[0]["reason"], "unknown_measurement");
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
    // The allowlist binds the image's measurement to another key than the one its sealed model asks for.
    let options = BrokerOptions { allowed_key_id: Some([0x77; 16]), key: Some(WRONG_KEY), ..options() };
    let run = run("other-key", options);
    assert_eq!(run.report.outcome, Outcome::Guest(ExitCode::KeyNotReleased), "{:#?}", run.report.lines);
    assert_eq!(refusal_reason(&run.report), "key_not_for_measurement");
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
