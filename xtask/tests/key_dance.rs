//! The key dance end to end through QEMU (TCG): the guest boots, brings up virtio-net, reaches the in-process
//! broker only through QEMU's restricted user network, attests, and gets its key, or is refused with the right
//! reason. No output of a run carries the key.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use common::{boot, image};
use ovmf::exit::ExitCode;
use xtask::dance::{BrokerOptions, RunningBroker, attach, start_broker};
use xtask::image::Variant;
use xtask::qemu::{Outcome, RunReport};

const KEY: [u8; 32] = [0x4b; 32];

struct Run {
    report: RunReport,
    broker: RunningBroker,
    _dir: PathBuf,
}

fn broker_dir(name: &str) -> PathBuf {
    let dir = xtask::paths::target_dir(&xtask::paths::repo_root()).join("test-broker").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Boots the release image against a broker configured with `options`; the guest asks for `key_id` (default:
/// the allowlisted one).
fn run(name: &str, options: BrokerOptions, key_id: Option<[u8; 16]>) -> Run {
    let bytes = std::fs::read(image(Variant::Release)).unwrap();
    let dir = broker_dir(name);
    let broker = start_broker(&dir, &bytes, &BrokerOptions { key: Some(KEY), ..options }).unwrap();
    let report = boot(Variant::Release, |c| {
        c.timeout = Duration::from_secs(60);
        attach(c, broker.port, &key_id.unwrap_or(broker.key_id));
    });
    Run { report, broker, _dir: dir }
}

fn refusal_reason(report: &RunReport) -> String {
    let (record, _) = report.record("key refused").unwrap_or_else(|| panic!("no refusal record: {:#?}", report.lines));
    record.field("reason").unwrap().to_string()
}

fn audit(run: &Run) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&run.broker.audit_log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn the_guest_attests_and_gets_its_key_and_no_output_carries_the_key() {
    let run = run("happy", BrokerOptions::default(), None);
    assert_eq!(run.report.outcome, Outcome::Guest(ExitCode::Success), "{:#?}", run.report.lines);
    assert!(run.report.record("attested").is_some());
    let (released, _) = run.report.record("key released").unwrap();
    assert_eq!(released.field("key_id"), Some(hex::encode(run.broker.key_id).as_str()));
    let (measured, _) = run.report.record("measured").unwrap();
    let bytes = std::fs::read(image(Variant::Release)).unwrap();
    assert_eq!(measured.field("measurement"), Some(hex::encode(xtask::dance::plain_measurement(&bytes)).as_str()));
    assert_eq!(audit(&run)[0]["decision"], "released");
    assert_eq!(run.broker.broker.stats().get("released"), Some(&1));

    // The key in any common encoding, in every output of the run.
    let needles = [
        hex::encode(KEY),
        hex::encode_upper(KEY),
        base64::engine::general_purpose::STANDARD.encode(KEY),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(KEY),
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
    let raw_key = String::from_utf8_lossy(&KEY).to_string();
    assert!(!serial.contains(&raw_key));
    run.broker.stop();
}

#[test]
fn an_unknown_measurement_gets_nothing_end_to_end() {
    let run =
        run("unknown-measurement", BrokerOptions { allowed_measurement: Some([0x11; 48]), ..Default::default() }, None);
    assert_eq!(run.report.outcome, Outcome::Guest(ExitCode::KeyNotReleased), "{:#?}", run.report.lines);
    assert_eq!(refusal_reason(&run.report), "unknown_measurement");
    assert!(run.report.record("key released").is_none());
    assert_eq!(audit(&run)[0]["reason"], "unknown_measurement");
    run.broker.stop();
}

#[test]
fn simulated_evidence_gets_nothing_when_not_allowed_end_to_end() {
    let run = run("no-simulated", BrokerOptions { allow_simulated: false, ..Default::default() }, None);
    assert_eq!(run.report.outcome, Outcome::Guest(ExitCode::KeyNotReleased), "{:#?}", run.report.lines);
    assert_eq!(refusal_reason(&run.report), "simulated_not_allowed");
    run.broker.stop();
}

#[test]
fn a_key_for_another_measurement_gets_nothing_end_to_end() {
    let run = run("other-key", BrokerOptions::default(), Some([0x77; 16]));
    assert_eq!(run.report.outcome, Outcome::Guest(ExitCode::KeyNotReleased), "{:#?}", run.report.lines);
    assert_eq!(refusal_reason(&run.report), "key_not_for_measurement");
    run.broker.stop();
}

#[test]
fn a_stopped_broker_is_a_clear_failure_not_a_hang() {
    let bytes = std::fs::read(image(Variant::Release)).unwrap();
    let broker = start_broker(&broker_dir("stopped"), &bytes, &BrokerOptions::default()).unwrap();
    let (port, key_id) = (broker.port, broker.key_id);
    broker.stop();
    let report = boot(Variant::Release, |c| {
        c.timeout = Duration::from_secs(60);
        attach(c, port, &key_id);
    });
    // QEMU connects the forward when it starts: with nothing listening it refuses to start, and says why.
    assert_eq!(report.outcome, Outcome::QemuError(Some(1)), "{report:#?}");
    assert!(report.stderr.contains("Connection refused"), "{}", report.stderr);
    assert!(report.wall < Duration::from_secs(40));
}
