//! The development broker's state, `target/ampoule/broker/`, kept the way a deployment keeps a broker's:
//!
//! - `softhsm/`: a SoftHSM2 installation with one token, [`TOKEN_LABEL`], whose KEK wraps every model key; its user
//!   PIN in `softhsm/ampoule-dev.pin` (mode 0600). Every process finds it through `SOFTHSM2_CONF`, which the
//!   workspace's `.cargo/config.toml` sets for `cargo xtask`, `cargo test` and `cargo run`.
//! - the registry: `registry.db` (SQLite, the default) or a private PostgreSQL cluster in `postgres/` (`--store
//!   postgres`), started for as long as a command needs it;
//! - `broker.toml`: the standalone broker over that token and registry; `policy.toml`: what a client pins (the
//!   allowlist `ampoule-client --policy` checks a guest against).
//!
//! No key is ever written here unwrapped: `cargo xtask seal` and run-qemu go through `broker::lifecycle`, as
//! `ampoule-broker keys` does. A test that wants a registry of its own (to see a refusal) takes a
//! [`BrokerState::scratch`] one: the same token, another registry.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, ensure};
use broker::custody::softhsm::{CONF_ENV, SoftHsm};
use broker::custody::{KeyCustody, TokenConfig};
use broker::lifecycle::Actor;
use broker::registry::local_cluster::LocalCluster;
use broker::registry::{Registry, StoreConfig};

/// The development token's label.
pub const TOKEN_LABEL: &str = "ampoule-dev";

/// Where a broker state keeps its registry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// One SQLite file, `registry.db`: one machine, one broker.
    #[default]
    Sqlite,
    /// A private PostgreSQL cluster in `postgres/`, on 127.0.0.1: what several replicas share.
    Postgres,
}

impl StoreKind {
    /// Its name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
        }
    }
}

/// A broker state: a registry in `dir`, its keys wrapped by the development token.
#[derive(Clone, Debug)]
pub struct BrokerState {
    /// Where the registry and the configuration files are.
    pub dir: PathBuf,
    /// Which registry.
    pub store: StoreKind,
}

/// An open registry's place: its `[store]`, and the cluster serving it (stopped when this is dropped).
pub struct OpenStore {
    /// The `[store]` a broker names.
    pub config: StoreConfig,
    cluster: Option<LocalCluster>,
}

impl OpenStore {
    /// A connection to the registry.
    pub fn registry(&self) -> Result<Registry> {
        self.config.open()
    }

    /// Whether a cluster of this process serves it.
    pub fn is_local_cluster(&self) -> bool {
        self.cluster.is_some()
    }
}

impl BrokerState {
    /// The development state of the checkout at `root`, its registry in `store`.
    pub fn for_checkout(root: &Path, store: StoreKind) -> BrokerState {
        BrokerState { dir: crate::paths::image_dir(root).join("broker"), store }
    }

    /// A state of its own in `dir` (a SQLite registry; the development token): tests set its registry up as they
    /// need, without touching the development one.
    pub fn scratch(dir: &Path) -> BrokerState {
        BrokerState { dir: dir.to_path_buf(), store: StoreKind::Sqlite }
    }

    /// The development token, made (with fresh random PINs) when missing.
    pub fn token() -> Result<TokenConfig> {
        // One maker at a time in this process: two threads must not both initialize the token.
        static MAKING: Mutex<()> = Mutex::new(());
        let _making = MAKING.lock().unwrap_or_else(|e| e.into_inner());
        let conf = std::env::var_os(CONF_ENV).map(PathBuf::from).with_context(|| {
            format!("{CONF_ENV} is not set: run through cargo (the workspace's .cargo/config.toml sets it)")
        })?;
        let dir = conf.parent().context("SOFTHSM2_CONF names no directory")?;
        if !Path::new(broker::custody::softhsm::MODULE).exists() {
            crate::install::ensure_debian_packages(
                &["softhsm2"],
                "the broker's keys are wrapped by a PKCS#11 token: SoftHSM2 in development",
                dir.parent().unwrap_or(dir),
            )?;
        }
        let softhsm = SoftHsm::ensure(dir)?;
        ensure!(softhsm.conf() == conf, "{CONF_ENV} must name a file called softhsm2.conf, not {}", conf.display());
        softhsm.ensure_token(TOKEN_LABEL)
    }

    /// The token's KEK, generated in the token the first time.
    pub fn custody() -> Result<KeyCustody> {
        KeyCustody::open_or_create_kek(&Self::token()?)
    }

