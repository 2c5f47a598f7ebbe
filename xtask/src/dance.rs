//! The key dance under run-qemu: a broker in process on 127.0.0.1 with the sealed model's key (in memory only)
//! bound to the image's measurement and the blob's digest, and QEMU user networking whose only way out is a
//! forward to it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use broker::Broker;
use broker::config::Config;
use broker::keys::KeyStore;
use protocol::endpoint::{BROKER_GUEST_ADDRESS, BROKER_GUEST_PORT, SERVICE_GUEST_PORT};
use protocol::message::KeyId;
use protocol::sealed_blob::BlobDigest;
use sha2::{Digest, Sha384};
use zeroize::Zeroizing;

use crate::model_delivery::ModelDelivery;
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
    /// The key id the allowlist binds to it (default: the one the sealed model names).
    pub allowed_key_id: Option<KeyId>,
    /// The blob digest the allowlist binds to it (default: the sealed model's own).
    pub allowed_model_digest: Option<BlobDigest>,
    /// The key released (default: the sealed model's key, from the broker state `cargo xtask seal` wrote).
    pub key: Option<[u8; 32]>,
    /// The sealed model the guest is launched with (default: the MLP's, sealed first when missing). Without one
    /// (broker-only runs with a made-up key), the allowlist admits launches bound to no blob.
    pub sealed_model: Option<PathBuf>,
    /// The broker state whose key store holds the image's key.
    pub state_dir: PathBuf,
    /// Verify real SEV-SNP evidence instead (the allowlist then names the SNP launch digest).
    pub snp: Option<SnpBroker>,
    /// Verify real TDX quotes instead (the allowlist then names the MRTD).
    pub tdx: Option<TdxBroker>,
}

/// What the broker needs to verify a TD's quotes.
#[derive(Clone, Debug)]
pub struct TdxBroker {
    /// Intel's collateral for the host's platform (JSON: TCB info, QE identity, CRLs), fetched from Intel's PCS or
    /// the host's PCCS.
    pub collateral: PathBuf,
    /// The TD's exact XFAM (its extended-state features, which QEMU derives from `-cpu`).
    pub xfam: u64,
    /// The MRTD the allowlist names: `cargo xtask measure`.
    pub mrtd: [u8; 48],
    /// The root CA (DER) instead of Intel's: the simulated platform's.
    pub root_ca: Option<PathBuf>,
}

/// What the broker needs to verify an SNP guest's reports.
#[derive(Clone, Debug)]
pub struct SnpBroker {
    /// milan, genoa or turin: AMD's root for the chain.
    pub product: String,
    /// The host's VCEK (DER or PEM), from AMD's key distribution service for its chip id and TCB.
    pub vcek: PathBuf,
    /// The launch digest the allowlist names: `cargo xtask measure` for the launch run-qemu performs.
    pub launch_digest: [u8; 48],
    /// The lowest REPORTED_TCB accepted: boot loader, TEE, SNP and microcode SVNs.
    pub min_tcb: [u8; 4],
    /// The ARK and ASK certificates instead of AMD's for `product` (the simulated platform's chain).
    pub ca: Option<(PathBuf, PathBuf)>,
}

