//! `cargo xtask run-qemu`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use xtask::broker_state::{BrokerState, StoreKind};
use xtask::dance::{BrokerOptions, SnpBroker, TdxBroker};
use xtask::image::{self, BuildOptions, Variant};
use xtask::paths;
use xtask::qemu::{self, Accel, RunConfig, Tee};

use simulated_platform::hostile::HostileKind;

use super::build::write_igvm;
use super::step;

/// Build the image (unless --image is given), boot it under QEMU and stream its records.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Boot this image instead of building one.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// tcg (software; the default here) or kvm (real hosts).
    #[arg(long, value_enum, default_value = "tcg")]
    pub accel: Accel,
    /// The QEMU CPU model [default: max; EPYC-v4 under SNP, as `measure` assumes; host under TDX].
    #[arg(long)]
    pub cpu: Option<String>,
    /// Guest RAM in MiB (-m): the heap is what the memory map then declares, up to its bound (64..=4096).
    #[arg(long, default_value_t = (ovmf::layout::GUEST_RAM_SIZE >> 20) as u32, value_parser = clap::value_parser!(u32).range(64..=4096))]
    pub memory: u32,
    /// Seconds before the run is stopped as a timeout (1..=86400).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// Launch as plain, SEV-SNP or TDX (SNP and TDX need a host with KVM support for them).
    #[arg(long, value_enum, default_value = "plain")]
    pub tee: Tee,
    /// vCPUs (-smp): the SNP launch digest depends on it (1..=4096).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(qemu::MAX_VCPUS)))]
    pub vcpus: u32,
    /// Print the QEMU command line and exit (for SNP/TDX: the command for a real host).
    #[arg(long)]
    pub print_cmdline: bool,
    /// Launch the IGVM rendering (QEMU >= 10.1; plain or SNP) instead of -bios.
    #[arg(long)]
    pub igvm: bool,
    /// Boot the fault-injection test image and make it raise this fault
    /// (ud, page-fault, stack-overflow, broken-idt, hang).
    #[arg(long)]
    pub inject: Option<String>,
    /// Boot only: no broker, no network, no key dance.
    #[arg(long)]
    pub no_broker: bool,
    /// The model to serve (its manifest: inference/models/NAME.toml; the image must have been built with it): its
    /// blob (target/ampoule/models/NAME.sealed, sealed when missing) goes to the guest through fw_cfg, and its digest
    /// binds the launch (HOST_DATA, MRCONFIGID).
    #[arg(long, default_value = xtask::manifest::DEFAULT_MODEL)]
    pub model: String,
    /// Keep the guest serving (on the printed loopback port) until Ctrl-C, instead of running the reference
    /// inputs through it and shutting it down.
    #[arg(long)]
    pub serve: bool,
    /// With `--tee snp`: the host's VCEK (DER or PEM, from AMD's key distribution service for this chip and its
    /// TCB), which the broker verifies the guest's reports with. Required for the key dance under SNP.
    #[arg(long)]
    pub vcek: Option<PathBuf>,
    /// With `--tee snp`: the host's processor family (milan, genoa, turin), which picks AMD's root certificates.
    #[arg(long, default_value = "milan")]
    pub product: String,
    /// With `--tee snp`: the lowest REPORTED_TCB the broker accepts, as boot loader, TEE, SNP and microcode SVNs.
    #[arg(long, value_delimiter = ',', num_args = 4, default_values_t = [0u8, 0, 0, 0])]
    pub min_tcb: Vec<u8>,
    /// With `--tee tdx`: Intel's collateral for this host (JSON: TCB info, QE identity, CRLs, as dcap-qvl reads
    /// them), which the broker verifies the TD's quotes with. Required for the key dance under TDX.
    #[arg(long)]
    pub collateral: Option<PathBuf>,
    /// With `--tee tdx`: the TD's XFAM (hex), which the broker requires exactly; QEMU derives it from `-cpu`.
    #[arg(long, value_parser = parse_hex_u64)]
    pub xfam: Option<u64>,
    /// With `--tee tdx`: the vsock port of the host's quote-generation service (QGS).
    #[arg(long, default_value_t = qemu::DEFAULT_QGS_PORT)]
    pub qgs_port: u32,
    /// With `--tee snp` or `--tee tdx`: launch on the simulated platform (a nested SVM hypervisor of this
    /// project's under QEMU's TCG, on any x86-64 Linux machine) instead of a real SNP or TDX host. Under SNP its
    /// PSP signs reports with a VCEK under a simulated ARK -> ASK chain, which the broker is given instead of
    /// AMD's; under TDX its quoting enclave signs quotes under a simulated Intel PKI, whose root CA and collateral
    /// the broker is given instead of Intel's.
    #[arg(long)]
    pub simulated: bool,
    /// With `--simulated`: the simulated host misbehaves once, deliberately. SNP: cpuid-page, ghcb-io-reply,
    /// replayed-response, corrupted-response, heap-page-shared, heap-page-remapped, prevalidated,
    /// refused-page-state-change. TDX: td-hob-ram-in-image, td-hob-heap-accepted, td-ept-violation,
    /// td-map-gpa-fails, td-map-gpa-backwards, td-already-accepted, td-quote-overflows, td-quote-for-another-td,
    /// td-quote-never-completes, td-cpuid-ve. The guest must end itself or be refused, and get no key.
    #[arg(long, value_parser = parse_hostile)]
    pub hostile: Option<HostileKind>,
    /// With `--tee tdx --simulated`: the TD's guest physical address width, 48 or 52 (its shared bit is 47 or 51;
    /// 52 runs QEMU's CPU with 52 physical address bits and the hypervisor's nested tables with 5 levels).
    #[arg(long, default_value_t = 48, value_parser = parse_gpaw)]
    pub gpaw: u8,
    /// Where the broker's key registry is: sqlite (target/ampoule/broker/registry.db) or postgres (a private
    /// cluster in target/ampoule/broker/postgres/, started for the run and stopped after it).
    #[arg(long, value_enum, default_value = "sqlite")]
    pub store: StoreKind,
}

