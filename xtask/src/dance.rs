//! The key dance under run-qemu: a broker in process on 127.0.0.1 with a fresh model key (in memory only) bound
//! to the image's plain-mode measurement, and QEMU user networking whose only way out is a forward to it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use broker::Broker;
use broker::config::Config;
use broker::keys::KeyStore;
use protocol::endpoint::{BROKER_GUEST_ADDRESS, BROKER_GUEST_PORT, KEY_ID_FW_CFG};
use protocol::message::KeyId;
use sha2::{Digest, Sha384};
use zeroize::Zeroizing;

use crate::qemu::RunConfig;

/// Plain mode's measurement: the SHA-384 of the image (what the guest computes over itself at boot).
pub fn plain_measurement(image: &[u8]) -> [u8; 48] {
    Sha384::digest(image).into()
}

/// How to configure the broker for a run (tests vary these to see refusals end to end).
#[derive(Clone, Debug)]
pub struct BrokerOptions {
    /// Trust simulated evidence (required for plain mode to get a key).
    pub allow_simulated: bool,
    /// The measurement the allowlist names (default: the image's own).
    pub allowed_measurement: Option<[u8; 48]>,
    /// The model key (default: fresh random bytes). Tests choose it to scan outputs for it.
    pub key: Option<[u8; 32]>,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        Self { allow_simulated: true, allowed_measurement: None, key: None }
    }
}

/// A broker serving on a loopback port until stopped.
pub struct RunningBroker {
    /// The broker (for its counters).
    pub broker: Arc<Broker>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The key the allowlist binds to the measurement.
    pub key_id: KeyId,
    /// The audit log.
    pub audit_log: PathBuf,
    /// The broker's own log.
    pub log: PathBuf,
    shutdown: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RunningBroker {
    /// Stops serving.
    pub fn stop(mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        broker::server::wake(([127, 0, 0, 1], self.port).into());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(bytes)
}

/// Writes `dir/broker.toml` for `image` and starts a broker from it, with a fresh key kept in memory.
pub fn start_broker(dir: &Path, image: &[u8], options: &BrokerOptions) -> Result<RunningBroker> {
    std::fs::create_dir_all(dir)?;
    let measurement = options.allowed_measurement.unwrap_or_else(|| plain_measurement(image));
    let key_id: KeyId = random()?;
    let key = Zeroizing::new(match options.key {
        Some(key) => key,
        None => random::<32>()?,
    });
    let config_path = dir.join("broker.toml");
    let config_text = format!(
        "# Written by `cargo xtask run-qemu` for one run. The model key of this run is held in memory only.\n\
         listen = \"127.0.0.1:0\"\n\
         allow_simulated = {}  # plain-mode guests prove nothing: development only\n\
         audit_log = \"audit.jsonl\"\n\n\
         [[allow]]\ntee = \"plain\"\nmeasurement = \"{}\"\nkey_id = \"{}\"\n",
        options.allow_simulated,
        hex::encode(measurement),
        hex::encode(key_id),
    );
    std::fs::write(&config_path, config_text)?;
    let config = Config::load(&config_path)?;
    let audit_log = config.audit_log.clone();
    let mut keys = KeyStore::default();
    keys.insert(key_id, key);
    let log = dir.join("broker.log");
    let sink = broker::log::LogSink::file(&log).with_context(|| format!("opening {}", log.display()))?;
    let broker = Arc::new(Broker::new(config, keys, broker::system_clock())?.with_log(sink));
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback port for the broker")?;
    let port = listener.local_addr()?.port();
    broker.announce(&format!("127.0.0.1:{port}"));
    let shutdown = Arc::new(AtomicBool::new(false));
    let (serving, stop) = (broker.clone(), shutdown.clone());
    let thread = std::thread::spawn(move || {
        let _ = broker::server::serve(serving, listener, stop);
    });
    Ok(RunningBroker { broker, port, key_id, audit_log, log, shutdown, thread: Some(thread) })
}

/// Gives the guest a virtio-net device on QEMU user networking that reaches nothing but `port` on the host's
/// loopback (`restrict=on`; the broker's guest address is forwarded to it), and names `key_id` for the guest.
pub fn attach(config: &mut RunConfig, port: u16, key_id: &KeyId) {
    let [a, b, c, d] = BROKER_GUEST_ADDRESS;
    config.extra_args.extend([
        "-netdev".into(),
        format!("user,id=net0,restrict=on,guestfwd=tcp:{a}.{b}.{c}.{d}:{BROKER_GUEST_PORT}-tcp:127.0.0.1:{port}"),
        "-device".into(),
        "virtio-net-pci,netdev=net0,disable-legacy=on,romfile=".into(),
    ]);
    config.fw_cfg.push((KEY_ID_FW_CFG.into(), hex::encode(key_id)));
}