    /// The registry's place, its cluster started when it is PostgreSQL.
    pub fn open_store(&self) -> Result<OpenStore> {
        match self.store {
            StoreKind::Sqlite => Ok(OpenStore {
                config: StoreConfig { sqlite: Some(self.dir.join("registry.db")), postgres: None, password_file: None },
                cluster: None,
            }),
            StoreKind::Postgres => {
                crate::install::ensure_debian_packages(
                    &["postgresql"],
                    "--store postgres keeps the registry in a private PostgreSQL cluster",
                    &self.dir,
                )?;
                // A root caller runs the server as `postgres`, which must reach the cluster's directory: the state's
                // may be entered by others (0711), not listed.
                std::fs::create_dir_all(&self.dir)?;
                let mode = std::fs::metadata(&self.dir)?.permissions().mode();
                if mode & 0o001 == 0 {
                    std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode((mode & 0o700) | 0o011))?;
                }
                let cluster_dir = self.dir.join("postgres");
                let cluster = LocalCluster::start(&cluster_dir, cluster_port(&cluster_dir)?)?;
                Ok(OpenStore { config: cluster.store_config(), cluster: Some(cluster) })
            }
        }
    }

    /// The token, the registry's place and a connection to it. A key store of the older format left in the state
    /// (`keys.toml`, which kept keys in plaintext) is imported first, wrapped, and erased.
    pub fn open(&self) -> Result<(KeyCustody, OpenStore, Registry)> {
        let custody = Self::custody()?;
        let store = self.open_store()?;
        let mut registry = store.registry()?;
        let old = self.dir.join("keys.toml");
        if old.exists() {
            let imported = broker::lifecycle::import_toml(&mut registry, &custody, &old, &actor("xtask"))?;
            eprintln!(
                "xtask: wrapped the {} key(s) of the old plaintext key store {} into the registry, and erased it",
                imported.len(),
                old.display()
            );
        }
        Ok((custody, store, registry))
    }

    /// Writes `broker.toml`: the standalone broker (`ampoule-broker --config`) over the token and `store`, trusting
    /// simulated evidence (development only).
    pub fn write_broker_config(&self, store: &OpenStore) -> Result<PathBuf> {
        let header = "# The development broker, written by xtask: its keys are in the registry below, wrapped by the\n\
                      # token's KEK (`ampoule-broker --config broker.toml keys list`). Serve: `ampoule-broker --config`.\n\
                      listen = \"127.0.0.1:7000\"\nname = \"dev\"\n";
        let path = self.dir.join("broker.toml");
        std::fs::write(&path, broker_config(header, store, true, "")?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

/// The port of the cluster in `dir`: the one it had (kept in `dir/port`, so that `broker.toml` stays right) while
/// it is free, else a new free one.
fn cluster_port(dir: &Path) -> Result<u16> {
    let file = dir.join("port");
    let kept = std::fs::read_to_string(&file).ok().and_then(|text| text.trim().parse::<u16>().ok());
    if let Some(port) = kept.filter(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()) {
        return Ok(port);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    std::fs::create_dir_all(dir)?;
    std::fs::write(&file, format!("{port}\n"))?;
    Ok(port)
}

/// A broker configuration: `header`, then `allow_simulated`, the token, `store` and `tables` (a verifier's).
pub fn broker_config(header: &str, store: &OpenStore, allow_simulated: bool, tables: &str) -> Result<String> {
    let token = BrokerState::token()?;
    let pin_file = token.pin_file.as_ref().context("the development token has a PIN file")?;
    let store_table = match (&store.config.sqlite, &store.config.postgres, &store.config.password_file) {
        (Some(path), _, _) => format!("sqlite = {:?}\n", path.display().to_string()),
        (None, Some(params), Some(password)) => {
            format!("postgres = {params:?}\npassword_file = {:?}\n", password.display().to_string())
        }
        _ => anyhow::bail!("a store without a place"),
    };
    let cluster_note = if store.is_local_cluster() {
        "# The PostgreSQL cluster runs while an xtask command uses it (`run-qemu --store postgres`).\n"
    } else {
        ""
    };
    Ok(format!(
        "{header}allow_simulated = {allow_simulated}  # plain-mode guests prove nothing: development only\n\n\
         [custody]\nmodule = {:?}\ntoken = {:?}\npin_file = {:?}\n\n{cluster_note}[store]\n{store_table}{tables}",
        token.module.display().to_string(),
        token.token,
        pin_file.display().to_string(),
    ))
}

/// `name` acting now, for the audit trail.
pub fn actor(name: &str) -> Actor {
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Actor { name: name.into(), now_ms: u64::try_from(now_ms).unwrap_or(u64::MAX) }
}
