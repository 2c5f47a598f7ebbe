//! Two `ampoule-broker` replicas on one PostgreSQL registry (a private cluster) and one SoftHSM2 token serve guests
//! at once (the loader's key dance, simulated evidence). One is killed with `kill -9` in the middle of the load:
//! every key a guest received has its release row (the reply waits for the commit), the other replica keeps
//! serving, and a retirement is seen by every replica at its next decision.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use broker::custody::softhsm::{CONF_ENV, SoftHsm};
use broker::registry::local_cluster::LocalCluster;
use common::{MEASUREMENT_A, guest_rng};
use loader::{LoaderError, SimulatedAttester, StreamTransport, obtain_key};
use protocol::refusal::RefusalCode;

const KEY_ID: &str = "0123456789abcdef0123456789abcdef";
const KEY: [u8; 32] = [0x6b; 32];
/// The sealed model's digest the guests are launched bound to (plain mode: its first 32 bytes).
const DIGEST: [u8; 48] = [0xd1; 48];
const CLIENTS_PER_REPLICA: usize = 3;

/// A replica's process, killed when dropped (a failing assertion leaves no broker behind).
struct Replica(Child);

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Fleet {
    dir: PathBuf,
    softhsm: SoftHsm,
    _cluster: Option<LocalCluster>,
}

impl Fleet {
    /// The test key, imported from a key store of the old format and bound to the guests' launch.
    fn import_and_bind(&self) {
        let old_store = self.dir.join("keys.toml");
        std::fs::write(&old_store, format!("[keys]\n\"{KEY_ID}\" = \"{}\"\n", hex::encode(KEY))).unwrap();
        self.keys(&["import", old_store.to_str().unwrap()]);
        let (measurement, digest) = (hex::encode(MEASUREMENT_A), hex::encode(DIGEST));
        let bind = ["bind", KEY_ID, "--version", "1", "--tee", "plain", "--measurement", &measurement];
        self.keys(&[&bind[..], &["--model-digest", &digest]].concat());
    }

    fn config(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.toml"))
    }

    fn keys(&self, args: &[&str]) {
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
    fn start(&self, name: &str) -> (Replica, SocketAddr) {
        let (child, addr) = common::start_binary(&self.config(name), &[(CONF_ENV, &self.softhsm.conf())]);
        (Replica(child), addr)
    }
}

/// Where the fleet keeps its registry.
enum Store {
    /// A private PostgreSQL cluster shared by the replicas.
    Postgres,
    /// One SQLite file (one replica).
    Sqlite,
}

fn fleet(name: &str, store: Store) -> Fleet {
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
    Fleet { dir, softhsm, _cluster: cluster }
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).unwrap();
    std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
}

/// A dance's outcome: the key, or the broker's refusal (`None`: the connection failed).
type Outcome = Result<[u8; 32], Option<RefusalCode>>;

/// One key dance against `addr`: the connection's local address and the outcome.
fn dance(addr: SocketAddr) -> Option<(String, Outcome)> {
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

/// Dances against `addr` until `stop`: the local addresses that received the key, and when.
fn dance_until(addr: SocketAddr, stop: Arc<AtomicBool>, started: Instant) -> Vec<(String, Duration)> {
    let mut received = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        if let Some((local, Ok(key))) = dance(addr) {
            assert_eq!(key, KEY, "a guest received another key");
            received.push((local, started.elapsed()));
        }
    }
    received
}

