//! The simulated TDX platform against plain mode, in the same run: QEMU spawn -> `booted` and -> `serving` for the
//! main job, the TD attesting with a quote the broker verifies through dcap-qvl (`simulated_main_job.rs`); and the
//! TD's #VE and TDCALL counts at boot, by kind (accepts of 2 MiB and of 4 KiB pages apart).

use anyhow::Result;

use super::Figure;
use super::simulated_main_job::{boot_counts, versus_plain};
use crate::hypervisor::{self, SimulatedLaunch};
use crate::qemu::Tee;

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

pub(super) fn figures(root: &std::path::Path, image: &[u8], runs: usize) -> Result<Vec<Figure>> {
    let launch = SimulatedLaunch::new(Tee::Tdx, hypervisor::build(root, false)?)?;
    let names = [
        "tdx_sim.plain_booted_ms",
        "tdx_sim.simulated_booted_ms",
        "tdx_sim.simulated_over_plain_booted",
        "tdx_sim.plain_serving_ms",
        "tdx_sim.simulated_serving_ms",
        "tdx_sim.simulated_over_plain_serving",
    ];
    let mut figures = versus_plain(root, image, &launch, runs, names, "simulated TD, two vCPUs")?;
    figures.extend(boot_counts(root, launch, &COUNTS)?);
    Ok(figures)
}
