//! Shared by the integration tests: the images under test, built once per test process.

#![allow(dead_code)]

pub mod simulated;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use protocol::message::KeyId;
use xtask::broker_state::{BrokerState, actor};
use xtask::dance::{BrokerOptions, RunningBroker, attach, free_port, start_broker};
use xtask::image::{self, BuildOptions, Variant};
use xtask::paths;
use xtask::qemu::{self, RunConfig, RunReport};

static BUILD_LOCK: Mutex<()> = Mutex::new(());
static RELEASE: OnceLock<PathBuf> = OnceLock::new();
static FAULT_INJECTION: OnceLock<PathBuf> = OnceLock::new();

/// The image of `variant`: from `cargo xtask test` (environment), or built here once per test process.
pub fn image(variant: Variant) -> PathBuf {
    let (var, cell) = match variant {
        Variant::Release => ("AMPOULE_IMAGE", &RELEASE),
        Variant::FaultInjection => ("AMPOULE_FAULT_INJECTION_IMAGE", &FAULT_INJECTION),
    };
    cell.get_or_init(|| {
        if let Some(path) = std::env::var_os(var) {
            return PathBuf::from(path);
        }
        // Both variants share the kernel's target directory: build one at a time, each into its own file.
        let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let root = paths::repo_root();
        image::build(variant, &BuildOptions::for_checkout(&root)).expect("building the image").path
    })
    .clone()
}

/// Boots `variant` with `config` adjustments and returns the report.
pub fn boot(variant: Variant, adjust: impl FnOnce(&mut RunConfig)) -> RunReport {
    let report = qemu::run(&boot_config(variant, adjust)).expect("QEMU runs");
    assert!(report.non_records().next().is_none(), "lines that are not records: {:?}", report.lines);
    report
}

/// Boots the fault-injection image and asks it to raise `kind`.
pub fn boot_injecting(kind: &str) -> RunReport {
    boot(Variant::FaultInjection, |c| c.fw_cfg.push(("opt/ampoule/inject".into(), kind.into())))
}

/// The configuration [`boot`] uses (QEMU installed, the image built, a 60 s timeout), adjusted by `adjust`.
pub fn boot_config(variant: Variant, adjust: impl FnOnce(&mut RunConfig)) -> RunConfig {
    qemu::ensure_installed(&paths::target_dir(&paths::repo_root())).expect("QEMU is installed");
    let mut config = RunConfig::new(image(variant));
    config.timeout = Duration::from_secs(60);
    adjust(&mut config);
    config
}

/// Parses a `0x...` or decimal field value.
pub fn number(value: &str) -> u64 {
    match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("not hex: {value}")),
        None => value.parse().unwrap_or_else(|_| panic!("not a number: {value}")),
    }
}

/// A serving run: its report and the broker it attested to.
pub struct Run {
    pub report: RunReport,
    pub broker: RunningBroker,
    _dir: PathBuf,
}

/// A test's registry of its own (the development token) with one fresh key: the test seals blobs under the key,
/// and binds what it needs to see a release or a refusal.
pub struct TestKey {
    /// The registry's state.
    pub state: BrokerState,
    /// The key's id.
    pub key_id: KeyId,
    /// Version 1 of the key.
    pub key: zeroize::Zeroizing<[u8; 32]>,
}

impl TestKey {
    /// A fresh registry in target/test-broker/NAME-registry/ with a fresh key.
    pub fn new(name: &str) -> TestKey {
        let dir = broker_dir(&format!("{name}-registry"));
        let state = BrokerState::scratch(&dir);
        let (custody, _store, mut registry) = state.open().unwrap();
        let (key_id, key) = broker::lifecycle::create(&mut registry, &custody, &actor("test")).unwrap();
        TestKey { state, key_id, key }
    }

