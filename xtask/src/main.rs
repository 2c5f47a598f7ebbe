//! `cargo xtask build | run-qemu | test | repro`: see the README.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use xtask::image::{self, BuildOptions, Variant};
use xtask::paths;
use xtask::qemu::{self, Accel, RunConfig, Tee};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, run and test the Ampoule guest")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build ampoule.bin and print its path, size and SHA-256.
    Build {
        /// Print one JSON object (keys: image, size, sha256).
        #[arg(long)]
        json: bool,
        /// Show cargo's output.
        #[arg(long, short)]
        verbose: bool,
        /// Which image: the release image, or the test image that raises faults on request.
        #[arg(long, value_enum, default_value = "release")]
        variant: Variant,
        /// Also write the image as an IGVM file (ampoule.igvm; native, SEV-SNP and TDX platforms).
        #[arg(long)]
        igvm: bool,
        /// With --igvm: the vCPU model whose CPUID signature goes into the SNP VMSA.
        #[arg(long, default_value = xtask::measure::DEFAULT_VCPU_TYPE)]
        vcpu_type: String,
        /// With --igvm: SEV_FEATURES of the SNP VMSA, hex.
        #[arg(long, default_value = "0x1", value_parser = parse_hex_u64)]
        guest_features: u64,
    },
    /// Build the image (unless --image is given), boot it under QEMU and stream its records.
    RunQemu {
        /// Boot this image instead of building one.
        #[arg(long)]
        image: Option<PathBuf>,
        /// tcg (software; the default here) or kvm (real hosts).
        #[arg(long, value_enum, default_value = "tcg")]
        accel: Accel,
        /// The QEMU CPU model [default: max; EPYC-v4 under SNP, as `measure` assumes; host under TDX].
        #[arg(long)]
        cpu: Option<String>,
        /// Seconds before the run is stopped as a timeout.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// Launch as plain, SEV-SNP or TDX (SNP and TDX need a host with KVM support for them).
        #[arg(long, value_enum, default_value = "plain")]
        tee: Tee,
        /// vCPUs (-smp): the SNP launch digest depends on it.
        #[arg(long, default_value_t = 1)]
        vcpus: u32,
        /// Print the QEMU command line and exit (for SNP/TDX: the command for a real host).
        #[arg(long)]
        print_cmdline: bool,
        /// Launch the IGVM rendering (QEMU >= 10.1; plain or SNP) instead of -bios.
        #[arg(long)]
        igvm: bool,
        /// Boot the fault-injection test image and make it raise this fault
        /// (ud, page-fault, stack-overflow, broken-idt, hang).
        #[arg(long)]
        inject: Option<String>,
    },
    /// Print the SEV-SNP launch digest and the TDX MRTD of the image (built unless --image is given).
    Measure {
        /// Measure this image instead of building one.
        #[arg(long)]
        image: Option<PathBuf>,
        /// vCPU count (one VMSA each in the SNP digest).
        #[arg(long, default_value_t = 1)]
        vcpus: u32,
        /// QEMU vCPU model (its CPUID signature is in every VMSA).
        #[arg(long, default_value = xtask::measure::DEFAULT_VCPU_TYPE)]
        vcpu_type: String,
        /// SEV_FEATURES of the VMSAs, hex (0x1 for QEMU >= 9.1 on host kernels >= 6.10).
        #[arg(long, default_value = "0x1", value_parser = parse_hex_u64)]
        guest_features: u64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Rewrite README.md's table of predicted SNP digests (1, 2, 4, 8 vCPUs) and MRTD for this image.
        #[arg(long)]
        write_readme: bool,
        /// Measure the IGVM rendering (--image names an .igvm file; by default it is built with the other options).
        #[arg(long)]
        igvm: bool,
    },
    /// Build the image from two different checkout paths and fail unless the bytes are identical.
    Repro {
        /// Show cargo's output.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Measure boot time against OVMF, guest instructions to boot, and image size (not a test).
    Bench {
        /// Print one JSON object: {"figures": [...]}.
        #[arg(long)]
        json: bool,
        /// Run one area only (boot, image).
        #[arg(long)]
        only: Option<String>,
        /// Runs per side for timed figures.
        #[arg(long, default_value_t = 7)]
        runs: usize,
    },
    /// Run the cargo-fuzz targets (nightly; installs cargo-fuzz when missing).
    Fuzz {
        /// One target (metadata); all when omitted.
        #[arg(long)]
        target: Option<String>,
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Run every test: host unit tests and the QEMU integration tests.
    Test {
        /// Skip rustfmt and clippy.
        #[arg(long)]
        no_lint: bool,
        /// Seconds of fuzzing per target (0 skips it).
        #[arg(long, default_value_t = 30)]
        fuzz_seconds: u64,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let root = paths::repo_root();
    match cli.command {
        Cmd::Build { json, verbose, variant, igvm, vcpu_type, guest_features } => {
            let started = Instant::now();
            let options = BuildOptions { verbose, ..BuildOptions::for_checkout(&root) };
            let built = image::build(variant, &options)?;
            let igvm_file = if igvm {
                let vcpu_type = xtask::measure::VcpuType::by_name(&vcpu_type)?;
                let launch = xtask::measure::SnpLaunch { vcpus: 1, vcpu_type, guest_features };
                Some(write_igvm(&built, &launch)?)
            } else {
                None
            };
            if json {
                let mut value = serde_json::json!({
                    "image": built.path,
                    "size": built.bytes.len(),
                    "sha256": built.sha256_hex(),
                });
                if let Some((path, bytes)) = &igvm_file {
                    value["igvm"] = serde_json::json!({
                        "path": path, "size": bytes.len(), "sha256": image::sha256_hex(bytes),
                    });
                }
                println!("{value}");
            } else {
                println!("image  {}", built.path.display());
                println!("size   {} bytes", built.bytes.len());
                println!("sha256 {}", built.sha256_hex());
                if let Some((path, bytes)) = &igvm_file {
                    println!("igvm   {} ({} bytes, sha256 {})", path.display(), bytes.len(), image::sha256_hex(bytes));
                }
                eprintln!("xtask: built in {:.1} s", started.elapsed().as_secs_f64());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::RunQemu { image, accel, cpu, timeout, inject, tee, vcpus, print_cmdline, igvm } => {
            let cpu = cpu.unwrap_or_else(|| {
                match tee {
                    Tee::Plain => "max",
                    Tee::Snp => xtask::measure::DEFAULT_VCPU_TYPE,
                    Tee::Tdx => "host",
                }
                .to_string()
            });
            if tee == Tee::Snp {
                // Only models whose CPUID signature measure knows: the digest depends on it.
                xtask::measure::VcpuType::by_name(&cpu)?;
            }
            let mut config = RunConfig {
                tee,
                vcpus,
                accel,
                cpu,
                timeout: Duration::from_secs(timeout),
                echo: true,
                ..RunConfig::new("")
            };
            let variant = if inject.is_some() { Variant::FaultInjection } else { Variant::Release };
            config.fw_cfg.extend(inject.map(|kind| (FAULT_INJECTION_FW_CFG.to_string(), kind)));
            config.igvm = igvm;
            if igvm {
                anyhow::ensure!(tee != Tee::Tdx, "QEMU does not load TDX IGVM files; launch a TD from -bios");
                anyhow::ensure!(vcpus == 1, "the IGVM rendering describes one vCPU");
            }
            if !print_cmdline {
                qemu::check_tee_host(tee, igvm)?;
                step("qemu", || qemu::ensure_installed(&paths::target_dir(&root)))?;
            }
            config.image = resolve_image(&root, image, variant, &config)?;
            if print_cmdline {
                println!("{} {}", qemu::QEMU, shell_words(&config.qemu_args()));
                return Ok(ExitCode::SUCCESS);
            }
            run_qemu(config)
        }
        Cmd::Measure { image, vcpus, vcpu_type, guest_features, json, write_readme, igvm } => {
            let vcpu_type = xtask::measure::VcpuType::by_name(&vcpu_type)?;
            let launch = xtask::measure::SnpLaunch { vcpus, vcpu_type, guest_features };
            if igvm {
                anyhow::ensure!(!write_readme, "--write-readme is for the -bios image");
                return measure_igvm(&root, image, &launch, json);
            }
            let (path, bytes) = match image {
                Some(path) => {
                    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                    (path, bytes)
                }
                None => {
                    let built = image::build(Variant::Release, &BuildOptions::for_checkout(&root))?;
                    (built.path, built.bytes)
                }
            };
            let m =
                xtask::measure::measure(&bytes, &launch).with_context(|| format!("measuring {}", path.display()))?;
            if write_readme {
                let readme_path = root.join("README.md");
                let readme = std::fs::read_to_string(&readme_path)?;
                let table = xtask::measure::readme_table(&bytes)?;
                std::fs::write(&readme_path, xtask::measure::with_readme_table(&readme, &table)?)?;
                eprintln!("xtask: updated the digest table in {}", readme_path.display());
            }
            let (snp, mrtd) = (xtask::measure::hex(&m.snp), xtask::measure::hex(&m.mrtd));
            if json {
                let value = serde_json::json!({
                    "image": path,
                    "sha256": image::sha256_hex(&bytes),
                    "snp": { "launch_digest": snp, "vcpus": vcpus, "vcpu_type": vcpu_type.name,
                             "guest_features": format!("{guest_features:#x}") },
                    "tdx": { "mrtd": mrtd },
                });
                println!("{value}");
            } else {
                println!("image               {}", path.display());
                println!("sha256              {}", image::sha256_hex(&bytes));
                println!("snp launch digest   {snp}");
                println!(
                    "                    vcpus={vcpus} vcpu-type={} guest-features={guest_features:#x}",
                    vcpu_type.name
                );
                println!("tdx mrtd            {mrtd}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Repro { verbose } => {
            let report = step("repro: two builds from two paths", || xtask::repro::run(&root, verbose))?;
            for ((path, sha), (snp, mrtd)) in report.builds.iter().zip(&report.measurements) {
                println!("{}", path.display());
                println!("  sha256             {sha}");
                println!("  snp launch digest  {snp}");
                println!("  tdx mrtd           {mrtd}");
            }
            if report.identical {
                println!("identical: yes");
                Ok(ExitCode::SUCCESS)
            } else {
                bail!("the two builds differ (first differing byte at offset {:?})", report.first_difference)
            }
        }
        Cmd::Bench { json, only, runs } => {
            anyhow::ensure!(runs > 0, "--runs must be at least 1");
            let figures = xtask::bench::run(&root, only.as_deref(), runs)?;
            if json {
                let figures: Vec<_> = figures.iter().map(|f| f.to_json()).collect();
                println!("{}", serde_json::json!({ "figures": figures }));
            } else {
                for f in &figures {
                    let goal = f
                        .goal
                        .map(|g| format!("  goal {g}: {}", if f.meets_goal == Some(true) { "met" } else { "NOT met" }));
                    println!("{:<32} {:>14} {:<12}{}", f.name, f.value, f.unit, goal.unwrap_or_default());
                    println!("{:<32} {}", "", f.how);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Fuzz { target, seconds } => {
            let targets: Vec<String> = match target {
                Some(t) => vec![t],
                None => xtask::fuzz::TARGETS.iter().map(|t| t.to_string()).collect(),
            };
            for target in targets {
                let report = xtask::fuzz::run(&root, &target, seconds)?;
                println!(
                    "fuzz {}: {} executions in {:.0} s, no crash",
                    report.target, report.executions, report.seconds
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Test { no_lint, fuzz_seconds } => test(&root, no_lint, fuzz_seconds),
    }
}

/// Arguments joined for a shell: each quoted if it holds anything but safe characters.
fn shell_words(args: &[String]) -> String {
    let safe = |a: &str| !a.is_empty() && a.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_=,./:+@".contains(&b));
    args.iter()
        .map(|a| if safe(a) { a.clone() } else { format!("'{}'", a.replace('\'', "'\\''")) })
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_hex_u64(text: &str) -> Result<u64, String> {
    u64::from_str_radix(text.trim_start_matches("0x"), 16).map_err(|e| format!("{text:?} is not hex: {e}"))
}

fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let started = Instant::now();
    eprintln!("xtask: {name} ...");
    let value = f()?;
    eprintln!("xtask: {name}: done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(value)
}

/// Renders `built` as ampoule.igvm beside it; returns the path and bytes.
fn write_igvm(built: &image::BuiltImage, launch: &xtask::measure::SnpLaunch) -> Result<(PathBuf, Vec<u8>)> {
    let metadata = ovmf::metadata::parse(&built.bytes, ovmf::layout::GUEST_RAM_SIZE)
        .map_err(|e| anyhow::anyhow!("malformed image metadata: {e}"))?;
    let bytes = xtask::igvm::to_bytes(&xtask::igvm::render(&built.bytes, &metadata, launch)?)?;
    let path = built.path.with_extension("igvm");
    std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok((path, bytes))
}

fn measure_igvm(
    root: &std::path::Path,
    image: Option<PathBuf>,
    launch: &xtask::measure::SnpLaunch,
    json: bool,
) -> Result<ExitCode> {
    let (path, bytes) = match image {
        Some(path) => {
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            (path, bytes)
        }
        None => write_igvm(&image::build(Variant::Release, &BuildOptions::for_checkout(root))?, launch)?,
    };
    let m = xtask::measure::igvm::measure_igvm(&bytes).with_context(|| format!("measuring {}", path.display()))?;
    let (snp, mrtd) = (xtask::measure::hex(&m.snp), xtask::measure::hex(&m.mrtd));
    if json {
        let value = serde_json::json!({
            "igvm": path, "sha256": image::sha256_hex(&bytes),
            "snp": { "launch_digest": snp, "vcpus": 1 }, "tdx": { "mrtd": mrtd },
        });
        println!("{value}");
    } else {
        println!("igvm                {}", path.display());
        println!("sha256              {}", image::sha256_hex(&bytes));
        println!("snp launch digest   {snp}");
        println!("                    (IGVM launch, 1 vCPU, VMSA as in the file)");
        println!("tdx mrtd            {mrtd}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The fw_cfg file the fault-injection image reads (kernel/src/fault_injection.rs).
const FAULT_INJECTION_FW_CFG: &str = "opt/ampoule/inject";

/// The image to boot: `given` (checked to be an Ampoule `-bios` image unless it is an IGVM launch), or this
/// checkout's image, built (and rendered as IGVM for an IGVM launch).
fn resolve_image(
    root: &std::path::Path,
    given: Option<PathBuf>,
    variant: Variant,
    config: &RunConfig,
) -> Result<PathBuf> {
    if let Some(path) = given {
        if !config.igvm {
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            image::validate(&bytes).with_context(|| format!("refusing {}", path.display()))?;
        }
        return Ok(path);
    }
    let built = step("build", || image::build(variant, &BuildOptions::for_checkout(root)))?;
    if !config.igvm {
        return Ok(built.path);
    }
    let vcpu_type = xtask::measure::VcpuType::by_name(if config.tee == Tee::Snp {
        &config.cpu
    } else {
        xtask::measure::DEFAULT_VCPU_TYPE
    })?;
    let launch =
        xtask::measure::SnpLaunch { vcpus: 1, vcpu_type, guest_features: xtask::measure::DEFAULT_GUEST_FEATURES };
    Ok(write_igvm(&built, &launch)?.0)
}

fn run_qemu(config: RunConfig) -> Result<ExitCode> {
    let report = qemu::run(&config)?;
    let booted = report.record("booted").map(|(_, at)| format!("{:.0} ms", at.as_secs_f64() * 1e3));
    eprintln!(
        "xtask: outcome={} booted_after={} wall={:.0} ms",
        report.outcome.name(),
        booted.as_deref().unwrap_or("never"),
        report.wall.as_secs_f64() * 1e3
    );
    if !report.stderr.trim().is_empty() {
        eprintln!("xtask: qemu stderr:\n{}", report.stderr.trim_end());
    }
    if report.outcome.is_success() {
        Ok(ExitCode::SUCCESS)
    } else {
        if let Some(line) = report.lines.iter().rev().find(|l| l.contains("level=error")) {
            eprintln!("xtask: guest's last error: {line}");
        }
        bail!("the guest did not succeed: {}", report.outcome.name())
    }
}

fn cargo(root: &std::path::Path) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root);
    cmd
}

fn test(root: &std::path::Path, no_lint: bool, fuzz_seconds: u64) -> Result<ExitCode> {
    step("qemu", || qemu::ensure_installed(&paths::target_dir(root)))?;
    if !no_lint {
        step("rustfmt", || {
            for dir in [root.to_path_buf(), root.join("kernel")] {
                let ok = cargo(&dir).args(["fmt", "--all", "--check"]).status()?.success();
                anyhow::ensure!(ok, "{} is not formatted: run `cargo fmt --all` there", dir.display());
            }
            Ok(())
        })?;
        step("clippy (host crates)", || {
            let ok = cargo(root)
                .args(["clippy", "--workspace", "--all-targets", "--quiet", "--", "-D", "warnings"])
                .status()?
                .success();
            anyhow::ensure!(ok, "clippy found problems in the host crates");
            Ok(())
        })?;
        step("clippy (guest)", || {
            let ok = cargo(&root.join("kernel"))
                .args(["clippy", "--release", "--quiet", "--target-dir"])
                .arg(paths::target_dir(root).join("kernel"))
                .args(["--features", "fault-injection", "--", "-D", "warnings"])
                .status()?
                .success();
            anyhow::ensure!(ok, "clippy found problems in the guest");
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
    // cargo test's summary lines end the output, as CI expects; a total of all of them closes it.
    let mut child = cargo(root)
        .args(["test", "--workspace"])
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
    println!("\nsummary: {} passed, {} failed, {} ignored", total.passed, total.failed, total.ignored);
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
