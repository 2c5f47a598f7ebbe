//! The audit log survives `kill -9`: the real `ampoule-broker` binary is killed at random points while clients
//! perform valid key dances against it, many times over one log. Afterwards every line is one JSON record, and
//! every key a client received has its `released` record (the broker replies only after the record is durable).

mod common;

use std::net::{SocketAddr, TcpStream};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{KEY_A, KEY_ID_A, MEASUREMENT_A, TempDir, guest_rng};
use loader::{SimulatedAttester, StreamTransport, obtain_key};

/// How many times the broker is killed. Each life lasts 5-200 ms of load.
const KILLS: usize = 40;
/// Clients dancing at once.
const CLIENTS: usize = 4;

fn random_below(n: u64) -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes) % n
}

/// Dances until `stop`; returns the local address of each connection that received the key.
fn dance_until(addr: SocketAddr, stop: Arc<AtomicBool>) -> Vec<String> {
    let mut received = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let local = stream.local_addr().unwrap().to_string();
        let mut transport = StreamTransport(stream);
        let mut attester = SimulatedAttester::new(MEASUREMENT_A);
        if obtain_key(&mut transport, &mut attester, &mut guest_rng(), KEY_ID_A, |_| {}).is_ok_and(|k| *k.key == KEY_A)
        {
            received.push(local);
        }
    }
    received
}

#[test]
fn kill_9_under_load_leaves_only_whole_records_and_every_received_release_recorded() {
    let dir = std::env::temp_dir().join(format!("ampoule-audit-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());
    std::fs::write(
        dir.join("keys.toml"),
        format!("[keys]\n\"{}\" = \"{}\"\n", hex::encode(KEY_ID_A), hex::encode(KEY_A)),
    )
    .unwrap();
    let config = dir.join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nallow_simulated = true\naudit_log = \"audit.jsonl\"\nkey_store = \"keys.toml\"\n\
             [[allow]]\ntee = \"plain\"\nmeasurement = \"{}\"\nkey_id = \"{}\"\n",
            hex::encode(MEASUREMENT_A),
            hex::encode(KEY_ID_A)
        ),
    )
    .unwrap();
    let mut received = Vec::new();
    for _ in 0..KILLS {
        let (mut broker, addr) = common::start_binary(&config, &[]);
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || dance_until(addr, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(5 + random_below(195)));
        broker.kill().unwrap();
        broker.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        for client in clients {
            received.extend(client.join().unwrap());
        }
    }
    let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON record ({e}): {line:?}")))
        .collect();
    assert!(text.is_empty() || text.ends_with('\n'));
    let released: std::collections::HashSet<&str> =
        records.iter().filter(|r| r["decision"] == "released").filter_map(|r| r["peer"].as_str()).collect();
    assert!(received.len() > KILLS, "the load was real: {} keys received over {KILLS} lives", received.len());
    for peer in &received {
        assert!(released.contains(peer.as_str()), "a key released to {peer} has no audit record");
    }
    let repairs = records.iter().filter(|r| r["event"] == "torn_record_removed").count();
    eprintln!(
        "{} records, {} keys received, {repairs} torn records removed at start-up",
        records.len(),
        received.len()
    );
}