impl BrokerOptions {
    /// The development broker of `root` (`target/ampoule/broker`), trusting simulated evidence.
    pub fn for_checkout(root: &Path) -> Self {
        Self {
            allow_simulated: true,
            allowed_measurement: None,
            allowed_key_id: None,
            allowed_model_digest: None,
            key: None,
            sealed_model: Some(crate::sealing::default_sealed_model(root, crate::manifest::DEFAULT_MODEL)),
            state_dir: crate::sealing::default_broker_state(root),
            snp: None,
            tdx: None,
        }
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
    /// The sealed model the broker holds the key of, bound to its own digest: what the guest is launched with.
    pub model: Option<ModelDelivery>,
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

/// Writes `dir/broker.toml` for `image` and starts a broker from it in process: the allowlist binds the image's
/// measurement and the sealed model's digest to the key the model names, and the key comes from the broker state
/// (held in memory). The default sealed model is sealed first when missing.
pub fn start_broker(dir: &Path, image: &[u8], options: &BrokerOptions) -> Result<RunningBroker> {
    std::fs::create_dir_all(dir)?;
    let root = crate::paths::repo_root();
    let model = match &options.sealed_model {
        Some(path) if *path == crate::sealing::default_sealed_model(&root, crate::manifest::DEFAULT_MODEL) => {
            let model = crate::manifest::named(&root, crate::manifest::DEFAULT_MODEL)?;
            Some(ModelDelivery::of(&crate::sealing::ensure_sealed(&root, &model)?)?)
        }
        Some(path) => Some(ModelDelivery::of(path)?),
        None => None,
    };
    let key_id = match (options.allowed_key_id, &model) {
        (Some(id), _) => id,
        (None, Some(model)) => model.key_id,
        (None, None) => anyhow::bail!("a broker without a sealed model needs an explicit key id"),
    };
    let model_digest = options.allowed_model_digest.or(model.as_ref().map(|m| m.digest));
    let key = Zeroizing::new(match options.key {
        Some(key) => key,
        None => *crate::sealing::load_keys(&options.state_dir)?
            .get(&key_id)
            .with_context(|| {
                format!("the broker state {} has no key {}", options.state_dir.display(), hex::encode(key_id))
            })?
            .clone(),
    });
    let config_path = dir.join("broker.toml");
    let (tee, measurement, allow_simulated, snp_table) = match (&options.snp, &options.tdx) {
        (Some(_), Some(_)) => anyhow::bail!("a run-qemu broker verifies one TEE: SNP or TDX"),
        (None, Some(tdx)) => {
            let collateral = tdx
                .collateral
                .canonicalize()
                .with_context(|| format!("the TDX collateral {}", tdx.collateral.display()))?;
            let mut table =
                format!("\n[tdx]\ncollateral = {:?}\nxfam = {:#x}\n", collateral.display().to_string(), tdx.xfam);
            if let Some(root_ca) = &tdx.root_ca {
                let root_ca = root_ca.canonicalize().with_context(|| format!("the root CA {}", root_ca.display()))?;
                table.push_str(&format!("root_ca = {:?}\n", root_ca.display().to_string()));
            }
            ("tdx", options.allowed_measurement.unwrap_or(tdx.mrtd), false, table)
        }
        (None, None) => {
            let measurement = options.allowed_measurement.unwrap_or_else(|| plain_measurement(image));
            ("plain", measurement, options.allow_simulated, String::new())
        }
        (Some(snp), None) => {
            let vcek = snp.vcek.canonicalize().with_context(|| format!("the VCEK {}", snp.vcek.display()))?;
            let [bootloader, tee, snp_svn, microcode] = snp.min_tcb;
            let mut table = format!(
                "\n[snp]\nproduct = {:?}\nvcek = {:?}\nallow_smt = true  # run-qemu's guest policy allows SMT\n\
                 min_tcb = {{ bootloader = {bootloader}, tee = {tee}, snp = {snp_svn}, microcode = {microcode} }}\n",
                snp.product,
                vcek.display().to_string()
            );
            if let Some((ark, ask)) = &snp.ca {
                let absolute =
                    |p: &PathBuf| p.canonicalize().with_context(|| format!("the certificate {}", p.display()));
                table.push_str(&format!(
                    "ark = {:?}\nask = {:?}\n",
                    absolute(ark)?.display().to_string(),
                    absolute(ask)?.display().to_string()
                ));
            }
            ("snp", options.allowed_measurement.unwrap_or(snp.launch_digest), false, table)
        }
    };
    let config_text = format!(
        "# Written by `cargo xtask run-qemu` for one run; the key comes from the broker state, held in memory.\n\
         listen = \"127.0.0.1:0\"\n\
         allow_simulated = {allow_simulated}  # plain-mode guests prove nothing: development only\n\
         audit_log = \"audit.jsonl\"\n\n\
         [[allow]]\ntee = \"{tee}\"\nmeasurement = \"{}\"\n{}key_id = \"{}\"\n{snp_table}",
        hex::encode(measurement),
        model_digest.map(|d| format!("model_digest = \"{}\"\n", hex::encode(d))).unwrap_or_default(),
        hex::encode(key_id),
    );
    std::fs::write(&config_path, config_text)?;
    let config = Config::load(&config_path)?;
    let mut keys = KeyStore::default();
    keys.insert(key_id, key);
    serve_in_process(dir, config, keys, key_id, model)
}

/// Serves a broker with `config` and `keys` on a loopback port, its own log in `dir/broker.log`. `key_id` is the
/// key the caller's guest will ask for, and `model` the sealed model it is launched with (kept for the caller).
pub fn serve_in_process(
    dir: &Path,
    config: Config,
    keys: KeyStore,
    key_id: KeyId,
    model: Option<ModelDelivery>,
) -> Result<RunningBroker> {
    std::fs::create_dir_all(dir)?;
    let audit_log = config.audit_log.clone();
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
    Ok(RunningBroker { broker, port, key_id, model, audit_log, log, shutdown, thread: Some(thread) })
}

/// Gives the guest a virtio-net device on QEMU user networking that reaches nothing but `port` on the host's
/// loopback (`restrict=on`; the broker's guest address is forwarded to it), forwards `service_port` on the
/// host's loopback to the guest's service port, and hands the guest `model` (the guest finds its key id there).
pub fn attach(config: &mut RunConfig, port: u16, service_port: u16, model: Option<&ModelDelivery>) {
    config.model = model.cloned();
    let [a, b, c, d] = BROKER_GUEST_ADDRESS;
    config.extra_args.extend([
        "-netdev".into(),
        format!(
            "user,id=net0,restrict=on,guestfwd=tcp:{a}.{b}.{c}.{d}:{BROKER_GUEST_PORT}-tcp:127.0.0.1:{port},\
             hostfwd=tcp:127.0.0.1:{service_port}-:{SERVICE_GUEST_PORT}"
        ),
        "-device".into(),
        "virtio-net-pci,netdev=net0,disable-legacy=on,romfile=".into(),
    ]);
}

/// A free port on the host's loopback (for the service forward).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
