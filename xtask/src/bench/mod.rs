//! `cargo xtask bench`: figures measured side by side in one run, printed as ratios. Never a test: nothing here
//! asserts on time. Names are `area.what` and stay stable once published.
//!
//! Areas:
//! - `boot`: QEMU spawn -> Ampoule's `booted` record vs QEMU spawn -> Debian OVMF's first serial byte, same QEMU,
//!   same TCG settings, runs interleaved; and guest instructions from reset to `booted`, counted by QEMU's icount.
//! - `image`: the image's size and the pages an SNP launch measures.
//! - `broker`: releases per second and latency with 1 and 8 concurrent clients on loopback, next to the raw cost
//!   of the cryptography one release needs (`broker.rs`).
//! - `dance`: the guest's time from Hello to KeyRelease under TCG (`dance.rs`).
//! - `inference`: instructions per inference in the guest vs host-native, burn vs onnxruntime, and the service's
//!   latency and throughput end to end (`inference.rs`).
//! - `minilm`: paraphrase-MiniLM-L3-v2 in the guest vs host-native vs onnxruntime, and its 69 MB blob's load
//!   (`minilm.rs`).
//! - `snp_sim`: the main job on the simulated SNP platform vs plain mode, and the platform's exits at boot by kind
//!   (`snp_sim.rs`).
//! - `tdx_sim`: the main job as a TD on the simulated platform vs plain mode, and its #VE and TDCALL counts by
//!   kind (`tdx_sim.rs`); both simulated areas share `simulated_main_job.rs`.

mod batching;
mod broker;
mod dance;
mod end_to_end;
mod gateway;
mod inference;
mod minilm;
mod simulated_main_job;
mod snp_sim;
mod tdx_sim;

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::image::{self, BuildOptions, Variant};
use crate::qemu::{self, RunConfig};
use crate::{install, paths};

/// Debian's OVMF, as one file usable with `-bios` (package `ovmf`).
const OVMF_BIOS: &str = "/usr/share/ovmf/OVMF.fd";

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Figure {
    /// `area.what`.
    pub name: &'static str,
    /// The value.
    pub value: f64,
    /// Its unit (`x` for ratios).
    pub unit: &'static str,
    /// The goal, if there is one (`>= 50`).
    pub goal: Option<&'static str>,
    /// Whether the value meets the goal.
    pub meets_goal: Option<bool>,
    /// How it was measured.
    pub how: String,
}

impl Figure {
    /// The figure as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "name": self.name, "value": self.value, "unit": self.unit,
            "goal": self.goal, "meets_goal": self.meets_goal, "how": self.how,
        })
    }
}

/// The areas `--only` accepts.
pub const AREAS: [&str; 9] =
    ["boot", "image", "broker", "dance", "inference", "batching", "minilm", "snp_sim", "tdx_sim"];

/// Runs the benchmarks of every area, or of `only`.
pub fn run(root: &Path, only: Option<&str>, runs: usize) -> Result<Vec<Figure>> {
    if let Some(area) = only
        && !AREAS.contains(&area)
    {
        bail!("unknown area {area:?}; areas: {}", AREAS.join(", "));
    }
    let wanted = |area: &str| only.is_none_or(|o| o == area);
    let logs = paths::target_dir(root);
    qemu::ensure_installed(&logs)?;
    let built = image::build(Variant::Release, &BuildOptions::for_checkout(root))?;
    let mut figures = Vec::new();
    if wanted("boot") {
        install::ensure_debian_packages(&["ovmf"], "the boot benchmark compares with OVMF", &logs)?;
        figures.extend(boot(&built.path, runs)?);
    }
    if wanted("broker") {
        figures.extend(broker::figures()?);
    }
    if wanted("dance") {
        figures.extend(dance::figures(root, &built.bytes, runs)?);
    }
    if wanted("inference") {
        figures.extend(inference::figures(root, &built.path)?);
    }
    if wanted("batching") {
        figures.extend(batching::figures(root, &built.path)?);
    }
    if wanted("minilm") {
        figures.extend(minilm::figures(root, &built.path)?);
    }
    if wanted("snp_sim") {
        figures.extend(snp_sim::figures(root, &built.bytes, runs)?);
    }
    if wanted("tdx_sim") {
        figures.extend(tdx_sim::figures(root, &built.bytes, runs)?);
    }
    if wanted("image") {
        figures.extend(image_figures(&built.bytes)?);
    }
    Ok(figures)
}

/// The pages an SNP launch of `image` hands the PSP (one vCPU of the default type), by kind.
pub(crate) fn launch_pages(image: &[u8]) -> Result<crate::measure::snp::LaunchPages> {
    let launch = crate::measure::SnpLaunch {
        vcpus: 1,
        vcpu_type: crate::measure::VcpuType::by_name(crate::measure::DEFAULT_VCPU_TYPE)?,
        guest_features: crate::measure::DEFAULT_GUEST_FEATURES,
    };
    let metadata = ovmf::metadata::parse(image, ovmf::layout::GUEST_RAM_SIZE)
        .map_err(|e| anyhow::anyhow!("malformed image metadata: {e}"))?;
    Ok(crate::measure::snp::launch_pages(image, &metadata, &launch))
}