fn parse_hostile(name: &str) -> Result<HostileKind, String> {
    HostileKind::from_name(name).ok_or_else(|| {
        let kinds: Vec<&str> = HostileKind::ALL.iter().map(|k| k.name()).collect();
        format!("not a misbehaviour; one of: {}", kinds.join(", "))
    })
}

fn parse_gpaw(text: &str) -> Result<u8, String> {
    match text {
        "48" => Ok(48),
        "52" => Ok(52),
        _ => Err("a TD's GPAW is 48 or 52".into()),
    }
}

fn parse_hex_u64(text: &str) -> Result<u64, String> {
    u64::from_str_radix(text.trim_start_matches("0x"), 16).map_err(|e| format!("not a hex number: {e}"))
}

/// Runs the command.
pub fn run(root: &std::path::Path, args: RunArgs) -> Result<ExitCode> {
    let RunArgs {
        image,
        accel,
        cpu,
        memory,
        timeout,
        tee,
        vcpus,
        print_cmdline,
        igvm,
        inject,
        no_broker,
        model,
        serve,
        vcek,
        product,
        min_tcb,
        collateral,
        xfam,
        qgs_port,
        simulated,
        hostile,
        gpaw,
        store,
    } = args;
    let state = BrokerState::for_checkout(root, store);
    let with_broker = !no_broker && inject.is_none() && !print_cmdline;
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
        memory: u64::from(memory) << 20,
        echo: true,
        qgs_port,
        ..RunConfig::new("")
    };
    let variant = if inject.is_some() { Variant::FaultInjection } else { Variant::Release };
    config.fw_cfg.extend(inject.map(|kind| (FAULT_INJECTION_FW_CFG.to_string(), kind)));
    config.igvm = igvm;
    if igvm {
        anyhow::ensure!(tee != Tee::Tdx, "QEMU does not load TDX IGVM files; launch a TD from -bios");
        anyhow::ensure!(vcpus == 1, "the IGVM rendering describes one vCPU");
    }
    if simulated {
        anyhow::ensure!(tee != Tee::Plain, "--simulated simulates an SNP or TDX host: pass --tee snp or --tee tdx");
        anyhow::ensure!(!igvm, "the simulated platform launches from -bios (no --igvm)");
        anyhow::ensure!(
            tee == Tee::Tdx || vcpus == 1,
            "the simulated SNP platform launches one vCPU (a simulated TD always has two)"
        );
        anyhow::ensure!(
            hostile.is_none_or(|kind| kind.is_tdx() == (tee == Tee::Tdx)),
            "that --hostile kind is the other platform's (td-* kinds are a TDX host's)"
        );
    }
    anyhow::ensure!(
        !simulated || u64::from(memory) << 20 == ovmf::layout::GUEST_RAM_SIZE,
        "the simulated platform gives its guest {} MiB (--memory is for QEMU's own guests)",
        ovmf::layout::GUEST_RAM_SIZE >> 20
    );
    anyhow::ensure!(hostile.is_none() || simulated, "--hostile makes the simulated host misbehave: pass --simulated");
    anyhow::ensure!(
        gpaw == 48 || (simulated && tee == Tee::Tdx),
        "--gpaw 52 is for a simulated TD: pass --tee tdx --simulated"
    );
    if !print_cmdline && !simulated {
        qemu::check_tee_host(tee, igvm)?;
        step("qemu", || qemu::ensure_installed(&paths::target_dir(root)))?;
    }
    config.image = resolve_image(root, image, variant, &config)?;
    let model = xtask::manifest::named(root, &model)?;
    let sealed_model = if with_broker || print_cmdline {
        let blob = step("seal", || xtask::sealing::ensure_sealed(root, &model, &state))?;
        config.model = Some(xtask::model_delivery::ModelDelivery::of(&blob)?);
        Some(blob)
    } else {
        None
    };
    if simulated {
        step("qemu", || qemu::ensure_installed(&paths::target_dir(root)))?;
        let hypervisor = step("hypervisor", || xtask::hypervisor::build(root, false))?;
        // A TD's vCPU model does not enter MRTD; the SNP launch's does.
        let vcpu_type = if tee == Tee::Snp { config.cpu.as_str() } else { xtask::measure::DEFAULT_VCPU_TYPE };
        config.simulated = Some(xtask::hypervisor::SimulatedLaunch {
            vcpu_type: xtask::measure::VcpuType::by_name(vcpu_type)?,
            hostile,
            gpaw,
            ..xtask::hypervisor::SimulatedLaunch::new(tee, hypervisor)?
        });
    }
    if print_cmdline {
        println!("{} {}", qemu::QEMU, shell_words(&config.qemu_args()));
        return Ok(ExitCode::SUCCESS);
    }
    if let (Some(launch), false) = (&config.simulated, with_broker) {
        return run_simulated(&config, launch);
    }
    if !with_broker {
        return run_qemu(config);
    }
    let bytes = std::fs::read(&config.image).with_context(|| format!("reading {}", config.image.display()))?;
    let broker_dir = paths::target_dir(root).join("broker");
    let mut options = BrokerOptions { state, ..BrokerOptions::for_checkout(root) };
    options.sealed_model = Some(sealed_model.context("a run with a broker has a sealed model")?);
    let mut psp = None;
    let mut expected_digest = None;
    if let Some(launch) = &config.simulated {
        let digest = xtask::hypervisor::simulated_broker(&broker_dir.join("platform"), &bytes, launch, &mut options)?;
        match tee {
            Tee::Tdx => {
                eprintln!("xtask: measure: tdx mrtd {digest} (the simulated platform's root CA and collateral)")
            }
            _ => eprintln!("xtask: measure: snp launch digest {digest} (vcpus=1 vcpu-type={})", launch.vcpu_type.name),
        }
        let service = xtask::simulated_psp::PspService::start(config.timeout)?;
        config.extra_args.extend(service.serial_args());
        psp = Some(service);
        expected_digest = Some(digest);
    } else if tee == Tee::Snp {
        let vcek = vcek.context(
            "the broker needs this host's VCEK to verify the guest's reports: pass --vcek FILE (AMD's key \
             distribution service serves it for the chip id and TCB that `snphost show` or the sev crate report), \
             or --no-broker to boot only",
        )?;
        let vcpu_type = xtask::measure::VcpuType::by_name(&config.cpu)?;
        let launch =
            xtask::measure::SnpLaunch { vcpus, vcpu_type, guest_features: xtask::measure::DEFAULT_GUEST_FEATURES };
        let launch_digest = xtask::measure::measure(&bytes, &launch)?.snp;
        let min_tcb: [u8; 4] = min_tcb.try_into().map_err(|_| anyhow::anyhow!("--min-tcb takes four SVNs"))?;
        if min_tcb == [0; 4] {
            eprintln!(
                "xtask: WARNING: the broker accepts any REPORTED_TCB (--min-tcb 0,0,0,0); name your fleet's minimum"
            );
        }
        options.snp = Some(SnpBroker { product, vcek, launch_digest, min_tcb, ca: None });
    }
    if tee == Tee::Tdx && config.simulated.is_none() {
        let collateral = collateral.context(
            "the broker needs Intel's collateral for this host to verify the TD's quotes: pass --collateral FILE \
             (TCB info, QE identity and CRLs for the host's FMSPC, from Intel's PCS or the host's PCCS), or \
             --no-broker to boot only",
        )?;
        let xfam = xfam.context("the broker requires the TD's exact XFAM: pass --xfam HEX")?;
        // MRTD does not depend on the SNP launch parameters; `measure` computes both.
        let launch = xtask::measure::SnpLaunch {
            vcpus,
            vcpu_type: xtask::measure::VcpuType::by_name(xtask::measure::DEFAULT_VCPU_TYPE)?,
            guest_features: xtask::measure::DEFAULT_GUEST_FEATURES,
        };
        let mrtd = xtask::measure::measure(&bytes, &launch)?.mrtd;
        options.tdx = Some(TdxBroker { collateral, xfam, mrtd, root_ca: None });
    }
    let broker = step("broker", || xtask::dance::start_broker(&broker_dir, &bytes, &options))?;
    if tee == Tee::Plain {
        eprintln!(
            "xtask: WARNING: the broker trusts SIMULATED evidence (allow_simulated = true): a plain-mode guest \
             proves nothing about its platform; config {}",
            broker_dir.join("broker.toml").display()
        );
    }
    let service_port = xtask::dance::free_port()?;
    xtask::dance::attach(&mut config, broker.port, service_port, broker.model.as_ref());
    let result = if serve {
        eprintln!(
            "xtask: the guest will serve on 127.0.0.1:{service_port} until Ctrl-C; try: cargo run -q -p client -- \
             --guest 127.0.0.1:{service_port} --policy {} health",
            broker.policy.display()
        );
        config.timeout = Duration::from_secs(u64::from(u32::MAX));
        run_qemu(config)
    } else {
        let policy = broker.policy.clone();
        let expected = expected_digest.as_deref();
        let run =
            super::run_client::ClientRun { config, service_port, policy_file: &policy, expected_digest: expected };
        super::run_client::run_with_client(root, &model, run)
    };
    if let Some(psp) = psp {
        let answered = psp.finish()?;
        match tee {
            Tee::Tdx => eprintln!("xtask: simulated quote service: {answered} quotes made"),
            _ => eprintln!("xtask: simulated PSP: {answered} guest messages answered"),
        }
    }
    let stats = broker.broker.stats();
    eprintln!(
        "xtask: broker decisions {stats:?}; its log {}, audit trail in {} (`ampoule-broker --config {} keys \
         export-audit`)",
        broker.log.display(),
        broker.store().sqlite.as_ref().map_or("the PostgreSQL cluster".into(), |p| p.display().to_string()),
        broker_dir.join("broker.toml").display()
    );
    broker.stop();
    result
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

