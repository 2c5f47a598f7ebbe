//! `cargo xtask storm [--seconds N]`: a bounded, loopback-only storm of hostile clients ([`hostile`]) against the
//! real broker binary and a serving guest under QEMU, interleaved with valid work ([`valid`]).
//!
//! One broker process serves both the guest's own key dance at boot and the storm. Hostile workers draw a
//! behaviour and a target at random until the time is up; one valid client makes attested inferences on the guest,
//! another valid key dances with the broker. Then the storm stops and the valid clients run alone. The run prints
//! the valid requests' success rate and p50/p99 during and after, resident memory before and after, and the guest's
//! connection closes by reason; it fails if a valid request fails after the storm, if the guest or the broker
//! exits, or if memory grows past a bound that bounded buffers cannot reach.

pub mod hostile;
pub mod valid;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use hostile::{BEHAVIOURS, Dice, Target};
use protocol::console::Record;
use valid::{GuestWork, Tally};

use broker::registry::Binding;
use protocol::sealed_blob::launch_binding;
use protocol::tee::Tee;

use crate::broker_state::{BrokerState, StoreKind, broker_config};
use crate::image::{self, BuildOptions, Variant};
use crate::{dance, paths, procfs, qemu, serve};

/// Concurrent hostile clients.
const HOSTILE_WORKERS: usize = 6;
/// The guest's heap may hold at most this much more after the storm than before: every connection's buffers are
/// bounded (one frame in, one reply out) and freed on close, so more means something grows with the input.
const GUEST_HEAP_GROWTH_LIMIT: u64 = 1 << 20;
/// The broker's resident memory may grow at most this much (threads, allocator arenas and the nonce table are all
/// bounded; a leak per connection over thousands of connections would pass it).
const BROKER_RSS_GROWTH_LIMIT: u64 = 64 << 20;
/// Valid requests of each kind after the storm, all of which must succeed.
const AFTER_REQUESTS: usize = 20;

/// What a storm measured.
#[derive(Debug, Default)]
pub struct StormReport {
    /// Hostile connections opened, by behaviour.
    pub hostile: BTreeMap<&'static str, usize>,
    /// Valid inferences on the guest during and after the storm.
    pub guest: [Tally; 2],
    /// Valid key dances with the broker during and after the storm.
    pub broker: [Tally; 2],
    /// The broker's resident memory before and after.
    pub broker_rss: [u64; 2],
    /// QEMU's resident memory before and after.
    pub qemu_rss: [u64; 2],
    /// The guest's heap in use at its first and last `closed` record.
    pub guest_heap: [u64; 2],
    /// The guest's connection closes, by reason.
    pub guest_closes: BTreeMap<String, usize>,
}

