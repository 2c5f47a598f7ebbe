//! The simulated SEV-SNP platform (DESIGN.md §10): building the hypervisor image (`hypervisor/`, its own
//! workspace) and the QEMU arguments that run it with the guest image as its nested guest.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

use simulated_platform::hostile::HostileKind;

use crate::dance::{BrokerOptions, SnpBroker, TdxBroker};
use crate::measure::{SnpLaunch, VcpuType};
use crate::paths;
use crate::qemu::RunReport;

/// QEMU's CPU for the simulated platform: TCG's SVM with nested paging and LA57, and 48 physical address bits so
/// that the platform's C-bit (47) or a GPAW-48 TD's shared bit is a legal page-table bit.
pub const SIMULATED_CPU: &str = "max,phys-bits=48";
/// The same CPU with 52 physical address bits, for a TD whose GPAW is 52 (its shared bit is 51).
pub const SIMULATED_CPU_GPAW_52: &str = "max,phys-bits=52";
/// A TD on the simulated platform has two vCPUs, so the stub's parking path runs.
pub const TD_VCPUS: u32 = 2;
/// QEMU's RAM for the simulated platform: the guest's RAM identity-backed below the hypervisor (at 512 MiB).
pub const SIMULATED_MEMORY: u64 = 1 << 30;

/// Builds the hypervisor and returns the path of its flat multiboot binary.
pub fn build(root: &Path, verbose: bool) -> Result<PathBuf> {
    let target_dir = paths::target_dir(root).join("hypervisor");
    let mut cargo = paths::cargo(&root.join("hypervisor"));
    cargo
        .args(["build", "--release", "--locked", "--target-dir"])
        .arg(&target_dir)
        // The hypervisor's flags come from hypervisor/.cargo/config.toml alone.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR");
    if !verbose {
        cargo.arg("--quiet");
    }
    let status = cargo.status().context("running cargo for the hypervisor")?;
    ensure!(status.success(), "building the hypervisor failed ({status})");
    Ok(target_dir.join(paths::GUEST_TARGET).join("release/ampoule-hypervisor"))
}

/// What the simulated launch is configured with: what run-qemu would give QEMU + KVM for `--tee snp` or
/// `--tee tdx`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimulatedLaunch {
    /// The hypervisor binary.
    pub hypervisor: PathBuf,
    /// The platform: SEV-SNP or TDX.
    pub tee: crate::qemu::Tee,
    /// The vCPU model (its signature enters the VMSA and the CPUID page).
    pub vcpu_type: VcpuType,
    /// SEV_FEATURES.
    pub guest_features: u64,
    /// The guest policy.
    pub policy: u64,
    /// The host's one misbehaviour of the run, if any.
    pub hostile: Option<HostileKind>,
    /// The host backs the guest's 2 MiB page-state changes with small RMP entries (legitimate: the guest must
    /// then validate page by page).
    pub small_rmp_pages: bool,
    /// A TD's guest physical address width: 48 (QEMU's default) or 52. Its shared bit is GPA[GPAW - 1].
    pub gpaw: u8,
}

impl SimulatedLaunch {
    /// The launch `run-qemu --tee snp|tdx` would perform on a real host (`measure`'s default vCPU type and guest
    /// features, run-qemu's policy), on the simulated platform with `hypervisor`, an honest host.
    pub fn new(tee: crate::qemu::Tee, hypervisor: PathBuf) -> Result<SimulatedLaunch> {
        Ok(SimulatedLaunch {
            tee,
            hypervisor,
            vcpu_type: VcpuType::by_name(crate::measure::DEFAULT_VCPU_TYPE)?,
            guest_features: crate::measure::DEFAULT_GUEST_FEATURES,
            policy: crate::qemu::SNP_POLICY,
            hostile: None,
            small_rmp_pages: false,
            gpaw: 48,
        })
    }

    /// The multiboot command line the hypervisor parses (`hypervisor/src/config.rs`).
    pub fn command_line(&self) -> String {
        if self.tee == crate::qemu::Tee::Tdx {
            let hostile = self.hostile.map(|kind| format!(" hostile={}", kind.name())).unwrap_or_default();
            return format!("tee=tdx vcpus={TD_VCPUS} gpaw={}{hostile}", self.gpaw);
        }
        let mut line = format!(
            "signature={:#x} guest_features={:#x} policy={:#x}",
            self.vcpu_type.signature(),
            self.guest_features,
            self.policy
        );
        if self.small_rmp_pages {
            line.push_str(" small_rmp_pages=1");
        }
        if let Some(kind) = self.hostile {
            line.push_str(&format!(" hostile={}", kind.name()));
        }
        line
    }

