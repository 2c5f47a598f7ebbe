//! A fleet of `ampoule-broker` processes over one registry and one SoftHSM2 token of the test's own: the key
//! imported and bound through the `keys` commands, replicas started as processes (killed when dropped), and simple
//! guests dancing against them.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use broker::custody::softhsm::{CONF_ENV, SoftHsm};
use broker::registry::local_cluster::LocalCluster;
use loader::{LoaderError, SimulatedAttester, StreamTransport, obtain_key};
use protocol::refusal::RefusalCode;

use super::{MEASUREMENT_A, guest_rng};

pub const KEY_ID: &str = "0123456789abcdef0123456789abcdef";
pub const KEY: [u8; 32] = [0x6b; 32];
/// The sealed model's digest the guests are launched bound to (plain mode: its first 32 bytes).
pub const DIGEST: [u8; 48] = [0xd1; 48];

/// A replica's process, killed when dropped (a failing assertion leaves no broker behind).
pub struct Replica(pub Child);

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Fleet {
    pub dir: PathBuf,
    pub softhsm: SoftHsm,
    /// The private PostgreSQL cluster, if the registry is there (dropping it stops it).
    pub cluster: Option<LocalCluster>,
}

impl Fleet {
    /// The test key, imported from a key store of the old format and bound to the guests' launch.
    pub fn import_and_bind(&self) {
        let old_store = self.dir.join("keys.toml");
        std::fs::write(&old_store, format!("[keys]\n\"{KEY_ID}\" = \"{}\"\n", hex::encode(KEY))).unwrap();
        self.keys(&["import", old_store.to_str().unwrap()]);
        let (measurement, digest) = (hex::encode(MEASUREMENT_A), hex::encode(DIGEST));
        let bind = ["bind", KEY_ID, "--version", "1", "--tee", "plain", "--measurement", &measurement];
        self.keys(&[&bind[..], &["--model-digest", &digest]].concat());
    }

    pub fn config(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.toml"))
    }

    pub fn keys(&self, args: &[&str]) {
        let output = Command::new(env!("CARGO_BIN_EXE_ampoule-broker"))
            .arg("--config")
            .arg(self.config("a"))
            .arg("keys")
            .args(args)
            .env(CONF_ENV, self.softhsm.conf())
            .output()
            .unwrap();
        assert!(output.status.success(), "keys {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Starts replica `name`; it and the address it announced.
    pub fn start(&self, name: &str) -> (Replica, SocketAddr) {
        let (child, addr) = super::start_binary(&self.config(name), &[(CONF_ENV, &self.softhsm.conf())], None);
        (Replica(child), addr)
    }

    /// [`Fleet::start`], the replica's log written to `log`.
    pub fn start_logged(&self, name: &str, log: &Path) -> (Replica, SocketAddr) {
        let (child, addr) = super::start_binary(&self.config(name), &[(CONF_ENV, &self.softhsm.conf())], Some(log));
        (Replica(child), addr)
    }
}

/// Where the fleet keeps its registry.
pub enum Store {
    /// A private PostgreSQL cluster shared by the replicas.
    Postgres,
    /// One SQLite file (one replica).
    Sqlite,
}

pub fn fleet(name: &str, store: Store) -> Fleet {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "target", "replica-tests", name].iter().collect();
    let _ = std::fs::remove_dir_all(&dir);
    let softhsm = SoftHsm::ensure(&dir.join("softhsm")).unwrap();
    let token = softhsm.ensure_token("replicas").unwrap();
    let (cluster, store) = match store {
        Store::Postgres => {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let cluster = LocalCluster::start(&dir.join("pg"), port).unwrap();
            let password_file = dir.join("pg.password");
            let params = cluster.params();
            let password = params.split_whitespace().find_map(|kv| kv.strip_prefix("password=")).unwrap();
            write_private(&password_file, password);
            let store = format!(
                "postgres = \"host=127.0.0.1 port={port} user=ampoule dbname=postgres\"\npassword_file = \"{}\"\n",
                password_file.display()
            );
            (Some(cluster), store)
        }
        Store::Sqlite => (None, "sqlite = \"registry.db\"\n".to_string()),
    };
    for name in ["a", "b"] {
        let config = format!(
            "listen = \"127.0.0.1:0\"\nname = \"{name}\"\nallow_simulated = true\naudit_log = \"{name}.audit.jsonl\"\n\
             [custody]\nmodule = \"{}\"\ntoken = \"replicas\"\npin_file = \"{}\"\n[store]\n{store}",
            token.module.display(),
            token.pin_file.as_ref().unwrap().display(),
        );
        std::fs::write(dir.join(format!("{name}.toml")), config).unwrap();
    }
    Fleet { dir, softhsm, cluster }
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).unwrap();
    std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
}

/// A dance's outcome: the key, or the broker's refusal (`None`: the connection failed).
pub type Outcome = Result<[u8; 32], Option<RefusalCode>>;

/// One key dance against `addr`: the connection's local address and the outcome.
pub fn dance(addr: SocketAddr) -> Option<(String, Outcome)> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let local = stream.local_addr().ok()?.to_string();
    let mut transport = StreamTransport(stream);
    let mut host_data = [0u8; 32];
    host_data.copy_from_slice(&DIGEST[..32]);
    let mut attester = SimulatedAttester::new(MEASUREMENT_A).with_host_data(host_data);
    let key_id: [u8; 16] = hex::decode(KEY_ID).unwrap().try_into().unwrap();
    let outcome = match obtain_key(&mut transport, &mut attester, &mut guest_rng(), key_id, |_| {}) {
        Ok(released) => Ok(*released.key),
        Err(LoaderError::Refused(code)) => Err(Some(code)),
        Err(_) => Err(None),
    };
    Some((local, outcome))
}

/// The registry's audit trail, through `keys export-audit`.
pub fn export_audit(fleet: &Fleet) -> Vec<serde_json::Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_ampoule-broker"))
        .arg("--config")
        .arg(fleet.config("b"))
        .args(["keys", "export-audit"])
        .env(CONF_ENV, fleet.softhsm.conf())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}