/// Runs a storm of `seconds` and checks what survived it.
pub fn run(root: &Path, seconds: u64) -> Result<StormReport> {
    let built = image::build(Variant::Release, &BuildOptions::for_checkout(root))?;
    let bytes = std::fs::read(&built.path)?;
    qemu::ensure_installed(&paths::target_dir(root))?;
    let dir = paths::target_dir(root).join("storm");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let measurement = dance::plain_measurement(&bytes);
    let state = BrokerState::for_checkout(root, StoreKind::Sqlite);
    let blob =
        crate::sealing::ensure_sealed(root, &crate::manifest::named(root, crate::manifest::DEFAULT_MODEL)?, &state)?;
    let model = crate::model_delivery::ModelDelivery::of(&blob)?;
    let key_id = model.key_id;
    let (_, store, mut registry) = state.open()?;
    let host_data = launch_binding(Tee::Plain, &model.digest).to_vec();
    let binding = Binding { tee: Tee::Plain, measurement: measurement.to_vec(), host_data };
    dance::deploy(&mut registry, &key_id, &binding)?;
    let config_path = dir.join("broker.toml");
    let header = "# cargo xtask storm: the development broker's token and registry, simulated evidence (development\n\
                  # only)\nlisten = \"127.0.0.1:0\"\nname = \"storm\"\n\
                  max_connections = 64\nmessage_timeout_ms = 2000\nsession_timeout_ms = 6000\n";
    std::fs::write(&config_path, broker_config(header, &store, true, "")?)?;
    let policy_path = dir.join("policy.toml");
    let launch =
        dance::PinnedLaunch { tee: Tee::Plain, measurement, model: Some(&model), key_id, allow_simulated: true };
    launch.write_policy(&policy_path, "")?;
    let (mut broker, broker_addr) = start_broker(root, &config_path, &dir.join("broker.log"))?;
    let service_port = dance::free_port()?;
    let mut config = qemu::RunConfig::new(&built.path);
    config.timeout = Duration::from_secs(seconds + 180);
    dance::attach(&mut config, broker_addr.port(), service_port, Some(&model));
    let guest = SocketAddr::from(([127, 0, 0, 1], service_port));
    let policy = serve::policy_of(&policy_path)?;
    let input = serve::reference_cases(root)?.swap_remove(0).features;
    let broker_pid = broker.id();
    let (run, storm) = serve::run_serving(&config, move || {
        let host_data = model.binding(qemu::Tee::Plain)[..32].try_into().expect("32 bytes");
        storm(
            guest,
            broker_addr,
            broker_pid,
            &policy,
            &input,
            valid::DancingLaunch { measurement, host_data, key_id },
            seconds,
        )
    })?;
    let broker_exited = broker.try_wait()?;
    let _ = broker.kill();
    let _ = broker.wait();
    ensure!(broker_exited.is_none(), "the broker exited during the storm ({broker_exited:?})");
    let Some(storm) = storm else { bail!("the guest never served: {}", run.outcome.name()) };
    let mut report = storm.map_err(|_| anyhow::anyhow!("the storm's client thread panicked"))??;
    ensure!(
        run.outcome == qemu::Outcome::Stopped,
        "the guest did not survive the storm: {} (last lines: {:?})",
        run.outcome.name(),
        run.lines.iter().rev().take(5).collect::<Vec<_>>()
    );
    let closes: Vec<Record<'_>> =
        run.lines.iter().filter_map(|l| Record::parse(l).ok()).filter(|r| r.msg == "closed").collect();
    for record in &closes {
        *report.guest_closes.entry(record.field("reason").unwrap_or("?").to_string()).or_default() += 1;
    }
    let heap = |r: Option<&Record<'_>>| r.and_then(|r| r.field("heap_used")?.parse::<u64>().ok()).unwrap_or(0);
    report.guest_heap = [heap(closes.first()), heap(closes.last())];
    Ok(report)
}

/// Starts the broker binary (built if needed) with `config`; returns it and the address it announced.
fn start_broker(root: &Path, config: &Path, log: &Path) -> Result<(Child, SocketAddr)> {
    let built = paths::cargo(root).args(["build", "--quiet", "-p", "broker", "--bin", "ampoule-broker"]).status()?;
    ensure!(built.success(), "building ampoule-broker failed");
    let binary: PathBuf = paths::target_dir(root).join("debug/ampoule-broker");
    let mut child = Command::new(&binary)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut stderr = BufReader::new(child.stderr.take().context("stderr is piped")?);
    let mut log_file = std::fs::File::create(log)?;
    let mut line = String::new();
    loop {
        line.clear();
        ensure!(stderr.read_line(&mut line)? > 0, "the broker exited before listening; its log: {}", log.display());
        std::io::Write::write_all(&mut log_file, line.as_bytes())?;
        if let Some(addr) = broker::Broker::announced_addr(&line) {
            // Keep its log flowing to the file, so that it never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut stderr, &mut log_file));
            return Ok((child, addr));
        }
    }
}

