//! The `inference` area: the model in the guest next to the same crate host-native and next to onnxruntime, and the
//! service end to end.
//!
//! - `inference.guest_over_native_instructions`: instructions per inference in the guest (QEMU `-icount shift=0`,
//!   read from the `served` records' `model_cycles`; Debian's QEMU has no TCG plugins) over the same crate compiled
//!   host-native with the guest's codegen settings and counted by callgrind; and the same over that crate built
//!   with the guest's allocator, which shows how much of the difference is the allocator.
//! - `inference.burn_over_onnxruntime_p50`: host-native burn latency p50 over onnxruntime's (Python API), one
//!   thread each, same inputs, same run.
//! - `inference.e2e_*`, sessions and the gateway: `super::end_to_end`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use super::{Figure, median, round};
use crate::dance::{BrokerOptions, attach, free_port, start_broker};
use crate::qemu::{RunConfig, RunReport};
use crate::serve::{policy_of, reference_cases, run_serving};
use crate::{install, paths, python};

/// Inferences between the two callgrind counts.
const COUNTED_INFERENCES: usize = 100;
/// Timed inferences per side for the p50 latencies.
const TIMED_INFERENCES: usize = 20_000;
/// Inferences in the guest under icount (the first, which warms the allocator, is left out of the median).
const GUEST_INFERENCES: usize = 25;
/// Requests each end-to-end client sends.
pub(super) const E2E_REQUESTS_PER_CLIENT: usize = 40;

pub(super) fn figures(root: &Path, image: &Path) -> Result<Vec<Figure>> {
    let logs = paths::target_dir(root);
    install::ensure_debian_packages(&["valgrind"], "the inference benchmark counts host instructions", &logs)?;
    let native = build_native(root, "native_inference", false)?;
    let native_with_guest_allocator = build_native(root, "native_inference", true)?;
    let native_instructions = native_instructions_per_inference(&native)?;
    let same_allocator_instructions = native_instructions_per_inference(&native_with_guest_allocator)?;
    let guest_instructions = guest_instructions_per_inference(root, image)?;
    let ratio = guest_instructions / native_instructions;
    let same_allocator_ratio = guest_instructions / same_allocator_instructions;
    let burn_ns = p50_ns(Command::new(&native).args(["time", &TIMED_INFERENCES.to_string()]))?;
    let python = python::ensure_tool(root, python::TRAINING)?;
    let ort_ns = p50_ns(
        Command::new(python).arg(root.join("inference/model/time_onnxruntime.py")).arg(TIMED_INFERENCES.to_string()),
    )?;
    let mut figures = vec![
        Figure {
            name: "inference.guest_over_native_instructions",
            value: round(ratio, 3),
            unit: "x",
            goal: Some("<= 1.05"),
            meets_goal: Some(ratio <= 1.05),
            how: format!(
                "guest {guest_instructions:.0} instructions per inference (median of {} under QEMU -icount shift=0, \
                 input check + graph) / native {native_instructions:.0} (callgrind, ({n}+1 minus 1 inferences)/{n}, \
                 same crate, target-cpu and release profile as the guest)",
                GUEST_INFERENCES - 1,
                n = COUNTED_INFERENCES
            ),
        },
        Figure {
            name: "inference.guest_over_native_same_allocator",
            value: round(same_allocator_ratio, 3),
            unit: "x",
            goal: None,
            meets_goal: None,
            how: format!(
                "the same guest count / native {same_allocator_instructions:.0} with the guest's allocator \
                 (linked_list_allocator, feature guest-allocator) instead of the system's: what is left of the \
                 difference once the allocator is the same"
            ),
        },
        Figure {
            name: "inference.burn_over_onnxruntime_p50",
            value: round(burn_ns / ort_ns, 3),
            unit: "x",
            goal: Some("<= 1.0"),
            meets_goal: Some(burn_ns <= ort_ns),
            how: format!(
                "host-native burn p50 {:.1} us / onnxruntime (Python API, session.run) p50 {:.1} us; {TIMED_INFERENCES} \
                 single-input inferences each on the reference inputs, one thread each, same run",
                burn_ns / 1e3,
                ort_ns / 1e3
            ),
        },
    ];
    figures.extend(super::end_to_end::end_to_end(root, image)?);
    Ok(figures)
}

