//! `cargo xtask fuzz`: the cargo-fuzz targets in fuzz/, run with the machine's nightly toolchain (fuzzing needs
//! it; the image never does). Installs cargo-fuzz when missing. Seeds each target's corpus with a valid input.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

use protocol::frame::frame;
use protocol::message::{Message, PROTOCOL_VERSION};
use protocol::service::{InferInput, ServiceReply, ServiceRequest};
use protocol::tee::Tee;

use crate::paths;

/// The pinned cargo-fuzz.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// The fuzz targets, by name.
pub const TARGETS: [&str; 4] = ["metadata", "td_hob", "protocol", "broker"];

/// What one run did.
#[derive(Debug)]
pub struct FuzzReport {
    /// The target.
    pub target: String,
    /// libFuzzer's executed-units count.
    pub executions: u64,
    /// Wall time.
    pub seconds: f64,
}

fn rustup_nightly() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly"]);
    // The outer cargo's settings belong to the pinned stable toolchain.
    for var in ["RUSTUP_TOOLCHAIN", "RUSTC", "CARGO", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_TARGET_DIR"] {
        cmd.env_remove(var);
    }
    cmd
}

/// Whether the machine has a nightly toolchain (fuzzing needs one; it cannot be fetched here).
pub fn nightly_available() -> bool {
    let status = rustup_nightly().args(["rustc", "--version"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    status.is_ok_and(|s| s.success())
}

/// Installs cargo-fuzz if `cargo fuzz` does not run; checks that a nightly toolchain is there.
pub fn ensure_cargo_fuzz() -> Result<()> {
    ensure!(
        nightly_available(),
        "fuzzing needs a nightly toolchain (`rustup toolchain install nightly`), and this machine has none"
    );
    let installed = rustup_nightly().args(["cargo", "fuzz", "--version"]).output();
    if installed.is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(CARGO_FUZZ_VERSION)) {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-fuzz {CARGO_FUZZ_VERSION} from crates.io (fuzzing needs it)");
    let status = Command::new("cargo")
        .args(["install", "--quiet", "--locked", "cargo-fuzz", "--version", CARGO_FUZZ_VERSION])
        .env_remove("RUSTUP_TOOLCHAIN")
        .status()
        .context("running cargo install cargo-fuzz")?;
    ensure!(status.success(), "cargo install cargo-fuzz failed");
    Ok(())
}

/// Valid inputs for `target`, so the fuzzer starts from the real structures.
fn seeds(target: &str) -> Result<Vec<Vec<u8>>> {
    match target {
        // The metadata window as encoded in every image; the fuzz target zero-fills the rest of the tail.
        "metadata" => Ok(vec![ovmf::metadata::encode().to_vec()]),
        // A TD HOB as QEMU writes it (hw/i386/tdvf-hob.c): the PHIT, RAM the image's TDVF sections added, the
        // rest of 256 MiB unaccepted, the end marker (PI spec vol. 3 HOB layouts).
        "td_hob" => {
            use ovmf::tdx::hob::*;
            let header = |kind: u16, len: u16| [&kind.to_le_bytes()[..], &len.to_le_bytes(), &[0; 4]].concat();
            let resource = |kind: u32, start: u64, length: u64| {
                let fields =
                    [&kind.to_le_bytes()[..], &7u32.to_le_bytes(), &start.to_le_bytes(), &length.to_le_bytes()];
                [&header(EFI_HOB_TYPE_RESOURCE_DESCRIPTOR, 48)[..], &[0; 16], &fields.concat()].concat()
            };
            let phit = [&header(EFI_HOB_TYPE_HANDOFF, 56)[..], &EFI_HOB_HANDOFF_TABLE_VERSION.to_le_bytes(), &[0; 44]];
            Ok(vec![
                [
                    &phit.concat()[..],
                    &resource(EFI_RESOURCE_SYSTEM_MEMORY, 1 << 20, 7 << 20),
                    &resource(EFI_RESOURCE_MEMORY_UNACCEPTED, 16 << 20, 240 << 20),
                    &header(EFI_HOB_TYPE_END_OF_HOB_LIST, 8),
                ]
                .concat(),
            ])
        }
        // Each behind the selector byte of its decoder (fuzz/fuzz_targets/protocol.rs).
        "protocol" => {
            let hello = Message::Hello { version: PROTOCOL_VERSION, tee: Tee::Plain }.encode()?;
            let input = InferInput { reply_public_key: [7; 32], values: vec![1.5; 30] }.encode()?;
            let infer = ServiceRequest::Infer { encapped_key: [3; 32], sealed_input: vec![0xa5; input.len() + 16] };
            let result = ServiceReply::Result { encapped_key: [4; 32], sealed_output: vec![0x5a; 8 + 2 + 16] };
            let weights: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
            let blob = protocol::sealed_blob::seal(&weights, [1; 16], [2; 16], &[0xa5; 32], [3; 7], 4096)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(vec![
                [&[0u8][..], &hello].concat(),
                [&[4u8][..], &infer.encode()?].concat(),
                [&[5u8][..], &result.encode()?].concat(),
                [&[6u8][..], &input].concat(),
                [&[9u8][..], &blob].concat(),
            ])
        }
        // A connection's stream: a framed Hello, then a framed Attest with simulated evidence.
        "broker" => {
            let hello = frame(&Message::Hello { version: PROTOCOL_VERSION, tee: Tee::Plain }.encode()?)?;
            let report = protocol::report::simulated_report(&[0xa1; 48], &[0; 64], 0x30000);
            let attest = Message::Attest {
                tee: Tee::Plain,
                nonce: [0; 32],
                key_id: [0x0a; 16],
                guest_public_key: [9; 32],
                evidence: report.to_vec(),
            };
            Ok(vec![[&[0u8][..], &hello, &frame(&attest.encode()?)?].concat()])
        }
        _ => bail!("unknown fuzz target {target:?}; targets: {}", TARGETS.join(", ")),
    }
}

/// Runs `target` for `seconds`; fails if the fuzzer finds a crash (the input is kept under fuzz/artifacts/).
pub fn run(root: &Path, target: &str, seconds: u64) -> Result<FuzzReport> {
    let corpus = paths::target_dir(root).join("fuzz-corpus").join(target);
    std::fs::create_dir_all(&corpus)?;
    for (i, seed) in seeds(target)?.iter().enumerate() {
        std::fs::write(corpus.join(format!("seed-{i}")), seed)?;
    }
    ensure_cargo_fuzz()?;
    let started = Instant::now();
    let out = rustup_nightly()
        .current_dir(root)
        .args(["cargo", "fuzz", "run", "--fuzz-dir", "fuzz", target])
        .arg(&corpus)
        .args(["--", &format!("-max_total_time={seconds}"), "-print_final_stats=1"])
        .stdout(Stdio::inherit())
        .output()
        .context("running cargo fuzz")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let seconds = started.elapsed().as_secs_f64();
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        bail!("fuzz target {target} failed:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    let executions = stderr
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|n| n.trim().parse().ok())
        .context("libFuzzer printed no execution count")?;
    Ok(FuzzReport { target: target.to_string(), executions, seconds })
}
