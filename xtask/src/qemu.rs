//! Running an image under QEMU: the command line, a bounded run that streams the guest's serial records, and the
//! mapping of how it ended to a named [`Outcome`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ovmf::exit::{DEBUG_EXIT_PORT, ExitCode};
use ovmf::layout::GUEST_RAM_SIZE;
use protocol::console::Record;

use crate::install;

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-x86_64";

/// The most vCPUs a run or a measurement may name: QEMU 10's q35 machine allows 4096 (7.2's, 288; either QEMU says
/// so itself beyond its own limit), and the SNP launch measures one VMSA page per vCPU.
pub const MAX_VCPUS: u32 = 4096;

/// A QEMU command that dies with this process: the kernel kills QEMU (SIGKILL) when the thread that spawned it
/// ends (`PR_SET_PDEATHSIG`), so a supervisor's SIGINT or SIGTERM to xtask alone, or xtask's own crash, never
/// leaves QEMU running. Callers wait for QEMU on the thread that spawned it, which therefore outlives it.
pub fn qemu_command() -> Command {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    let mut command = Command::new(QEMU);
    // SAFETY: the closure runs in the child between fork and exec; `die_with_parent` only calls prctl and getppid,
    // which are async-signal-safe, and allocates nothing.
    unsafe { command.pre_exec(move || die_with_parent(parent)) };
    command
}

/// In a forked child: asks for SIGKILL when the parent's spawning thread ends, and fails if `parent` is already gone
/// (then no signal would ever come).
fn die_with_parent(parent: u32) -> std::io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG with a valid signal number changes only this process's own attribute.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: getppid has no preconditions and cannot fail.
    if unsafe { libc::getppid() } as u32 != parent {
        return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
    }
    Ok(())
}

/// Installs QEMU from Debian's packages if it is missing.
pub fn ensure_installed(log_dir: &Path) -> Result<()> {
    if install::on_path(QEMU) {
        return Ok(());
    }
    install::ensure_debian_packages(&["qemu-system-x86"], "QEMU boots the image", log_dir)?;
    anyhow::ensure!(install::on_path(QEMU), "{QEMU} is still not on PATH after installing qemu-system-x86");
    Ok(())
}

/// How QEMU runs the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    /// Software emulation: works everywhere (the default here, where /dev/kvm only emulates).
    Tcg,
    /// Hardware virtualization, for real hosts.
    Kvm,
}

/// How the guest is launched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tee {
    /// No TEE.
    Plain,
    /// AMD SEV-SNP (QEMU >= 9.1, host kernel >= 6.11, KVM).
    Snp,
    /// Intel TDX (QEMU >= 10.1, host kernel >= 6.16, KVM).
    Tdx,
}

/// The SNP guest policy run-qemu launches with (SEV-SNP Firmware ABI, 4.3 "Guest Policy"): bit 16 must be 1,
/// bit 17 allows SMT; debug (bit 19) and the migration agent (bit 18) are off.
pub const SNP_POLICY: u64 = 0x30000;

/// One QEMU run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Plain, SNP or TDX.
    pub tee: Tee,
    /// vCPUs (`-smp`); the SNP launch digest depends on it.
    pub vcpus: u32,
    /// The firmware image (`-bios`), or the IGVM file when `igvm` is set.
    pub image: PathBuf,
    /// Launch `image` as an IGVM file (`-object igvm-cfg`, QEMU >= 10.1) instead of `-bios`.
    pub igvm: bool,
    /// The accelerator.
    pub accel: Accel,
    /// The CPU model (`-cpu`).
    pub cpu: String,
    /// Guest RAM (`-m`), in bytes.
    pub memory: u64,
    /// How long the run may take before QEMU is killed.
    pub timeout: Duration,
    /// fw_cfg files to pass (`-fw_cfg name=...,string=...`).
    pub fw_cfg: Vec<(String, String)>,
    /// Echo serial records to stdout as they arrive.
    pub echo: bool,
    /// More QEMU arguments, appended last.
    pub extra_args: Vec<String>,
    /// Under TDX: the vsock port of the host's quote-generation service.
    pub qgs_port: u32,
    /// Run on the simulated SNP platform (`hypervisor/`) instead of a real SNP host.
    pub simulated: Option<crate::hypervisor::SimulatedLaunch>,
    /// The sealed model the host hands the guest, and the digest the launch is bound to.
    pub model: Option<crate::model_delivery::ModelDelivery>,
}