#[test]
fn two_replicas_share_the_registry_survive_a_kill_9_and_see_a_retirement_at_once() {
    let fleet = fleet("kill", Store::Postgres);
    fleet.import_and_bind();

    let (mut a, addr_a) = fleet.start("a");
    let (b, addr_b) = fleet.start("b");
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = [addr_a, addr_b]
        .into_iter()
        .flat_map(|addr| std::iter::repeat_n(addr, CLIENTS_PER_REPLICA))
        .map(|addr| {
            let stop = stop.clone();
            (addr, std::thread::spawn(move || dance_until(addr, stop, started)))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    a.0.kill().unwrap();
    a.0.wait().unwrap();
    let killed_at = started.elapsed();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::SeqCst);
    let mut received = Vec::new();
    let mut b_after_kill = 0;
    for (addr, client) in clients {
        let got = client.join().unwrap();
        if addr == addr_b {
            b_after_kill += got.iter().filter(|(_, at)| *at > killed_at).count();
        }
        received.extend(got);
    }
    assert!(received.len() > 20, "the load was real: {} keys received", received.len());
    assert!(b_after_kill > 0, "replica b stopped serving when a was killed");

    // Every key received has its release row, from the replica that released it; no row names a key's bytes.
    let trail = export_audit(&fleet);
    let releases: std::collections::HashSet<String> = trail
        .iter()
        .filter(|r| r["action"] == "release")
        .filter_map(|r| r["detail"]["peer"].as_str().map(str::to_string))
        .collect();
    for (peer, _) in &received {
        assert!(releases.contains(peer), "a key released to {peer} has no audit row");
    }
    let decisions = trail.iter().filter(|r| r["action"] == "release" || r["action"] == "refusal").count();
    assert!(decisions >= received.len(), "{decisions} decision rows for {} keys received", received.len());
    assert!(trail.iter().any(|r| r["actor"] == "broker:a") && trail.iter().any(|r| r["actor"] == "broker:b"));
    let text = serde_json::to_string(&trail).unwrap();
    assert!(!text.contains(&hex::encode(KEY)), "the audit trail holds the key");

    // A retirement, made once, is seen by every replica at its next decision: with the only key bound to this
    // launch retired, the launch is unknown again.
    let (a, addr_a) = fleet.start("a");
    assert!(matches!(dance(addr_a), Some((_, Ok(_)))));
    fleet.keys(&["retire", KEY_ID]);
    for addr in [addr_a, addr_b] {
        let outcome = dance(addr).map(|(_, outcome)| outcome);
        assert_eq!(outcome, Some(Err(Some(RefusalCode::UnknownMeasurement))), "{addr} released a retired key");
    }
    drop((a, b));
    eprintln!(
        "{} keys received from two replicas, {b_after_kill} from b after a's kill -9; {decisions} decisions",
        received.len()
    );
}

fn export_audit(fleet: &Fleet) -> Vec<serde_json::Value> {
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

#[test]
fn a_tampered_wrapped_key_is_refused_audited_and_releases_nothing() {
    use broker::registry::{Database, Param, SqliteDatabase, Value};
    let fleet = fleet("tampered", Store::Sqlite);
    fleet.import_and_bind();
    let (replica, addr) = fleet.start("a");
    assert!(matches!(dance(addr), Some((_, Ok(key))) if key == KEY));
    // Someone with write access to the database flips one bit of the wrapped key.
    let mut db = SqliteDatabase::open(&fleet.dir.join("registry.db")).unwrap();
    db.transaction(&mut |s| {
        let rows = s.query("SELECT wrapped FROM model_keys", &[])?;
        let Some([Value::Bytes(wrapped)]) = rows.first().map(Vec::as_slice) else {
            anyhow::bail!("no wrapped key: {rows:?}")
        };
        let mut tampered = wrapped.clone();
        tampered[20] ^= 1;
        s.execute("UPDATE model_keys SET wrapped = $1", &[Param::Bytes(&tampered)])?;
        Ok(())
    })
    .unwrap();
    let outcome = dance(addr).map(|(_, outcome)| outcome);
    assert_eq!(outcome, Some(Err(Some(RefusalCode::Internal))), "a tampered key was released");
    drop(replica);
    let last = export_audit(&fleet).pop().unwrap();
    assert_eq!((last["action"].as_str(), last["detail"]["reason"].as_str()), (Some("refusal"), Some("internal")));
}