/// A boot on the simulated platform: the digest `measure` computes is printed first; the hypervisor prints the
/// one it computed while launching; the run fails if they differ.
fn run_simulated(config: &RunConfig, launch: &xtask::hypervisor::SimulatedLaunch) -> Result<ExitCode> {
    let bytes = std::fs::read(&config.image).with_context(|| format!("reading {}", config.image.display()))?;
    let expected = xtask::hypervisor::expected_digest(&bytes, launch)?;
    match launch.tee {
        Tee::Tdx => eprintln!("xtask: measure: tdx mrtd {expected}"),
        _ => eprintln!("xtask: measure: snp launch digest {expected} (vcpus=1 vcpu-type={})", launch.vcpu_type.name),
    }
    let report = qemu::run(config)?;
    let checked = xtask::hypervisor::check_launch_digest(&report, &expected);
    let exit = report_run(&report);
    checked?;
    exit
}

fn run_qemu(config: RunConfig) -> Result<ExitCode> {
    let report = qemu::run(&config)?;
    report_run(&report)
}

pub(super) fn report_run(report: &qemu::RunReport) -> Result<ExitCode> {
    let steps = ["booted", "measured", "connected", "attested", "key released", "model unsealed", "serving", "done"];
    let timings: Vec<String> = steps
        .iter()
        .filter_map(|msg| report.record(msg).map(|(_, at)| format!("{msg}={:.0}ms", at.as_secs_f64() * 1e3)))
        .collect();
    if !timings.is_empty() {
        eprintln!("xtask: steps (since QEMU started): {}", timings.join(" "));
    }
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

/// Arguments joined for a shell: each quoted if it holds anything but safe characters.
fn shell_words(args: &[String]) -> String {
    let safe = |a: &str| !a.is_empty() && a.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_=,./:+@".contains(&b));
    args.iter()
        .map(|a| if safe(a) { a.clone() } else { format!("'{}'", a.replace('\'', "'\\''")) })
        .collect::<Vec<_>>()
        .join(" ")
}