fn image_figures(image: &[u8]) -> Result<Vec<Figure>> {
    let pages = launch_pages(image)?;
    Ok(vec![
        Figure {
            name: "image.size_kib",
            value: image.len() as f64 / 1024.0,
            unit: "KiB",
            goal: None,
            meets_goal: None,
            how: "size of ampoule.bin (a fixed-size -bios image; the kernel's load image is smaller)".into(),
        },
        Figure {
            name: "image.measured_pages",
            value: pages.normal as f64,
            unit: "pages",
            goal: Some("<= 1024"),
            meets_goal: Some(pages.normal <= 1024),
            how: format!(
                "4 KiB pages whose contents an SNP launch hashes (the whole -bios image, NORMAL pages: 4 MiB since the \
                 image holds MiniLM's graph beside the MLP's, 2 MiB before); the launch also \
                 hands the PSP {} ZERO pages (SNP_SEC_MEM), {} SECRETS/CPUID and {} VMSA page(s) with 1 vCPU",
                pages.zero, pages.secrets_and_cpuid, pages.vmsa
            ),
        },
    ])
}

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn minimum(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn boot(image: &Path, runs: usize) -> Result<Vec<Figure>> {
    let mut ampoule_ms = Vec::new();
    let mut ovmf_ms = Vec::new();
    let ovmf_config = RunConfig::new(OVMF_BIOS);
    for _ in 0..runs {
        // Interleaved, so both see the same machine load.
        let report = qemu::run(&RunConfig::new(image))?;
        let (_, at) = report.record("booted").context("the guest printed no booted record")?;
        ampoule_ms.push(at.as_secs_f64() * 1e3);
        ovmf_ms.push(time_to_first_byte(&ovmf_config.qemu_args(), Duration::from_secs(60))?.as_secs_f64() * 1e3);
    }
    let (ampoule, ovmf) = (median(ampoule_ms.clone()), median(ovmf_ms.clone()));
    let ratio = ovmf / ampoule;
    let same = "same QEMU and TCG settings (q35, -cpu max, -m 256M, -bios), runs interleaved";
    let mut figures = vec![
        Figure {
            name: "boot.ovmf_over_ampoule",
            value: round(ratio, 1),
            unit: "x",
            goal: Some(">= 50"),
            meets_goal: Some(ratio >= 50.0),
            how: format!(
                "median of {runs} TCG runs each: OVMF's first serial byte / Ampoule's booted record (ratio of minimums: \
                 {:.1}x), {same}",
                minimum(&ovmf_ms) / minimum(&ampoule_ms)
            ),
        },
        Figure {
            name: "boot.ampoule_booted_ms",
            value: round(ampoule, 1),
            unit: "ms",
            goal: None,
            meets_goal: None,
            how: format!("QEMU spawn -> booted record; median of {runs}, min {:.1} ms", minimum(&ampoule_ms)),
        },
        Figure {
            name: "boot.ovmf_first_output_ms",
            value: round(ovmf, 1),
            unit: "ms",
            goal: None,
            meets_goal: None,
            how: format!(
                "QEMU spawn -> first serial byte of {OVMF_BIOS}; median of {runs}, min {:.1} ms",
                minimum(&ovmf_ms)
            ),
        },
    ];
    figures.push(instructions_to_booted(image)?);
    Ok(figures)
}

/// Guest instructions from the reset vector to the booted record. Debian's QEMU ships no TCG plugins, so this uses
/// `-icount shift=0`: virtual time advances one nanosecond per executed instruction and the guest's TSC reads that
/// clock, so the booted record's cycle counts are instruction counts.
fn instructions_to_booted(image: &Path) -> Result<Figure> {
    let mut config = RunConfig::new(image);
    config.extra_args = vec!["-icount".into(), "shift=0".into()];
    let report = qemu::run(&config)?;
    let (booted, _) = report.record("booted").context("no booted record under icount")?;
    let field = |k| booted.field(k).and_then(|v| v.parse::<u64>().ok()).context("booted record lacks cycle counts");
    let instructions = field("reset_to_main_cycles")? + field("main_to_booted_cycles")?;
    Ok(Figure {
        name: "boot.instructions_to_booted",
        value: instructions as f64,
        unit: "instructions",
        goal: None,
        meets_goal: None,
        how: "QEMU -icount shift=0 (no TCG plugins in Debian's QEMU): guest TSC at booted minus TSC at reset".into(),
    })
}

pub(crate) fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// Spawns QEMU with `args` and returns the time until it writes its first byte to the serial console (stdout);
/// QEMU is killed right after.
fn time_to_first_byte(args: &[String], timeout: Duration) -> Result<Duration> {
    let start = Instant::now();
    let mut child = qemu::qemu_command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting QEMU")?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        let _ = tx.send(stdout.read(&mut byte).ok().filter(|&n| n == 1).map(|_| start.elapsed()));
    });
    let first = rx.recv_timeout(timeout);
    let _ = child.kill();
    let _ = child.wait();
    match first {
        Ok(Some(at)) => Ok(at),
        Ok(None) => bail!("QEMU exited without serial output"),
        Err(_) => bail!("no serial output within {timeout:?}"),
    }
}
