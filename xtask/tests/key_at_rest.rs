//! No model key at rest in plaintext: `cargo xtask seal`, then the main job (`cargo xtask run-qemu`), then every
//! file under target/ (build outputs, the images, the sealed blobs, the broker state with its SQLite registry and
//! the SoftHSM2 token's files, the run's logs), and a dump of the registry, are searched for the model key raw, in
//! hex and in base64. It is found nowhere; its wrapped form is found where the registry keeps it (which shows that
//! the search reads the registry's bytes).

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use memchr::memmem::Finder;
use xtask::broker_state::BrokerState;
use xtask::paths;

fn xtask(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "xtask {args:?} failed: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every regular file under `dir` (symbolic links are not followed).
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            files_under(&entry.path(), out);
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
}

/// Which of `needles` occur in the file at `path` (read in chunks that overlap by a needle's length).
fn occurring(path: &Path, needles: &[(&str, Finder<'_>)]) -> Vec<String> {
    const CHUNK: usize = 8 << 20;
    let Ok(mut file) = std::fs::File::open(path) else { return Vec::new() };
    let overlap = needles.iter().map(|(_, f)| f.needle().len()).max().unwrap_or(0);
    let mut buffer = vec![0u8; CHUNK + overlap];
    let (mut kept, mut found) = (0, Vec::new());
    while let Ok(read @ 1..) = file.read(&mut buffer[kept..]) {
        let filled = kept + read;
        for (name, finder) in needles {
            if finder.find(&buffer[..filled]).is_some() && !found.contains(&name.to_string()) {
                found.push(name.to_string());
            }
        }
        kept = overlap.min(filled);
        buffer.copy_within(filled - kept..filled, 0);
    }
    found
}

#[test]
fn after_seal_and_the_main_job_no_file_under_target_holds_the_model_key() {
    let root = paths::repo_root();
    let image = common::image(xtask::image::Variant::Release);
    let sealed = xtask(&["seal"]);
    let key_id: [u8; 16] = sealed
        .lines()
        .find_map(|l| l.strip_prefix("key_id")?.split_whitespace().next().map(str::to_string))
        .and_then(|hex_id| hex::decode(hex_id).ok()?.try_into().ok())
        .unwrap_or_else(|| panic!("seal printed no key_id: {sealed}"));
    xtask(&["run-qemu", "--image", image.to_str().unwrap()]);

    let state = BrokerState::for_checkout(&root, Default::default());
    let key = common::unwrapped_key(&state, &key_id);
    let (_, _, mut registry) = state.open().unwrap();
    let versions = registry.all().unwrap();
    let wrapped = versions.iter().rev().find(|v| v.key_id == key_id).unwrap().wrapped.clone();
    // The registry as a dump would give it: every row, bytes in hex.
    let dump = format!("{versions:?}\n{:?}\n{}", registry.audit_trail().unwrap(), hex::encode(&wrapped));
    let dump_file = paths::target_dir(&root).join("key-at-rest-registry.dump");
    std::fs::write(&dump_file, dump).unwrap();

    let b64 = base64::engine::general_purpose::STANDARD;
    let forms = [
        ("raw", key.to_vec()),
        ("hex", hex::encode(*key).into_bytes()),
        ("HEX", hex::encode_upper(*key).into_bytes()),
        ("base64", b64.encode(*key).into_bytes()),
        ("base64url", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*key).into_bytes()),
        ("wrapped", wrapped.clone()),
    ];
    let needles: Vec<(&str, Finder<'_>)> = forms.iter().map(|(name, bytes)| (*name, Finder::new(bytes))).collect();
    let mut files = Vec::new();
    files_under(&paths::target_dir(&root), &mut files);
    let (mut holding_key, mut holding_wrapped) = (Vec::new(), Vec::new());
    for file in &files {
        for name in occurring(file, &needles) {
            if name == "wrapped" {
                holding_wrapped.push(file.clone());
            } else {
                holding_key.push((name, file.clone()));
            }
        }
    }
    let _ = std::fs::remove_file(&dump_file);
    assert!(holding_key.is_empty(), "the model key is on disk: {holding_key:?}");
    let in_state = |p: &PathBuf| p.starts_with(&state.dir) || *p == dump_file;
    assert!(holding_wrapped.iter().any(|p| p.starts_with(&state.dir)), "the registry's wrapped key was not found");
    assert!(holding_wrapped.iter().all(in_state), "the wrapped key outside the registry: {holding_wrapped:?}");
    eprintln!("{} files under target/ searched; the wrapped key found in {holding_wrapped:?} only", files.len());
}
