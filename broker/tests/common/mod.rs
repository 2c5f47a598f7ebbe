//! A broker in process, with a controllable clock, and raw and loader-driven clients over socket pairs.

#![allow(dead_code)]

pub mod fleet;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use broker::Broker;
use broker::config::{AllowEntry, Config};
use broker::keys::KeyStore;
use protocol::frame::{MAX_FRAME_LEN, frame, read_frame};
use protocol::message::{KeyId, Message, PROTOCOL_VERSION};
use protocol::tee::Tee;
use zeroize::Zeroizing;

pub const MEASUREMENT_A: [u8; 48] = [0xa1; 48];
pub const MEASUREMENT_B: [u8; 48] = [0xb2; 48];
pub const MEASUREMENT_SNP: [u8; 48] = [0xc3; 48];
pub const KEY_ID_A: KeyId = [0x0a; 16];
pub const KEY_ID_B: KeyId = [0x0b; 16];
pub const KEY_ID_SNP: KeyId = [0x0c; 16];
pub const KEY_A: [u8; 32] = [0x5a; 32];
pub const KEY_B: [u8; 32] = [0x5b; 32];
pub const NONCE_LIFETIME_SECS: u64 = 10;

/// A broker and what tests need to observe it.
pub struct TestBroker {
    pub broker: Arc<Broker>,
    pub clock: Arc<AtomicU64>,
    pub audit_log: PathBuf,
    _dir: TempDir,
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> TempDir {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ampoule-broker-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// A broker allowing A -> key A and B -> key B (plain), and an SNP measurement -> key SNP.
pub fn test_broker(allow_simulated: bool) -> TestBroker {
    let dir = temp_dir();
    let entry = |tee: &str, m: &[u8; 48], k: &KeyId| AllowEntry {
        tee: tee.into(),
        measurement: hex::encode(m),
        key_id: hex::encode(k),
        model_digest: None,
    };
    let config = Config {
        allow_simulated,
        nonce_lifetime_secs: NONCE_LIFETIME_SECS,
        message_timeout_ms: 2000,
        session_timeout_ms: 10_000,
        max_connections: 8,
        allow: vec![
            entry("plain", &MEASUREMENT_A, &KEY_ID_A),
            entry("plain", &MEASUREMENT_B, &KEY_ID_B),
            entry("snp", &MEASUREMENT_SNP, &KEY_ID_SNP),
        ],
        ..Config::with_defaults(dir.0.join("audit.jsonl"))
    };
    let mut keys = KeyStore::default();
    keys.insert(KEY_ID_A, Zeroizing::new(KEY_A));
    keys.insert(KEY_ID_B, Zeroizing::new(KEY_B));
    keys.insert(KEY_ID_SNP, Zeroizing::new([0x5c; 32]));
    let clock = Arc::new(AtomicU64::new(1_800_000_000_000));
    let reader = clock.clone();
    let audit_log = config.audit_log.clone().expect("an audit log");
    let broker = Broker::new(config, keys, Box::new(move || reader.load(Ordering::SeqCst))).unwrap();
    TestBroker { broker: Arc::new(broker), clock, audit_log, _dir: dir }
}

impl TestBroker {
    /// A client end whose other end a broker thread serves.
    pub fn connect(&self) -> UnixStream {
        let (client, mut server) = UnixStream::pair().unwrap();
        let broker = self.broker.clone();
        std::thread::spawn(move || broker.serve_connection(&mut server, "test-peer"));
        client
    }

    /// The audit log's lines, parsed.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("every audit line is JSON"))
            .collect()
    }

    pub fn advance_secs(&self, secs: u64) {
        self.clock.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

/// A raw client: sends and receives messages.
pub struct Client(pub UnixStream);

impl Client {
    pub fn send(&mut self, message: &Message) {
        self.0.write_all(&frame(&message.encode().unwrap()).unwrap()).unwrap();
    }
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).unwrap();
    }
    pub fn recv(&mut self) -> Option<Message> {
        let body = read_frame(MAX_FRAME_LEN, |buf| self.0.read_exact(buf)).ok()?;
        Some(Message::decode(&body).unwrap())
    }
    /// Hello, then the challenge's nonce.
    pub fn hello(&mut self, tee: Tee) -> [u8; 32] {
        self.send(&Message::Hello { version: PROTOCOL_VERSION, tee });
        match self.recv() {
            Some(Message::Challenge { nonce }) => nonce,
            other => panic!("expected a challenge, got {other:?}"),
        }
    }
}

/// The system's randomness for the guest's ephemeral keys in tests.
pub fn guest_rng() -> protocol::seal::rand_core::UnwrapErr<getrandom::SysRng> {
    protocol::seal::rand_core::UnwrapErr(getrandom::SysRng)
}

/// Starts the `ampoule-broker` binary with `config` (and `envs` in its environment); it and the address it
/// announced. Its log is drained so that it never blocks on a full pipe: into `log`, if given.
pub fn start_binary(
    config: &std::path::Path,
    envs: &[(&str, &std::path::Path)],
    log: Option<&std::path::Path>,
) -> (std::process::Child, std::net::SocketAddr) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ampoule-broker"))
        .arg("--config")
        .arg(config)
        .envs(envs.iter().map(|(k, v)| (*k, *v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut sink: Box<dyn Write + Send> = match log {
        Some(path) => Box::new(std::fs::File::create(path).unwrap()),
        None => Box::new(std::io::sink()),
    };
    let mut line = String::new();
    let addr = loop {
        line.clear();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.wait();
            panic!("the broker ({}) exited before listening", config.display());
        }
        let _ = sink.write_all(line.as_bytes());
        if let Some(addr) = Broker::announced_addr(&line) {
            break addr;
        }
    };
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut sink));
    (child, addr)
}
