//! The main job (broker, key dance, model, serving) on the simulated platform against plain mode, in the same run:
//! QEMU spawn -> `booted` and -> `serving`, runs interleaved, for `snp_sim` and `tdx_sim`.

use std::time::Duration;

use anyhow::{Context, Result};

use super::{Figure, median, round};
use crate::dance::{BrokerOptions, attach, free_port, start_broker};
use crate::hypervisor::{self, SimulatedLaunch};
use crate::qemu::{self, RunConfig, RunReport};
use crate::simulated_psp::PspService;

/// The names of the six figures: booted plain, booted simulated, their ratio; the same for serving.
pub(super) type FigureNames = [&'static str; 6];

fn figure(name: &'static str, value: f64, unit: &'static str, how: String) -> Figure {
    Figure { name, value, unit, goal: None, meets_goal: None, how }
}

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
    let mut service = None;
    if let Some(launch) = simulated {
        hypervisor::simulated_broker(&dir.join("platform"), image, launch, &mut options)?;
        config.tee = launch.tee;
        config.simulated = Some(launch.clone());
        let started = PspService::start(config.timeout)?;
        config.extra_args.extend(started.serial_args());
        service = Some(started);
    }
    let broker = start_broker(&dir, image, &options)?;
    attach(&mut config, broker.port, free_port()?, broker.model.as_ref());
    let (report, _) = crate::serve::run_serving(&config, || ())?;
    broker.stop();
    if let Some(service) = service {
        service.finish()?;
    }
    Ok((at_ms(&report, "booted")?, at_ms(&report, "serving")?))
}

/// `runs` main jobs plain and on `launch`, interleaved; the medians and their ratios as the figures `names`.
pub(super) fn versus_plain(
    root: &std::path::Path,
    image: &[u8],
    launch: &SimulatedLaunch,
    runs: usize,
    names: FigureNames,
    label: &str,
) -> Result<Vec<Figure>> {
    let (mut plain, mut simulated) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        plain.push(main_job(root, image, None)?);
        simulated.push(main_job(root, image, Some(launch))?);
    }
    let how =
        |what: &str| format!("QEMU spawn -> {what} record of the main job, median of {runs} interleaved TCG runs");
    let mut figures = Vec::new();
    for (step, at, names) in [("booted", 0, &names[..3]), ("serving", 1, &names[3..])] {
        let plain = median(plain.iter().map(|r: &(f64, f64)| if at == 0 { r.0 } else { r.1 }).collect());
        let simulated = median(simulated.iter().map(|r: &(f64, f64)| if at == 0 { r.0 } else { r.1 }).collect());
        figures.push(figure(names[0], round(plain, 1), "ms", how(&format!("{step} (plain)"))));
        figures.push(figure(names[1], round(simulated, 1), "ms", how(&format!("{step} ({label})"))));
        figures.push(figure(names[2], round(simulated / plain, 2), "x", "the two medians above".into()));
    }
    Ok(figures)
}

/// A boot-only run of `launch` (reset -> self-checks -> exit); each of `counts` (figure name, field of the
/// platform's `exits` record) as a figure.
pub(super) fn boot_counts(
    root: &std::path::Path,
    launch: SimulatedLaunch,
    counts: &[(&'static str, &'static str)],
) -> Result<Vec<Figure>> {
    let tee = launch.tee;
    let platform = if tee == crate::qemu::Tee::Tdx { "TD" } else { "SNP guest" };
    let boot_only = RunConfig {
        tee,
        simulated: Some(launch),
        timeout: Duration::from_secs(120),
        ..RunConfig::new(crate::paths::image_dir(root).join("ampoule.bin"))
    };
    let report = qemu::run(&boot_only)?;
    anyhow::ensure!(report.outcome.is_success(), "the boot-only run failed: {}", report.outcome.name());
    let (exits, _) = report.record("exits").context("the platform printed no exit counts")?;
    let mut figures = Vec::new();
    for &(name, field) in counts {
        let value: f64 = exits.field(field).and_then(|v| v.parse().ok()).context("an exit count")?;
        let how = format!(
            "the platform's `exits` record ({field}) of a boot-only {platform} run: reset -> self-checks -> exit"
        );
        figures.push(figure(name, value, "exits", how));
    }
    Ok(figures)
}
