//! `cargo xtask test`: rustfmt, clippy, fuzzing, the storm, the images, then `cargo test --workspace --no-fail-fast`
//! (every test binary runs even after a failure, so one run shows every failure; its summary lines end the output, as
//! CI expects), closed by a total.

use std::io::{BufRead, BufReader};
use std::process::{ExitCode, Stdio};

use anyhow::Result;
use xtask::image::{self, BuildOptions, Variant};
use xtask::{paths, qemu};

use super::step;

/// Run every test: host unit tests and the QEMU integration tests.
#[derive(clap::Args, Clone, Copy)]
pub struct TestArgs {
    /// Skip rustfmt and clippy.
    #[arg(long)]
    pub no_lint: bool,
    /// Seconds of the hostile-client storm (`cargo xtask storm`; 0 skips it; at most 86400).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub storm_seconds: u64,
    /// Seconds of fuzzing per target (0 skips it; at most 86400).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub fuzz_seconds: u64,
}

/// Runs the command.
pub fn run(root: &std::path::Path, args: TestArgs) -> Result<ExitCode> {
    test(root, &args)
}

/// The disk a `cargo xtask test` from a clean clone needs, in GiB, with a margin. Measured with `du` every 30 s
/// during a clean-clone `.ci/run` (2026-12-04): 5.2 GiB at the peak under the checkout, plus 0.7 GiB of crates
/// downloaded into `CARGO_HOME`, on the same disk here. What stays at the end: `target/` 3.7 GiB (`debug/` 2.0,
/// `codegen/` 0.7, `kernel/` 0.5, `venv/` 0.4) and `fuzz/target/` 0.9.
const CLEAN_RUN_DISK_GIB: f64 = 7.0;

/// Reports the free disk under `target/` and warns when a clean run may not fit: a full disk otherwise shows up
/// only as a compiler's I/O error half an hour in.
fn report_free_disk(root: &std::path::Path) -> Result<()> {
    let target = paths::target_dir(root);
    std::fs::create_dir_all(&target)?;
    let free_gib = fs4::available_space(&target)? as f64 / f64::from(1u32 << 30);
    eprintln!("xtask: disk_free_gib={free_gib:.1} path={}", target.display());
    if free_gib < CLEAN_RUN_DISK_GIB {
        eprintln!(
            "xtask: WARNING: {free_gib:.1} GiB free; a clean `cargo xtask test` needs about {CLEAN_RUN_DISK_GIB} GiB \
             (builds already under target/ need less)"
        );
    }
    Ok(())
}

fn test(root: &std::path::Path, args: &TestArgs) -> Result<ExitCode> {
    let TestArgs { no_lint, storm_seconds, fuzz_seconds } = *args;
    report_free_disk(root)?;
    step("qemu", || qemu::ensure_installed(&paths::target_dir(root)))?;
    if !no_lint {
        step("rustfmt", || {
            for dir in [root.to_path_buf(), root.join("kernel"), root.join("hypervisor")] {
                let ok = paths::cargo(&dir).args(["fmt", "--all", "--check"]).status()?.success();
                anyhow::ensure!(ok, "{} is not formatted: run `cargo fmt --all` there", dir.display());
            }
            Ok(())
        })?;
        step("clippy (host crates)", || {
            let ok = paths::cargo(root)
                .args(["clippy", "--workspace", "--all-targets", "--quiet", "--", "-D", "warnings"])
                .status()?
                .success();
            anyhow::ensure!(ok, "clippy found problems in the host crates");
            Ok(())
        })?;
        step("clippy (guest)", || {
            let ok = paths::cargo(&root.join("kernel"))
                .args(["clippy", "--release", "--quiet", "--target-dir"])
                .arg(paths::target_dir(root).join("kernel"))
                .args(["--features", "fault-injection", "--", "-D", "warnings"])
                .status()?
                .success();
            anyhow::ensure!(ok, "clippy found problems in the guest");
            Ok(())
        })?;
        step("clippy (simulated platform's hypervisor)", || {
            let ok = paths::cargo(&root.join("hypervisor"))
                .args(["clippy", "--release", "--locked", "--quiet", "--target-dir"])
                .arg(paths::target_dir(root).join("hypervisor"))
                .args(["--", "-D", "warnings"])
                .status()?
                .success();
            anyhow::ensure!(ok, "clippy found problems in the hypervisor");
            Ok(())
        })?;
    }
    if fuzz_seconds > 0 && !xtask::fuzz::nightly_available() {
        eprintln!(
            "xtask: WARNING: fuzzing SKIPPED: this machine has no nightly toolchain (`cargo xtask fuzz` needs one)"
        );
    } else if fuzz_seconds > 0 {
        for target in xtask::fuzz::TARGETS {
            let report =
                step(&format!("fuzz {target} ({fuzz_seconds} s)"), || xtask::fuzz::run(root, target, fuzz_seconds))?;
            eprintln!("xtask: fuzz {target}: {} executions, no crash", report.executions);
        }
    }
    let release = step("build release image", || image::build(Variant::Release, &BuildOptions::for_checkout(root)))?;
    let faulty = step("build fault-injection image", || {
        image::build(Variant::FaultInjection, &BuildOptions::for_checkout(root))
    })?;
    if storm_seconds > 0 {
        super::storm::run(root, storm_seconds, |line| eprintln!("xtask: {line}"))?;
    }
    // The drift test (xtask/tests/codegen.rs) runs burn-onnx: built here, before the tests run in parallel. The
    // MiniLM tests need its fetched ONNX file and generated weights (never committed).
    step("build the graph generator (burn-onnx)", || xtask::codegen::build_generator(root))?;
    step("paraphrase-MiniLM-L3-v2 (fetch: ONNX file, tokenizer; weights)", || {
        xtask::minilm::ensure(root)?;
        xtask::codegen::ensure_weights(root, &xtask::manifest::named(root, xtask::minilm::NAME)?)
    })?;
    // The key custody tests (broker::custody) run against SoftHSM2; the registry's run against SQLite (compiled in)
    // and private PostgreSQL clusters.
    xtask::install::ensure_debian_packages(
        &["softhsm2", "postgresql"],
        "the broker's key custody and registry tests use a SoftHSM2 token and PostgreSQL",
        &paths::target_dir(root),
    )?;
    // cargo test's summary lines end the output, as CI expects; a total of all of them closes it.
    let mut child = paths::cargo(root)
        .args(["test", "--workspace", "--no-fail-fast"])
        .env("AMPOULE_IMAGE", &release.path)
        .env("AMPOULE_FAULT_INJECTION_IMAGE", &faulty.path)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut total = TestTotals::default();
    for line in BufReader::new(child.stdout.take().expect("stdout is piped")).lines() {
        let line = line?;
        println!("{line}");
        total.add(&line);
    }
    let status = child.wait()?;
    println!("\nsummary: {} passed, {} failed, {} skipped", total.passed, total.failed, total.ignored);
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Sums cargo test's `test result:` lines.
#[derive(Default)]
struct TestTotals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl TestTotals {
    fn add(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else { return };
        for part in rest.split([';', '.']) {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next().and_then(|n| n.parse::<u64>().ok()), words.next()) else {
                continue;
            };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TestTotals;

    #[test]
    fn totals_add_up_cargo_test_result_lines_and_ignore_the_rest() {
        let mut total = TestTotals::default();
        for line in [
            "test result: ok. 15 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s",
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 4 filtered out; finished in 1.20s",
            "test something ... ok",
            "running 5 tests",
        ] {
            total.add(line);
        }
        assert_eq!((total.passed, total.failed, total.ignored), (18, 2, 1));
    }
}