/// The vsock port Intel's quote-generation service (QGS) listens on by default.
pub const DEFAULT_QGS_PORT: u32 = 4050;

impl RunConfig {
    /// The defaults for `image`: TCG, `-cpu max`, 60 s.
    pub fn new(image: impl Into<PathBuf>) -> Self {
        Self {
            tee: Tee::Plain,
            vcpus: 1,
            image: image.into(),
            igvm: false,
            accel: Accel::Tcg,
            cpu: "max".into(),
            memory: GUEST_RAM_SIZE,
            timeout: Duration::from_secs(60),
            fw_cfg: Vec::new(),
            echo: false,
            extra_args: Vec::new(),
            qgs_port: DEFAULT_QGS_PORT,
            simulated: None,
            model: None,
        }
    }

    /// The QEMU arguments: a q35 machine with nothing but the firmware, COM1 on stdio, the debug-exit device, and
    /// `-no-reboot` so a triple fault ends the run instead of looping.
    /// Under SNP and TDX: KVM, and the confidential-guest object with the settings `measure` assumes.
    pub fn qemu_args(&self) -> Vec<String> {
        if let Some(simulated) = &self.simulated {
            return self.simulated_args(simulated);
        }
        let accel = if self.accel == Accel::Kvm || self.tee != Tee::Plain { "kvm" } else { "tcg" };
        let memory = format!("{}M", self.memory >> 20);
        let machine = match self.tee {
            Tee::Plain => format!("q35,accel={accel}"),
            Tee::Snp => format!("q35,accel={accel},confidential-guest-support=sev0,memory-backend=ram0"),
            Tee::Tdx => format!("q35,accel={accel},kernel-irqchip=split,confidential-guest-support=tdx0"),
        };
        let machine = if self.igvm { format!("{machine},igvm-cfg=igvm0") } else { machine };
        let mut args: Vec<String> = vec!["-machine".into(), machine];
        if self.igvm {
            args.extend(["-object".into(), format!("igvm-cfg,id=igvm0,file={}", self.image.display())]);
        }
        match self.tee {
            Tee::Plain => {}
            Tee::Snp => args.extend([
                "-object".into(),
                format!("memory-backend-memfd,id=ram0,size={memory},share=true,prealloc=false"),
                "-object".into(),
                // cbitpos 51 and reduced-phys-bits 1 are what Milan, Genoa and Turin hosts report.
                format!(
                    "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,policy={SNP_POLICY:#x}{}",
                    self.model.as_ref().map(|m| format!(",host-data={}", m.snp_host_data())).unwrap_or_default()
                ),
            ]),
            // The quote-generation service the GetQuote TDVMCALL reaches: the host's QGS on vsock (CID 2, the
            // host), port 4050 as Intel's QGS listens by default.
            Tee::Tdx => args.extend([
                "-object".into(),
                format!(
                    r#"{{"qom-type":"tdx-guest","id":"tdx0",{}"quote-generation-socket":{{"type":"vsock","cid":"2","port":"{}"}}}}"#,
                    self.model.as_ref().map(|m| format!(r#""mrconfigid":"{}","#, m.tdx_mrconfigid())).unwrap_or_default(),
                    self.qgs_port
                ),
            ]),
        }
        args.extend(["-cpu".into(), self.cpu.clone(), "-m".into(), memory, "-smp".into(), self.vcpus.to_string()]);
        if !self.igvm {
            args.extend(["-bios".into(), self.image.display().to_string()]);
        }
        self.common_args(&mut args);
        args
    }

    /// The simulated SNP platform: QEMU's TCG runs the hypervisor (multiboot), which launches the image as its
    /// nested guest; the devices, console and exit port are the same as in plain mode.
    fn simulated_args(&self, simulated: &crate::hypervisor::SimulatedLaunch) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "-machine".into(),
            "q35,accel=tcg".into(),
            "-cpu".into(),
            simulated.cpu(),
            "-m".into(),
            format!("{}M", crate::hypervisor::SIMULATED_MEMORY >> 20),
            "-smp".into(),
            "1".into(),
        ];
        let host_data = self.model.as_ref().map(|m| m.hypervisor_word(simulated.tee));
        args.extend(simulated.boot_args(&self.image, host_data.as_deref()));
        self.common_args(&mut args);
        args
    }

