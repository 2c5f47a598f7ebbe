//! The key dance under run-qemu: a broker in process on 127.0.0.1 over the development token and registry
//! ([`BrokerState`]), the sealed model's key bound to the launch the run performs, and QEMU user networking whose
//! only way out is a forward to it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use broker::Broker;
use broker::config::Config;
use broker::lifecycle;
use broker::registry::{AuditEntry, Binding, Registry};
use protocol::endpoint::{BROKER_GUEST_ADDRESS, BROKER_GUEST_PORT, SERVICE_GUEST_PORT};
use protocol::message::KeyId;
use protocol::sealed_blob::launch_binding;
use protocol::tee::Tee;
use sha2::{Digest, Sha384};

use crate::broker_state::{BrokerState, OpenStore, StoreKind, actor, broker_config};
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
    /// Bind the sealed model's key to the launch this run performs before serving (run-qemu deploys what it runs:
    /// an audited `bind` by `xtask run-qemu`). Tests of refusals set their registry up themselves and leave it.
    pub bind_launch: bool,
    /// The sealed model the guest is launched with (default: the MLP's, sealed first when missing). Without one
    /// (broker-only runs), a fresh key is made and bound to a launch bound to no blob.
    pub sealed_model: Option<PathBuf>,
    /// The token and registry the broker's keys are in.
    pub state: BrokerState,
    /// Verify real SEV-SNP evidence instead (the launch is then the SNP launch digest).
    pub snp: Option<SnpBroker>,
    /// Verify real TDX quotes instead (the launch is then the MRTD).
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
    /// The development broker of `root` (`target/ampoule/broker`, its SQLite registry), trusting simulated
    /// evidence.
    pub fn for_checkout(root: &Path) -> Self {
        Self {
            allow_simulated: true,
            bind_launch: true,
            sealed_model: Some(crate::sealing::default_sealed_model(root, crate::manifest::DEFAULT_MODEL)),
            state: BrokerState::for_checkout(root, StoreKind::Sqlite),
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
    /// The key the guest asks for: the one its sealed model names.
    pub key_id: KeyId,
    /// The sealed model the guest is launched with, bound to its own digest.
    pub model: Option<ModelDelivery>,
    /// The broker's own log.
    pub log: PathBuf,
    /// What a client pins for this run (`policy.toml`: the launch's allowlist entry and verifier).
    pub policy: PathBuf,
    config: PathBuf,
    store: Arc<OpenStore>,
    shutdown: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RunningBroker {
    /// The registry's audit trail (a connection of its own).
    pub fn audit_trail(&self) -> Result<Vec<AuditEntry>> {
        self.store.registry()?.audit_trail()
    }

    /// Where the registry is.
    pub fn store(&self) -> &broker::registry::StoreConfig {
        &self.store.config
    }

    /// Another replica over the same token and registry (a connection and a token session of its own), serving the
    /// same launches on a port of its own; its audit rows' actor is `broker:NAME`.
    pub fn replica(&self, name: &str) -> Result<RunningBroker> {
        let config = Config { name: name.into(), ..Config::load(&self.config)? };
        let log = self.log.with_file_name(format!("{name}.log"));
        let sink = broker::log::LogSink::file(&log).with_context(|| format!("opening {}", log.display()))?;
        let replica =
            Broker::with_registry(config, self.store.registry()?, BrokerState::custody()?, broker::system_clock())?;
        let (port, shutdown, thread) = serve(Arc::new(replica.with_log(sink)))?;
        Ok(RunningBroker {
            broker: thread.0,
            port,
            key_id: self.key_id,
            model: self.model.clone(),
            log,
            policy: self.policy.clone(),
            config: self.config.clone(),
            store: self.store.clone(),
            shutdown,
            thread: Some(thread.1),
        })
    }

    /// Stops serving (and the registry's cluster, if this run started one and no replica shares it).
    pub fn stop(mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        broker::server::wake(([127, 0, 0, 1], self.port).into());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The launch a run performs: its TEE and measurement, and the verifier's table for a broker configuration.
fn launch(image: &[u8], options: &BrokerOptions) -> Result<(Tee, [u8; 48], String)> {
    match (&options.snp, &options.tdx) {
        (Some(_), Some(_)) => anyhow::bail!("a run-qemu broker verifies one TEE: SNP or TDX"),
        (None, None) => Ok((Tee::Plain, plain_measurement(image), String::new())),
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
            Ok((Tee::Tdx, tdx.mrtd, table))
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
            Ok((Tee::Snp, snp.launch_digest, table))
        }
    }
}

/// Binds the newest active version of `key_id` to `binding` unless it is bound already: run-qemu deploying the
/// sealed model's key to the launch it performs, audited like any `bind`.
pub fn deploy(registry: &mut Registry, key_id: &KeyId, binding: &Binding) -> Result<()> {
    let version = crate::sealing::newest_active(registry, key_id).with_context(|| {
        format!("the registry has no active version of key {}: `cargo xtask seal` makes one", hex::encode(key_id))
    })?;
    if !registry.bindings(key_id, version)?.contains(binding) {
        lifecycle::bind(registry, key_id, version, binding, &actor("xtask run-qemu"))?;
    }
    Ok(())
}

/// A launch as a client pins it.
pub struct PinnedLaunch<'a> {
    /// Its TEE.
    pub tee: Tee,
    /// Its measurement.
    pub measurement: [u8; 48],
    /// The sealed model it is launched with.
    pub model: Option<&'a ModelDelivery>,
    /// The key the guest asks for.
    pub key_id: KeyId,
    /// Whether simulated evidence is trusted (plain mode).
    pub allow_simulated: bool,
}

impl PinnedLaunch<'_> {
    /// Writes `path`, a client's policy (`ampoule-client --policy`) pinning this launch, with `verifier` (the
    /// broker configuration's `[snp]` or `[tdx]` table, if any).
    pub fn write_policy(&self, path: &Path, verifier: &str) -> Result<()> {
        let model_digest =
            self.model.map(|m| format!("model_digest = \"{}\"\n", hex::encode(m.digest))).unwrap_or_default();
        let text = format!(
            "# What a client of this run pins (`ampoule-client --policy`), written by xtask.\n\
             allow_simulated = {}\n\n[[allow]]\ntee = \"{}\"\nmeasurement = \"{}\"\n{model_digest}key_id = \"{}\"\n{verifier}",
            self.allow_simulated,
            self.tee.as_str(),
            hex::encode(self.measurement),
            hex::encode(self.key_id),
        );
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

/// Starts a broker for a run of `image` in process over `options`' token and registry, its configuration in
/// `dir/broker.toml` and what a client pins in `dir/policy.toml`. The sealed model's key is bound to this launch
/// first (unless `bind_launch` is off); the default sealed model is sealed first when missing.
pub fn start_broker(dir: &Path, image: &[u8], options: &BrokerOptions) -> Result<RunningBroker> {
    std::fs::create_dir_all(dir)?;
    let root = crate::paths::repo_root();
    let model = match &options.sealed_model {
        Some(path) if *path == crate::sealing::default_sealed_model(&root, crate::manifest::DEFAULT_MODEL) => {
            let model = crate::manifest::named(&root, crate::manifest::DEFAULT_MODEL)?;
            Some(ModelDelivery::of(&crate::sealing::ensure_sealed(&root, &model, &options.state)?)?)
        }
        Some(path) => Some(ModelDelivery::of(path)?),
        None => None,
    };
    let (tee, measurement, verifier) = launch(image, options)?;
    let host_data = model.as_ref().map_or([0; 48], |m| launch_binding(tee, &m.digest));
    let binding = Binding { tee, measurement: measurement.to_vec(), host_data: host_data.to_vec() };
    let (custody, store, mut registry) = options.state.open()?;
    let key_id = match &model {
        Some(model) => {
            if options.bind_launch {
                deploy(&mut registry, &model.key_id, &binding)?;
            }
            model.key_id
        }
        None => {
            let (key_id, _key) = lifecycle::create(&mut registry, &custody, &actor("xtask run-qemu"))?;
            deploy(&mut registry, &key_id, &binding)?;
            key_id
        }
    };
    let allow_simulated = options.allow_simulated && tee == Tee::Plain;
    let header = "# Written by `cargo xtask run-qemu` for one run: the keys are in the registry below, wrapped by\n\
                  # the token's KEK; the broker serves in run-qemu's process.\nname = \"run-qemu\"\n";
    let config_path = dir.join("broker.toml");
    std::fs::write(&config_path, broker_config(header, &store, allow_simulated, &verifier)?)?;
    let launch = PinnedLaunch { tee, measurement, model: model.as_ref(), key_id, allow_simulated };
    let policy = dir.join("policy.toml");
    launch.write_policy(&policy, &verifier)?;
    let config = Config::load(&config_path)?;
    let log = dir.join("broker.log");
    let sink = broker::log::LogSink::file(&log).with_context(|| format!("opening {}", log.display()))?;
    let broker = Broker::with_registry(config, registry, custody, broker::system_clock())?.with_log(sink);
    let (port, shutdown, (broker, thread)) = serve(Arc::new(broker))?;
    let store = Arc::new(store);
    let config = config_path;
    Ok(RunningBroker { broker, port, key_id, model, log, policy, config, store, shutdown, thread: Some(thread) })
}

/// A broker serving on a loopback port on a thread of its own.
type Serving = (u16, Arc<AtomicBool>, (Arc<Broker>, JoinHandle<()>));

/// Serves `broker` on a fresh loopback port: the port, the flag that stops it, the broker and its thread.
fn serve(broker: Arc<Broker>) -> Result<Serving> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback port for the broker")?;
    let port = listener.local_addr()?.port();
    broker.announce(&format!("127.0.0.1:{port}"));
    let shutdown = Arc::new(AtomicBool::new(false));
    let (serving, stop) = (broker.clone(), shutdown.clone());
    let thread = std::thread::spawn(move || {
        let _ = broker::server::serve(serving, listener, stop);
    });
    Ok((port, shutdown, (broker, thread)))
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
