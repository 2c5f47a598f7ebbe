//! The simulated SNP platform against plain mode, in the same run: QEMU spawn -> `booted` and -> `serving` for the
//! main job (`simulated_main_job.rs`); and the exits the platform counts while the guest boots (a boot-only run
//! ends right after the self-checks), by kind.

use anyhow::Result;

use super::Figure;
use super::simulated_main_job::{boot_counts, versus_plain};
use crate::hypervisor::{self, SimulatedLaunch};
use crate::qemu::Tee;

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

pub(super) fn figures(root: &std::path::Path, image: &[u8], runs: usize) -> Result<Vec<Figure>> {
    let launch = SimulatedLaunch::new(Tee::Snp, hypervisor::build(root, false)?)?;
    let names = [
        "snp_sim.plain_booted_ms",
        "snp_sim.simulated_booted_ms",
        "snp_sim.simulated_over_plain_booted",
        "snp_sim.plain_serving_ms",
        "snp_sim.simulated_serving_ms",
        "snp_sim.simulated_over_plain_serving",
    ];
    let mut figures = versus_plain(root, image, &launch, runs, names, "simulated SNP")?;
    for mut counted in boot_counts(root, launch, &EXIT_KINDS)? {
        if counted.name == "snp_sim.boot_page_state_change_exits" {
            counted.goal = Some("< 100");
            counted.meets_goal = Some(counted.value < 100.0);
        }
        if counted.name == "snp_sim.boot_validated_pages" {
            counted.unit = "pages";
            counted.how = "pages validated when the guest exits: the launch's 2,322 and the guest's heap".into();
        }
        figures.push(counted);
    }
    Ok(figures)
}