/// Builds the example `inference/examples/{example}.rs` with the guest's codegen settings: its target CPU and cfgs
/// ([`guest_codegen_flags`]) and every setting of its release profile (`kernel/Cargo.toml`: fat LTO, one codegen unit, overflow checks, burn at
/// opt-level "z", ...), passed to cargo as `--config` overrides; with the guest's allocator if asked. Returns a
/// copy of the binary named for the variant (the variants share one target directory).
pub(super) fn build_native(root: &Path, example: &str, guest_allocator: bool) -> Result<PathBuf> {
    build_native_example(root, "inference", example, guest_allocator)
}

/// [`build_native`] for an example of `package`.
pub(super) fn build_native_example(
    root: &Path,
    package: &str,
    example: &str,
    guest_allocator: bool,
) -> Result<PathBuf> {
    let target_dir = paths::target_dir(root).join("bench-native");
    let mut command = paths::cargo(root);
    command
        .env("CARGO_ENCODED_RUSTFLAGS", guest_codegen_flags(root)?.join("\x1f"))
        .args(["build", "--quiet", "--release", "-p", package, "--example", example, "--target", paths::GUEST_TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    if guest_allocator {
        command.args(["--features", "guest-allocator"]);
    }
    for setting in guest_release_profile(root)? {
        command.args(["--config", &setting]);
    }
    ensure!(command.status().context("running cargo")?.success(), "building the native inference benchmark failed");
    let allocator = if guest_allocator { "guest-allocator" } else { "system-allocator" };
    let variant = target_dir.join(format!("{example}-{allocator}"));
    std::fs::copy(target_dir.join(paths::GUEST_TARGET).join("release/examples").join(example), &variant)?;
    Ok(variant)
}

/// The guest's `[profile.release]` as dotted `key=value` settings (`profile.release.package.burn-flex.opt-level="z"`).
fn guest_release_profile(root: &Path) -> Result<Vec<String>> {
    let manifest: toml::Table = std::fs::read_to_string(root.join("kernel/Cargo.toml"))?.parse()?;
    let profile = manifest
        .get("profile")
        .and_then(|p| p.get("release"))
        .and_then(toml::Value::as_table)
        .context("kernel/Cargo.toml has no [profile.release]")?;
    let mut settings = Vec::new();
    flatten("profile.release", profile, &mut settings);
    Ok(settings)
}

/// The guest's code-generation flags from `kernel/.cargo/config.toml` that a host-native build can share: its
/// `-C target-cpu` and its `--cfg`s (gemm's `feature="fma"` among them), without the linker's.
fn guest_codegen_flags(root: &Path) -> Result<Vec<String>> {
    let config: toml::Table = std::fs::read_to_string(root.join("kernel/.cargo/config.toml"))?.parse()?;
    let flags: Vec<&str> = config
        .get("target")
        .and_then(|t| t.get(paths::GUEST_TARGET))
        .and_then(|t| t.get("rustflags"))
        .and_then(toml::Value::as_array)
        .context("kernel/.cargo/config.toml has no rustflags for the guest's target")?
        .iter()
        .map(|flag| flag.as_str().context("a rustflag that is not a string"))
        .collect::<Result<_>>()?;
    let mut shared = Vec::new();
    for pair in flags.windows(2) {
        if let [option, value] = pair
            && (*option == "--cfg" || (*option == "-C" && value.starts_with("target-cpu=")))
        {
            shared.extend([option.to_string(), value.to_string()]);
        }
    }
    ensure!(shared.iter().any(|f| f.starts_with("target-cpu=")), "the guest's rustflags name no target-cpu");
    Ok(shared)
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
    for (key, value) in table {
        match value {
            toml::Value::Table(inner) => flatten(&format!("{prefix}.{key}"), inner, out),
            value => out.push(format!("{prefix}.{key}={value}")),
        }
    }
}

/// Callgrind's instruction count of `native ARGS` (start-up and loading included).
pub(super) fn callgrind_instructions(native: &Path, args: &[&str]) -> Result<u64> {
    let output = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(native)
        .args(args)
        .output()
        .context("running valgrind")?;
    ensure!(output.status.success(), "callgrind failed: {}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let collected = stderr.lines().find_map(|l| l.split_once("Collected :").map(|(_, n)| n.trim().to_string()));
    collected.and_then(|n| n.parse().ok()).context("callgrind printed no 'Collected' count")
}

fn native_instructions_per_inference(native: &Path) -> Result<f64> {
    let one = callgrind_instructions(native, &["count", "1"])?;
    let many = callgrind_instructions(native, &["count", &(1 + COUNTED_INFERENCES).to_string()])?;
    ensure!(many > one, "callgrind counted no more for {COUNTED_INFERENCES} more inferences");
    Ok((many - one) as f64 / COUNTED_INFERENCES as f64)
}

/// Runs a `time N` command and reads its `{"p50_ns": ...}`.
pub(super) fn p50_ns(command: &mut Command) -> Result<f64> {
    let output = command.output().with_context(|| format!("running {command:?}"))?;
    ensure!(output.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).context("reading the p50")?;
    value["p50_ns"].as_f64().context("no p50_ns")
}

/// A serving guest with its broker, and the client's view of it.
pub(super) struct ServingGuest {
    pub(super) config: RunConfig,
    pub(super) guest: SocketAddr,
    pub(super) policy: broker::policy::Policy,
    pub(super) broker: crate::dance::RunningBroker,
}

/// A guest serving the MLP under `extra_args`.
pub(super) fn serving_guest(root: &Path, image: &Path, extra_args: &[&str]) -> Result<ServingGuest> {
    serving_guest_with(root, image, extra_args, &BrokerOptions::for_checkout(root))
}

/// A guest whose broker `options` describe (its sealed model among them), under `extra_args`.
pub(super) fn serving_guest_with(
    root: &Path,
    image: &Path,
    extra_args: &[&str],
    options: &BrokerOptions,
) -> Result<ServingGuest> {
    let bytes = std::fs::read(image)?;
    let dir = paths::target_dir(root).join("bench-inference-broker");
    let broker = start_broker(&dir, &bytes, options)?;
    let mut config = RunConfig::new(image);
    config.timeout = Duration::from_secs(600);
    config.extra_args = extra_args.iter().map(|a| a.to_string()).collect();
    let port = free_port()?;
    attach(&mut config, broker.port, port, broker.model.as_ref());
    let policy = policy_of(&broker.policy)?;
    Ok(ServingGuest { config, guest: SocketAddr::from(([127, 0, 0, 1], port)), policy, broker })
}

fn guest_instructions_per_inference(root: &Path, image: &Path) -> Result<f64> {
    let cases = reference_cases(root)?;
    let ServingGuest { config, guest, policy, broker } = serving_guest(root, image, &["-icount", "shift=0"])?;
    let (report, done) = run_serving(&config, move || -> Result<()> {
        let mut client = client::GuestClient::connect(guest, &policy, Duration::from_secs(60))?;
        for case in cases.iter().cycle().take(GUEST_INFERENCES) {
            client.infer(&case.features)?.map_err(|code| anyhow::anyhow!("refused: {}", code.as_str()))?;
        }
        Ok(())
    })?;
    broker.stop();
    client_result("the icount run", &report, done)?;
    let cycles: Vec<f64> = report
        .lines
        .iter()
        .filter_map(|l| protocol::console::Record::parse(l).ok())
        .filter(|r| r.msg == "served")
        .filter_map(|r| r.field("model_cycles").and_then(|v| v.parse().ok()))
        .collect();
    ensure!(cycles.len() == GUEST_INFERENCES, "{} served records with model_cycles", cycles.len());
    Ok(median(cycles[1..].to_vec()))
}

/// What a `run_serving` client returned, or why there is nothing: it panicked, or the guest never served.
pub(super) fn client_result<T>(
    what: &str,
    report: &RunReport,
    done: Option<std::thread::Result<Result<T>>>,
) -> Result<T> {
    match done {
        Some(Ok(result)) => result,
        Some(Err(_)) => bail!("{what}: the client panicked"),
        None => bail!("{what}: the guest did not serve: {:?}", report.outcome),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_native_build_gets_the_guests_release_profile() {
        let settings = super::guest_release_profile(&crate::paths::repo_root()).unwrap();
        for expected in [
            "profile.release.lto=\"fat\"",
            "profile.release.codegen-units=1",
            "profile.release.overflow-checks=true",
            "profile.release.package.burn-flex.opt-level=\"z\"",
        ] {
            assert!(settings.iter().any(|s| s == expected), "{expected} missing from {settings:?}");
        }
    }
}
