//! The simulated SNP platform against plain mode, in the same run: QEMU spawn -> `booted` and -> `serving` for the
//! main job (broker, key dance, model), runs interleaved; and the exits the platform counts while the guest boots
//! (a boot-only run ends right after the self-checks), by kind.

use std::time::Duration;

use anyhow::{Context, Result};

use super::{Figure, median, round};
use crate::dance::{BrokerOptions, attach, free_port, start_broker};
use crate::hypervisor::{self, SimulatedLaunch};
use crate::qemu::{self, RunConfig, RunReport, Tee};
use crate::simulated_psp::PspService;

/// The exit kinds of the platform's `exits` record, each a figure.
const EXIT_KINDS: [(&str, &str); 9] = [
    ("snp_sim.boot_exits", "total"),
    ("snp_sim.boot_page_state_change_exits", "page_state_changes"),
    ("snp_sim.boot_pvalidate_exits", "pvalidates"),
    ("snp_sim.boot_vc_cpuid", "vc_cpuid"),
    ("snp_sim.boot_vc_ioio", "vc_ioio"),
    ("snp_sim.boot_vc_msr", "vc_msr"),
    ("snp_sim.boot_vc_other", "vc_other"),
    ("snp_sim.boot_ghcb_exits", "ghcb_exits"),
    ("snp_sim.boot_validated_pages", "validated_pages"),
];

fn at_ms(report: &RunReport, msg: &str) -> Result<f64> {
    let (_, at) = report.record(msg).with_context(|| format!("no {msg:?} record: {:?}", report.outcome))?;
    Ok(at.as_secs_f64() * 1e3)
}

/// One main job, plain or on the simulated platform; (ms to booted, ms to serving).
fn main_job(root: &std::path::Path, image: &[u8], simulated: Option<&SimulatedLaunch>) -> Result<(f64, f64)> {
    let dir = crate::paths::target_dir(root).join("bench-broker");
    let mut options = BrokerOptions::for_checkout(root);
    let mut config = RunConfig::new(crate::paths::image_dir(root).join("ampoule.bin"));
    config.timeout = Duration::from_secs(120);
    let mut psp = None;
    if let Some(launch) = simulated {
        hypervisor::simulated_broker(&dir.join("platform"), image, launch, &mut options)?;
        config.tee = launch.tee;
        config.simulated = Some(launch.clone());
        let service = PspService::start(config.timeout)?;
        config.extra_args.extend(service.serial_args());
        psp = Some(service);
    }
    let broker = start_broker(&dir, image, &options)?;
    attach(&mut config, broker.port, free_port()?);
    let (report, _) = crate::serve::run_serving(&config, || ())?;
    broker.stop();
    if let Some(psp) = psp {
        psp.finish()?;
    }
    Ok((at_ms(&report, "booted")?, at_ms(&report, "serving")?))
}

fn figure(name: &'static str, value: f64, unit: &'static str, how: String) -> Figure {
    Figure { name, value, unit, goal: None, meets_goal: None, how }
}

pub(super) fn figures(root: &std::path::Path, image: &[u8], runs: usize) -> Result<Vec<Figure>> {
    let launch = SimulatedLaunch::new(Tee::Snp, hypervisor::build(root, false)?)?;
    let (mut plain, mut simulated) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        plain.push(main_job(root, image, None)?);
        simulated.push(main_job(root, image, Some(&launch))?);
    }
    let booted = |runs: &[(f64, f64)]| median(runs.iter().map(|r| r.0).collect());
    let serving = |runs: &[(f64, f64)]| median(runs.iter().map(|r| r.1).collect());
    let how =
        |what: &str| format!("QEMU spawn -> {what} record of the main job, median of {runs} interleaved TCG runs");
    let mut figures = vec![
        figure("snp_sim.plain_booted_ms", round(booted(&plain), 1), "ms", how("booted (plain)")),
        figure("snp_sim.simulated_booted_ms", round(booted(&simulated), 1), "ms", how("booted (simulated SNP)")),
        figure(
            "snp_sim.simulated_over_plain_booted",
            round(booted(&simulated) / booted(&plain), 2),
            "x",
            "the two medians above".into(),
        ),
        figure("snp_sim.plain_serving_ms", round(serving(&plain), 1), "ms", how("serving (plain)")),
        figure("snp_sim.simulated_serving_ms", round(serving(&simulated), 1), "ms", how("serving (simulated SNP)")),
        figure(
            "snp_sim.simulated_over_plain_serving",
            round(serving(&simulated) / serving(&plain), 2),
            "x",
            "the two medians above".into(),
        ),
    ];
    let boot_only = RunConfig {
        tee: Tee::Snp,
        simulated: Some(launch),
        timeout: Duration::from_secs(120),
        ..RunConfig::new(crate::paths::image_dir(root).join("ampoule.bin"))
    };
    let report = qemu::run(&boot_only)?;
    let (exits, _) = report.record("exits").context("the platform printed no exit counts")?;
    for (name, field) in EXIT_KINDS {
        let value: f64 = exits.field(field).and_then(|v| v.parse().ok()).context("an exit count")?;
        let mut counted = figure(
            name,
            value,
            "exits",
            format!("the platform's `exits` record ({field}) of a boot-only run: reset -> self-checks -> exit"),
        );
        if field == "page_state_changes" {
            counted.goal = Some("< 100");
            counted.meets_goal = Some(value < 100.0);
        }
        if field == "validated_pages" {
            counted.unit = "pages";
            counted.how = "pages validated when the guest exits: the launch's 2,322 and the guest's heap".into();
        }
        figures.push(counted);
    }
    Ok(figures)
}