    /// A blob of the MLP's weights under the key in chunks of `chunk_len`, at `path`.
    pub fn blob(&self, path: &Path, nonce_prefix: [u8; 7], chunk_len: u32) -> Vec<u8> {
        let root = paths::repo_root();
        let mlp = xtask::manifest::named(&root, "mlp").unwrap();
        let weights = std::fs::read(root.join(mlp.weights())).unwrap();
        let blob =
            protocol::sealed_blob::seal(&weights, mlp.model_id(), self.key_id, &self.key, nonce_prefix, chunk_len)
                .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &blob).unwrap();
        blob
    }

    /// Options whose broker serves this registry to a guest launched with the blob at `path` (the run binds the
    /// key's newest version to its launch).
    pub fn options(&self, path: &Path) -> BrokerOptions {
        BrokerOptions {
            sealed_model: Some(path.to_path_buf()),
            state: self.state.clone(),
            ..BrokerOptions::for_checkout(&paths::repo_root())
        }
    }

    /// The plain launch of the release image with the blob at `path`.
    pub fn launch(&self, path: &Path) -> broker::registry::Binding {
        let image = std::fs::read(image(Variant::Release)).unwrap();
        let digest = *xtask::model_delivery::header_of(path).unwrap().digest();
        broker::registry::Binding {
            tee: protocol::tee::Tee::Plain,
            measurement: xtask::dance::plain_measurement(&image).to_vec(),
            host_data: protocol::sealed_blob::launch_binding(protocol::tee::Tee::Plain, &digest).to_vec(),
        }
    }

    /// Binds version `version` of `key_id` in this registry.
    pub fn bind(&self, key_id: &KeyId, version: u32, binding: &broker::registry::Binding) {
        let mut registry = self.state.open().unwrap().2;
        broker::lifecycle::bind(&mut registry, key_id, version, binding, &actor("test")).unwrap();
    }

    /// A new key (or a new version of `rotate`) in this registry: its id and version.
    pub fn another(&self, rotate: Option<&KeyId>) -> (KeyId, u32) {
        let (custody, _store, mut registry) = self.state.open().unwrap();
        match rotate {
            Some(key_id) => {
                let (version, _) = broker::lifecycle::rotate(&mut registry, &custody, key_id, &actor("test")).unwrap();
                (*key_id, version)
            }
            None => (broker::lifecycle::create(&mut registry, &custody, &actor("test")).unwrap().0, 1),
        }
    }
}

/// The key a registry holds as the newest active version of `key_id`, unwrapped (tests look for it in outputs).
pub fn unwrapped_key(state: &BrokerState, key_id: &KeyId) -> zeroize::Zeroizing<[u8; 32]> {
    let (custody, _store, mut registry) = state.open().unwrap();
    let version = xtask::sealing::newest_active(&mut registry, key_id).unwrap();
    let wrapped = registry.versions(key_id).unwrap().into_iter().find(|v| v.version == version).unwrap().wrapped;
    custody.unwrap(key_id, version, &wrapped).unwrap()
}

/// The directory of a test's broker under target/test-broker/ (its `policy.toml` is the run's client policy).
pub fn broker_dir_path(name: &str) -> PathBuf {
    xtask::paths::target_dir(&xtask::paths::repo_root()).join("test-broker").join(name)
}

/// A fresh directory for a test's broker under target/test-broker/.
pub fn broker_dir(name: &str) -> PathBuf {
    let dir = broker_dir_path(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Boots the release image against a broker configured with `options`; once the guest serves, `client` runs
/// against its service port and the run ends.
pub fn run_serving(name: &str, options: BrokerOptions, client: impl FnOnce(u16) + Send + 'static) -> Run {
    run_serving_with(name, options, |_| {}, client)
}

/// [`run_serving`] with the run's configuration adjusted by `adjust` (after the network is attached).
pub fn run_serving_with(
    name: &str,
    options: BrokerOptions,
    adjust: impl FnOnce(&mut RunConfig),
    client: impl FnOnce(u16) + Send + 'static,
) -> Run {
    let bytes = std::fs::read(image(Variant::Release)).unwrap();
    let dir = broker_dir(name);
    let broker = start_broker(&dir, &bytes, &options).unwrap();
    let service_port = free_port().unwrap();
    let config = boot_config(Variant::Release, |c| {
        c.timeout = Duration::from_secs(120);
        attach(c, broker.port, service_port, broker.model.as_ref());
        adjust(c);
    });
    let (report, client) = xtask::serve::run_serving(&config, move || client(service_port)).unwrap();
    assert!(report.non_records().next().is_none(), "lines that are not records: {:?}", report.lines);
    if let Some(client) = client {
        client.expect("the client's checks hold");
    }
    Run { report, broker, _dir: dir }
}