/// The storm itself, on the client side, once the guest serves.
#[allow(clippy::too_many_arguments)]
fn storm(
    guest: SocketAddr,
    broker: SocketAddr,
    broker_pid: u32,
    policy: &broker::policy::Policy,
    input: &[f32],
    launch: valid::DancingLaunch,
    seconds: u64,
) -> Result<StormReport> {
    let work = GuestWork { guest, policy, input };
    let mut report = StormReport::default();
    // Before: one attested connection (its close gives the guest's heap a baseline) and one dance.
    let mut warmup = [Tally::default(), Tally::default()];
    work.session(3, &mut warmup[0]);
    valid::key_dance(broker, &launch, &mut warmup[1]);
    ensure!(warmup.iter().all(|t| t.failed == 0), "valid work failed before the storm: {warmup:?}");
    let qemu_pid = procfs::children(std::process::id(), "qemu-system-x86").first().copied();
    let rss = |pid: Option<u32>| pid.and_then(procfs::resident_bytes).unwrap_or(0);
    std::thread::sleep(Duration::from_millis(300));
    report.broker_rss[0] = rss(Some(broker_pid));
    report.qemu_rss[0] = rss(qemu_pid);

    let stop = Arc::new(AtomicBool::new(false));
    let hostile_counts = Arc::new(Mutex::new(BTreeMap::new()));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    std::thread::scope(|scope| {
        for _ in 0..HOSTILE_WORKERS {
            let (stop, counts) = (stop.clone(), hostile_counts.clone());
            scope.spawn(move || {
                let mut dice = Dice::new();
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let behaviour = BEHAVIOURS[dice.below(BEHAVIOURS.len() as u64) as usize];
                    let target = if dice.below(2) == 0 { Target::Guest(guest) } else { Target::Broker(broker) };
                    let opened = behaviour.run(target, &mut dice);
                    *counts.lock().unwrap_or_else(|e| e.into_inner()).entry(behaviour.name()).or_insert(0) += opened;
                }
            });
        }
        let guest_tally = scope.spawn(|| {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                work.session(5, &mut tally);
                std::thread::sleep(Duration::from_millis(20));
            }
            tally
        });
        let mut broker_tally = Tally::default();
        while Instant::now() < deadline {
            valid::key_dance(broker, &launch, &mut broker_tally);
            std::thread::sleep(Duration::from_millis(20));
        }
        report.broker[0] = broker_tally;
        report.guest[0] = guest_tally.join().unwrap_or_default();
        stop.store(true, Ordering::SeqCst);
    });
    report.hostile = std::mem::take(&mut *hostile_counts.lock().unwrap_or_else(|e| e.into_inner()));

    // After: the valid clients alone; every request must succeed.
    for _ in 0..AFTER_REQUESTS / 5 {
        work.session(5, &mut report.guest[1]);
    }
    for _ in 0..AFTER_REQUESTS {
        valid::key_dance(broker, &launch, &mut report.broker[1]);
    }
    // Let the guest record the last close before QEMU is stopped.
    std::thread::sleep(Duration::from_millis(500));
    report.broker_rss[1] = rss(Some(broker_pid));
    report.qemu_rss[1] = rss(qemu_pid);
    Ok(report)
}

impl StormReport {
    /// The lines `cargo xtask storm` prints.
    pub fn lines(&self) -> Vec<String> {
        let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
        let hostile: usize = self.hostile.values().sum();
        vec![
            format!(
                "storm: {hostile} hostile connections: {}",
                self.hostile.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
            ),
            format!("storm: guest inferences during: {}", self.guest[0].summary()),
            format!("storm: guest inferences after:  {}", self.guest[1].summary()),
            format!("storm: broker key dances during: {}", self.broker[0].summary()),
            format!("storm: broker key dances after:  {}", self.broker[1].summary()),
            format!(
                "storm: resident memory: broker {:.1} -> {:.1} MiB, qemu {:.1} -> {:.1} MiB; guest heap in use {:.2} -> {:.2} MiB",
                mib(self.broker_rss[0]),
                mib(self.broker_rss[1]),
                mib(self.qemu_rss[0]),
                mib(self.qemu_rss[1]),
                mib(self.guest_heap[0]),
                mib(self.guest_heap[1])
            ),
            format!(
                "storm: guest closes by reason: {}",
                self.guest_closes.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
            ),
        ]
    }

    /// Fails unless every valid request after the storm succeeded and memory stayed bounded.
    pub fn check(&self) -> Result<()> {
        for (name, tally) in [("guest inferences", &self.guest[1]), ("broker key dances", &self.broker[1])] {
            ensure!(tally.failed == 0 && tally.total() > 0, "{name} failed after the storm: {}", tally.summary());
        }
        let growth = self.guest_heap[1].saturating_sub(self.guest_heap[0]);
        ensure!(growth <= GUEST_HEAP_GROWTH_LIMIT, "the guest's heap grew by {growth} bytes over the storm");
        let growth = self.broker_rss[1].saturating_sub(self.broker_rss[0]);
        ensure!(growth <= BROKER_RSS_GROWTH_LIMIT, "the broker's resident memory grew by {growth} bytes");
        Ok(())
    }
}
