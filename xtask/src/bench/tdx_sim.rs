//! The simulated TDX platform against plain mode, in the same run: QEMU spawn -> `booted` for a boot-only run (a
//! simulated TD cannot attest yet, so there is no `serving` figure), runs interleaved; and the TD's #VE and TDCALL
//! counts at boot, by kind (accepts of 2 MiB and of 4 KiB pages apart).

use std::time::Duration;

use anyhow::{Context, Result};

use super::{Figure, median, round};
use crate::hypervisor::{self, SimulatedLaunch};
use crate::qemu::{self, RunConfig, RunReport, Tee};

/// The counts of the platform's `exits` record for a TD, each a figure.
const COUNTS: [(&str, &str); 9] = [
    ("tdx_sim.boot_exits", "total"),
    ("tdx_sim.boot_ve_io", "ve_io"),
    ("tdx_sim.boot_ve_cpuid", "ve_cpuid"),
    ("tdx_sim.boot_ve_other", "ve_other"),
    ("tdx_sim.boot_cpuid_virtualized", "cpuid_virtualized"),
    ("tdx_sim.boot_tdcalls", "tdcalls"),
    ("tdx_sim.boot_accepts_2m", "accepts_2m"),
    ("tdx_sim.boot_accepts_4k", "accepts_4k"),
    ("tdx_sim.boot_vmcalls", "vmcalls"),
];

fn boot(root: &std::path::Path, simulated: Option<&SimulatedLaunch>) -> Result<RunReport> {
    let mut config = RunConfig::new(crate::paths::image_dir(root).join("ampoule.bin"));
    config.timeout = Duration::from_secs(120);
    if let Some(launch) = simulated {
        config.tee = Tee::Tdx;
        config.simulated = Some(launch.clone());
    }
    let report = qemu::run(&config)?;
    anyhow::ensure!(report.outcome.is_success(), "a boot failed: {}", report.outcome.name());
    Ok(report)
}

fn booted_ms(report: &RunReport) -> Result<f64> {
    let (_, at) = report.record("booted").context("no booted record")?;
    Ok(at.as_secs_f64() * 1e3)
}

pub(super) fn figures(root: &std::path::Path, runs: usize) -> Result<Vec<Figure>> {
    let launch = SimulatedLaunch::new(Tee::Tdx, hypervisor::build(root, false)?)?;
    let (mut plain, mut simulated, mut last) = (Vec::new(), Vec::new(), None);
    for _ in 0..runs {
        plain.push(booted_ms(&boot(root, None)?)?);
        let report = boot(root, Some(&launch))?;
        simulated.push(booted_ms(&report)?);
        last = Some(report);
    }
    let (plain, simulated) = (median(plain), median(simulated));
    let how = format!("QEMU spawn -> booted record of a boot-only run, median of {runs} interleaved TCG runs");
    let figure = |name, value, unit, how: String| Figure { name, value, unit, goal: None, meets_goal: None, how };
    let mut figures = vec![
        figure("tdx_sim.plain_booted_ms", round(plain, 1), "ms", format!("{how} (plain)")),
        figure("tdx_sim.simulated_booted_ms", round(simulated, 1), "ms", format!("{how} (simulated TD, two vCPUs)")),
        figure("tdx_sim.simulated_over_plain_booted", round(simulated / plain, 2), "x", "the two medians above".into()),
    ];
    let report = last.context("no runs")?;
    let (exits, _) = report.record("exits").context("the platform printed no counts")?;
    for (name, field) in COUNTS {
        let value: f64 = exits.field(field).and_then(|v| v.parse().ok()).context("a count")?;
        let how =
            format!("the platform's `exits` record ({field}) of a boot-only TD run: reset -> self-checks -> exit");
        figures.push(figure(name, value, "exits", how));
    }
    Ok(figures)
}