    /// QEMU's `-cpu` for this launch.
    pub fn cpu(&self) -> String {
        let cpu =
            if self.tee == crate::qemu::Tee::Tdx && self.gpaw == 52 { SIMULATED_CPU_GPAW_52 } else { SIMULATED_CPU };
        cpu.into()
    }

    /// QEMU's arguments that boot the hypervisor with `image` as its guest (instead of `-bios image`), and
    /// `host_data` (the `host_data=HEX` word of a launch bound to a sealed model) on its command line.
    pub fn boot_args(&self, image: &Path, host_data: Option<&str>) -> Vec<String> {
        let mut line = self.command_line();
        if let Some(word) = host_data {
            line = format!("{line} {word}");
        }
        vec![
            "-kernel".into(),
            self.hypervisor.display().to_string(),
            "-initrd".into(),
            image.display().to_string(),
            "-append".into(),
            line,
        ]
    }
}

/// The launch measurement `measure` computes for the simulated launch of `image`, in hex: the SNP launch digest
/// (one vCPU) or MRTD.
pub fn expected_digest(image: &[u8], launch: &SimulatedLaunch) -> Result<String> {
    let snp = SnpLaunch { vcpus: 1, vcpu_type: launch.vcpu_type, guest_features: launch.guest_features };
    let measured = crate::measure::measure(image, &snp)?;
    Ok(crate::measure::hex(if launch.tee == crate::qemu::Tee::Tdx { &measured.mrtd } else { &measured.snp }))
}

/// The name of the measurement in the hypervisor's `launched` record and in messages.
fn measurement_name(report: &RunReport) -> (&'static str, &'static str) {
    let tdx = report.record("launched").and_then(|(r, _)| r.field("tee")) == Some("tdx");
    if tdx { ("mrtd", "tdx mrtd") } else { ("measurement", "snp launch digest") }
}

/// Checks the hypervisor's `launched` record: its measurement must be `expected` (measure's). Prints both.
pub fn check_launch_digest(report: &RunReport, expected: &str) -> Result<()> {
    let (field, name) = measurement_name(report);
    let (record, _) = report.record("launched").context("the simulated platform never launched the guest")?;
    let simulated = record.field(field).context("the launched record has no measurement")?;
    eprintln!("xtask: simulated platform: {name} {simulated}");
    ensure!(
        simulated == expected,
        "the simulated platform's {name} {simulated} differs from measure's {expected}: the firmware's launch and \
         the measurement disagree"
    );
    Ok(())
}

/// Tells the broker of `options` what it needs for a guest on the simulated platform, and returns the measurement
/// `measure` computes (hex), which the broker allowlists. SNP: the platform's VCEK chain (written into `dir`), the
/// launch digest and the TCB the platform reports as the minimum. TDX: the simulated Intel root CA and collateral
/// (written into `dir`, dated around now: the broker judges them at its clock), the TD's XFAM and MRTD.
pub fn simulated_broker(
    dir: &Path,
    image: &[u8],
    launch: &SimulatedLaunch,
    options: &mut BrokerOptions,
) -> Result<String> {
    let digest = expected_digest(image, launch)?;
    let measurement: [u8; 48] =
        hex::decode(&digest)?.try_into().map_err(|_| anyhow::anyhow!("a 48-byte measurement"))?;
    if launch.tee == crate::qemu::Tee::Tdx {
        // Dated by the clock the broker judges collateral by.
        let now = broker::system_seconds()();
        let files = crate::simulated_psp::write_tdx_collateral(dir, now)?;
        options.tdx = Some(TdxBroker {
            collateral: files.collateral,
            xfam: simulated_platform::tdx::TD_XFAM,
            mrtd: measurement,
            root_ca: Some(files.root_ca),
        });
    } else {
        let chain = crate::simulated_psp::write_chain(dir)?;
        options.snp = Some(SnpBroker {
            product: "milan".into(),
            vcek: chain.vcek,
            launch_digest: measurement,
            min_tcb: crate::simulated_psp::TCB_SVNS,
            ca: Some((chain.ark, chain.ask)),
        });
    }
    Ok(digest)
}