    fn common_args(&self, args: &mut Vec<String>) {
        args.extend([
            "-nodefaults".into(),
            "-display".into(),
            "none".into(),
            "-serial".into(),
            "stdio".into(),
            "-device".into(),
            format!("isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04"),
            "-no-reboot".into(),
        ]);
        for (name, value) in &self.fw_cfg {
            args.push("-fw_cfg".into());
            // QEMU splits an option's value at a single comma; a doubled one is a comma in the value.
            args.push(format!("name={name},string={}", value.replace(',', ",,")));
        }
        if let Some(model) = &self.model {
            args.extend(model.fw_cfg_args(self.tee));
        }
        args.extend(self.extra_args.iter().cloned());
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The guest wrote an exit code to the debug-exit port.
    Guest(ExitCode),
    /// QEMU exited with 0 without a guest exit code: under `-no-reboot` that is a reset, usually a triple fault.
    Reset,
    /// The run did not end within its timeout and was killed.
    Timeout,
    /// QEMU failed (bad arguments, missing image, ...) or died from a signal.
    QemuError(Option<i32>),
    /// The host ended a serving guest once it was done with it (`run_until`).
    Stopped,
}

impl Outcome {
    /// Maps QEMU's exit status to an outcome.
    pub fn from_qemu_status(status: Option<i32>) -> Outcome {
        match status {
            Some(0) => Outcome::Reset,
            Some(code) => ExitCode::from_qemu_status(code).map_or(Outcome::QemuError(Some(code)), Outcome::Guest),
            None => Outcome::QemuError(None),
        }
    }

    /// A stable name: the guest's exit-code name, `reset`, `timeout` or `qemu-error`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Guest(code) => code.name(),
            Outcome::Reset => "reset",
            Outcome::Timeout => "timeout",
            Outcome::QemuError(_) => "qemu-error",
            Outcome::Stopped => "stopped",
        }
    }

    /// Whether the guest finished its job (or served until the host was done with it).
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Guest(ExitCode::Success) | Outcome::Stopped)
    }
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// How it ended.
    pub outcome: Outcome,
    /// Every line the guest printed, in order.
    pub lines: Vec<String>,
    /// Time from spawning QEMU to each line.
    pub line_times: Vec<Duration>,
    /// QEMU's stderr.
    pub stderr: String,
    /// The whole run.
    pub wall: Duration,
}

impl RunReport {
    /// The first record whose `msg` is `msg`, with the time it arrived.
    pub fn record(&self, msg: &str) -> Option<(Record<'_>, Duration)> {
        self.lines
            .iter()
            .zip(&self.line_times)
            .find_map(|(line, t)| Record::parse(line).ok().filter(|r| r.msg == msg).map(|r| (r, *t)))
    }

    /// Lines that are not records (the guest should print none).
    pub fn non_records(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(String::as_str).filter(|l| Record::parse(l).is_err())
    }
}

/// Runs QEMU until it exits or the timeout passes (then it is killed). Never blocks longer than the timeout.
pub fn run(config: &RunConfig) -> Result<RunReport> {
    run_until(config, |_| false)
}

