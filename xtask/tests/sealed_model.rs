//! The sealed model outside the image, through QEMU (TCG, plain mode): the host hands the guest a blob through
//! fw_cfg and binds the launch to a digest; the guest refuses any blob that is not the one the launch is bound to
//! before it asks for a key, and the broker refuses a launch bound to another blob than the one it registered.
//! Each refusal names its reason, and nothing is released or decrypted. The host-side tests of every chunk attack
//! are in `loader::model_load` and `protocol::sealed_blob`; here the same attacks cross the real device.

mod common;

use std::path::PathBuf;

use common::{Run, TestKey, broker_dir, run_serving_with};
use ovmf::exit::ExitCode;
use protocol::sealed_blob::{HEADER_LEN, MIN_CHUNK_LEN, TAG_LEN};
use xtask::dance::BrokerOptions;
use xtask::qemu::Outcome;

fn options() -> BrokerOptions {
    BrokerOptions::for_checkout(&xtask::paths::repo_root())
}

/// A run that must end without serving; `adjust` changes what the host hands over.
fn refused_run(name: &str, options: BrokerOptions, adjust: impl FnOnce(&mut xtask::qemu::RunConfig)) -> Run {
    let run = run_serving_with(name, options, adjust, |_| panic!("the guest serves although it should not"));
    assert_eq!(run.report.outcome, Outcome::Guest(ExitCode::KeyNotReleased), "{:#?}", run.report.lines);
    assert!(run.report.record("model unsealed").is_none() && run.report.record("serving").is_none());
    run
}

fn reason(run: &Run, msg: &str) -> String {
    let (record, _) = run.report.record(msg).unwrap_or_else(|| panic!("no {msg:?} record: {:#?}", run.report.lines));
    record.field("reason").unwrap().to_string()
}

/// The guest stopped before it reached the broker: no connection, no decision.
fn never_asked(run: &Run) {
    assert!(run.report.record("connected").is_none(), "{:#?}", run.report.lines);
    assert!(run.broker.broker.stats().is_empty(), "{:?}", run.broker.broker.stats());
}

fn scratch(name: &str) -> PathBuf {
    broker_dir(&format!("blob-{name}")).join("model.sealed")
}

#[test]
fn a_launch_bound_to_another_blob_refuses_the_blob_before_asking_for_a_key() {
    let run = refused_run("other-digest", options(), |c| c.model.as_mut().unwrap().digest = [0x11; 48]);
    assert_eq!(reason(&run, "sealed model refused"), "blob-not-this-launch");
    never_asked(&run);
    run.broker.stop();
}

#[test]
fn no_blob_and_a_truncated_blob_are_refused_before_asking_for_a_key() {
    let run = refused_run("no-blob", options(), |c| c.model = None);
    assert_eq!(reason(&run, "no sealed model"), "blob-unreadable");
    never_asked(&run);
    run.broker.stop();

    // The host cuts the blob but binds the launch to its (unchanged) header.
    let path = scratch("truncated");
    let key = TestKey::new("truncated");
    let blob = key.blob(&path, [1; 7], MIN_CHUNK_LEN);
    std::fs::write(&path, &blob[..blob.len() - 100]).unwrap();
    let run = refused_run("truncated", key.options(&path), |_| {});
    assert_eq!(reason(&run, "sealed model refused"), "blob-malformed");
    never_asked(&run);
    run.broker.stop();
}

#[test]
fn the_broker_refuses_a_launch_bound_to_another_blob_than_it_registered() {
    // The key is bound to this image's launch, but with another blob's digest; the run binds nothing itself.
    let key = TestKey::new("host-data-mismatch");
    let path = scratch("host-data-mismatch");
    key.blob(&path, [3; 7], MIN_CHUNK_LEN);
    let mut other = key.launch(&path);
    other.host_data = protocol::sealed_blob::launch_binding(protocol::tee::Tee::Plain, &[0x22; 48]).to_vec();
    key.bind(&key.key_id, 1, &other);
    let options = BrokerOptions { bind_launch: false, ..key.options(&path) };
    let run = refused_run("host-data-mismatch", options, |_| {});
    assert_eq!(reason(&run, "key refused"), "host_data_mismatch");
    assert!(run.report.record("key released").is_none());
    let trail = run.broker.audit_trail().unwrap();
    let refusal = trail.iter().find(|row| row.action == "refusal").expect("the refusal's audit row");
    assert!(refusal.detail.contains("host_data_mismatch"), "{refusal:?}");
    assert!(trail.iter().all(|row| row.action != "release"), "{trail:?}");
    run.broker.stop();
}

#[test]
fn swapped_or_foreign_chunks_open_nothing_with_the_released_key() {
    let key = TestKey::new("chunks");
    let stranger = key.blob(&scratch("stranger"), [2; 7], MIN_CHUNK_LEN);
    for (name, attack) in [("swapped", 0), ("foreign", 1)] {
        let path = scratch(name);
        let blob = key.blob(&path, [1; 7], MIN_CHUNK_LEN);
        let first_end = HEADER_LEN + MIN_CHUNK_LEN as usize + TAG_LEN;
        let (header, first, second) = (&blob[..HEADER_LEN], &blob[HEADER_LEN..first_end], &blob[first_end..]);
        // Swapped: the second chunk's bytes first. Foreign: the first chunk of another blob under the same key.
        let attacked = match attack {
            0 => [header, second, first].concat(),
            _ => [header, &stranger[HEADER_LEN..first_end], second].concat(),
        };
        std::fs::write(&path, &attacked).unwrap();
        let run = refused_run(name, key.options(&path), |_| {});
        assert!(run.report.record("key released").is_some(), "{name}: the header is the launch's, so the key comes");
        assert_eq!(reason(&run, "model not unsealed"), "blob-chunk-did-not-open", "{name}");
        run.broker.stop();
    }
}
