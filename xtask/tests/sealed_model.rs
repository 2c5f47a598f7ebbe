//! The sealed model outside the image, through QEMU (TCG, plain mode): the host hands the guest a blob through
//! fw_cfg and binds the launch to a digest; the guest refuses any blob that is not the one the launch is bound to
//! before it asks for a key, and the broker refuses a launch bound to another blob than the one it registered.
//! Each refusal names its reason, and nothing is released or decrypted. The host-side tests of every chunk attack
//! are in `loader::model_load` and `protocol::sealed_blob`; here the same attacks cross the real device.

mod common;

use std::path::{Path, PathBuf};

use common::{Run, broker_dir, run_serving_with};
use ovmf::exit::ExitCode;
use protocol::sealed_blob::{HEADER_LEN, MIN_CHUNK_LEN, TAG_LEN, seal};
use xtask::dance::BrokerOptions;
use xtask::qemu::Outcome;

/// The test's own model key and key id (a deployment's are fresh and secret; these seal test blobs only).
const TEST_KEY: [u8; 32] = [0x5e; 32];
const TEST_KEY_ID: [u8; 16] = [0x7e; 16];

fn options() -> BrokerOptions {
    BrokerOptions::for_checkout(&xtask::paths::repo_root())
}

/// A blob of the MLP's weights under the test key in 4 KiB chunks (two chunks), at `path`.
fn test_blob(path: &Path, nonce_prefix: [u8; 7]) -> Vec<u8> {
    let root = xtask::paths::repo_root();
    let mlp = xtask::manifest::named(&root, "mlp").unwrap();
    let weights = std::fs::read(root.join(mlp.weights())).unwrap();
    let blob = seal(&weights, mlp.model_id(), TEST_KEY_ID, &TEST_KEY, nonce_prefix, MIN_CHUNK_LEN).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, &blob).unwrap();
    blob
}

/// Options whose broker holds the test key for the blob at `path`.
fn test_options(path: &Path) -> BrokerOptions {
    BrokerOptions { sealed_model: Some(path.to_path_buf()), key: Some(TEST_KEY), ..options() }
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
    let blob = test_blob(&path, [1; 7]);
    std::fs::write(&path, &blob[..blob.len() - 100]).unwrap();
    let run = refused_run("truncated", test_options(&path), |_| {});
    assert_eq!(reason(&run, "sealed model refused"), "blob-malformed");
    never_asked(&run);
    run.broker.stop();
}

#[test]
fn the_broker_refuses_a_launch_bound_to_another_blob_than_it_registered() {
    let options = BrokerOptions { allowed_model_digest: Some([0x22; 48]), ..options() };
    let run = refused_run("host-data-mismatch", options, |_| {});
    assert_eq!(reason(&run, "key refused"), "host_data_mismatch");
    assert!(run.report.record("key released").is_none());
    let audit = std::fs::read_to_string(&run.broker.audit_log).unwrap();
    assert!(audit.contains("host_data_mismatch"), "{audit}");
    run.broker.stop();
}

#[test]
fn swapped_or_foreign_chunks_open_nothing_with_the_released_key() {
    let stranger = test_blob(&scratch("stranger"), [2; 7]);
    for (name, attack) in [("swapped", 0), ("foreign", 1)] {
        let path = scratch(name);
        let blob = test_blob(&path, [1; 7]);
        let first_end = HEADER_LEN + MIN_CHUNK_LEN as usize + TAG_LEN;
        let (header, first, second) = (&blob[..HEADER_LEN], &blob[HEADER_LEN..first_end], &blob[first_end..]);
        // Swapped: the second chunk's bytes first. Foreign: the first chunk of another blob under the same key.
        let attacked = match attack {
            0 => [header, second, first].concat(),
            _ => [header, &stranger[HEADER_LEN..first_end], second].concat(),
        };
        std::fs::write(&path, &attacked).unwrap();
        let run = refused_run(name, test_options(&path), |_| {});
        assert!(run.report.record("key released").is_some(), "{name}: the header is the launch's, so the key comes");
        assert_eq!(reason(&run, "model not unsealed"), "blob-chunk-did-not-open", "{name}");
        run.broker.stop();
    }
}