/// Like [`run`], and `stop` is asked after each line (`Some(line)`) and every few milliseconds (`None`); once it
/// says `true`, QEMU is killed and the outcome is [`Outcome::Stopped`]. For guests that serve until told otherwise.
pub fn run_until(config: &RunConfig, mut stop: impl FnMut(Option<&str>) -> bool) -> Result<RunReport> {
    let start = Instant::now();
    let mut child = qemu_command()
        .args(config.qemu_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {QEMU}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    // Whole lines go over the channel as they arrive; a last line without its newline (QEMU ended mid-record) is
    // the thread's result, for the caller to judge.
    let reader = std::thread::spawn(move || -> Option<(String, Duration)> {
        let mut stdout = BufReader::new(stdout);
        let mut bytes = Vec::new();
        loop {
            bytes.clear();
            if stdout.read_until(b'\n', &mut bytes).unwrap_or(0) == 0 {
                return None;
            }
            let complete = bytes.last() == Some(&b'\n');
            let text = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
            let line = String::from_utf8_lossy(text.strip_suffix(b"\r").unwrap_or(text)).into_owned();
            if !complete {
                return Some((line, start.elapsed()));
            }
            if tx.send((line, start.elapsed())).is_err() {
                return None;
            }
        }
    });
    let err_reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut lines = Vec::new();
    let mut line_times = Vec::new();
    let mut collect = |line: String, at: Duration| {
        if config.echo {
            println!("{line}");
        }
        lines.push(line);
        line_times.push(at);
    };
    let outcome = loop {
        let mut stopping = false;
        while let Ok((line, at)) = rx.try_recv() {
            stopping |= stop(Some(&line));
            collect(line, at);
        }
        if stopping || stop(None) {
            let _ = child.kill();
            let _ = child.wait();
            break Outcome::Stopped;
        }
        if let Some(status) = child.try_wait()? {
            break Outcome::from_qemu_status(status.code());
        }
        if start.elapsed() >= config.timeout {
            let _ = child.kill();
            let _ = child.wait();
            break Outcome::Timeout;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = start.elapsed();
    let cut_off = reader.join().ok().flatten();
    for (line, at) in rx.try_iter() {
        collect(line, at);
    }
    // A line cut off because the host stopped a serving guest is an artifact of the stop, not something the guest
    // said; after any other ending it is kept (a record cut off by a crash or a timeout is evidence).
    if let Some((line, at)) = cut_off.filter(|_| outcome != Outcome::Stopped) {
        collect(line, at);
    }
    let stderr = err_reader.join().unwrap_or_default();
    Ok(RunReport { outcome, lines, line_times, stderr, wall })
}

/// Checks that this host can launch `tee` guests: the KVM device for it and a QEMU new enough. Says what is missing.
pub fn check_tee_host(tee: Tee, igvm: bool) -> Result<()> {
    if igvm {
        anyhow::ensure!(tee != Tee::Tdx, "QEMU does not load TDX IGVM files; launch a TD from -bios");
        let version = qemu_version()?;
        anyhow::ensure!(
            version >= (10, 1),
            "IGVM needs QEMU >= 10.1; this QEMU is {}.{}. `--print-cmdline` prints the command.",
            version.0,
            version.1
        );
    }
    let (device, min, what) = match tee {
        Tee::Plain => return Ok(()),
        Tee::Snp => ("/dev/sev", (9, 1), "SEV-SNP needs /dev/sev (a host kernel >= 6.11 with SNP enabled)"),
        Tee::Tdx => ("/dev/kvm", (10, 1), "TDX needs a TDX host kernel (>= 6.16) with KVM"),
    };
    let version = qemu_version()?;
    anyhow::ensure!(
        Path::new(device).exists() && (tee != Tee::Tdx || tdx_enabled()),
        "{what}; this host has none. `--print-cmdline` prints the command for a host that has."
    );
    anyhow::ensure!(
        version >= min,
        "{what} and QEMU >= {}.{}; this QEMU is {}.{}. `--print-cmdline` prints the command.",
        min.0,
        min.1,
        version.0,
        version.1
    );
    Ok(())
}

/// Whether KVM reports TDX support (the kvm_intel module's `tdx` parameter).
fn tdx_enabled() -> bool {
    std::fs::read_to_string("/sys/module/kvm_intel/parameters/tdx").is_ok_and(|v| v.trim() == "Y")
}

/// QEMU's (major, minor) version.
pub fn qemu_version() -> Result<(u32, u32)> {
    let out = Command::new(QEMU).arg("--version").output().with_context(|| format!("running {QEMU} --version"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().skip_while(|w| *w != "version").nth(1).unwrap_or("");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => Ok((major, minor)),
        _ => anyhow::bail!("cannot read the QEMU version from {text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_map_to_named_outcomes() {
        assert_eq!(Outcome::from_qemu_status(Some(33)), Outcome::Guest(ExitCode::Success));
        assert!(Outcome::from_qemu_status(Some(33)).is_success());
        assert_eq!(Outcome::from_qemu_status(Some(35)), Outcome::Guest(ExitCode::Fault));
        assert_eq!(Outcome::from_qemu_status(Some(35)).name(), "guest-fault");
        assert_eq!(Outcome::from_qemu_status(Some(0)), Outcome::Reset);
        assert_eq!(Outcome::from_qemu_status(Some(0)).name(), "reset");
        assert_eq!(Outcome::from_qemu_status(Some(1)), Outcome::QemuError(Some(1)));
        assert_eq!(Outcome::from_qemu_status(None), Outcome::QemuError(None));
        assert_eq!(Outcome::Timeout.name(), "timeout");
        for code in ExitCode::ALL {
            assert_eq!(Outcome::from_qemu_status(Some(code.qemu_status())), Outcome::Guest(code));
        }
    }

    #[test]
    fn snp_and_tdx_command_lines_carry_what_measure_assumes() {
        let config = RunConfig { tee: Tee::Snp, vcpus: 4, cpu: "EPYC-Milan".into(), ..RunConfig::new("/x/a.bin") };
        let args = config.qemu_args().join(" ");
        assert!(args.contains("confidential-guest-support=sev0"));
        assert!(args.contains("sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,policy=0x30000"));
        assert!(args.contains("accel=kvm"));
        assert!(args.contains("-cpu EPYC-Milan") && args.contains("-smp 4") && args.contains("-bios /x/a.bin"));
        let tdx = RunConfig { tee: Tee::Tdx, cpu: "host".into(), ..RunConfig::new("/x/a.bin") }.qemu_args().join(" ");
        assert!(tdx.contains("kernel-irqchip=split,confidential-guest-support=tdx0"));
        assert!(tdx.contains(r#""qom-type":"tdx-guest","id":"tdx0""#));
        assert!(tdx.contains(r#""quote-generation-socket":{"type":"vsock","cid":"2","port":"4050"}"#));
    }

    #[test]
    fn igvm_launches_replace_bios_with_an_igvm_cfg_object() {
        let config = RunConfig { tee: Tee::Snp, igvm: true, ..RunConfig::new("/x/a.igvm") };
        let args = config.qemu_args().join(" ");
        assert!(args.contains("-object igvm-cfg,id=igvm0,file=/x/a.igvm"));
        assert!(args.contains("confidential-guest-support=sev0,memory-backend=ram0,igvm-cfg=igvm0"));
        assert!(!args.contains("-bios"));
    }

    #[test]
    fn command_line_has_the_exit_device_no_reboot_and_fw_cfg() {
        let mut config = RunConfig::new("/x/ampoule.bin");
        config.fw_cfg.push(("opt/ampoule/inject".into(), "ud".into()));
        config.fw_cfg.push(("opt/ampoule/batch".into(), "4,500".into()));
        let args = config.qemu_args().join(" ");
        assert!(args.contains("-bios /x/ampoule.bin"));
        assert!(args.contains("isa-debug-exit,iobase=0xf4,iosize=0x04"));
        assert!(args.contains("-no-reboot"));
        assert!(args.contains("accel=tcg"));
        assert!(args.contains("-fw_cfg name=opt/ampoule/inject,string=ud"));
        assert!(args.contains("-fw_cfg name=opt/ampoule/batch,string=4,,500"), "a comma in a value is doubled");
        assert!(args.contains("-m 256M"));
    }
}
