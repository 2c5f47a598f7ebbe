//! The embedded registry survives `kill -9`: the real `ampoule-broker` binary, over a SQLite registry and a
//! SoftHSM2 token, is killed at random points while clients perform valid key dances against it, many times over
//! one registry. Afterwards the registry opens, and every key a client received has its release row (the broker
//! replies only after the row is committed).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::fleet::{KEY, Store, dance, export_audit, fleet};

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
        if let Some((local, Ok(key))) = dance(addr) {
            assert_eq!(key, KEY, "a guest received another key");
            received.push(local);
        }
    }
    received
}

#[test]
fn kill_9_under_load_leaves_every_received_release_recorded() {
    let fleet = fleet("audit-kill", Store::Sqlite);
    fleet.import_and_bind();
    let mut received = Vec::new();
    for _ in 0..KILLS {
        let (mut broker, addr) = fleet.start("a");
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || dance_until(addr, stop))
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(5 + random_below(195)));
        broker.0.kill().unwrap();
        broker.0.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        for client in clients {
            received.extend(client.join().unwrap());
        }
    }
    let trail = export_audit(&fleet);
    let released: std::collections::HashSet<&str> =
        trail.iter().filter(|r| r["action"] == "release").filter_map(|r| r["detail"]["peer"].as_str()).collect();
    assert!(received.len() > KILLS, "the load was real: {} keys received over {KILLS} lives", received.len());
    for peer in &received {
        assert!(released.contains(peer.as_str()), "a key released to {peer} has no audit row");
    }
    eprintln!("{} audit rows, {} keys received over {KILLS} kill -9s", trail.len(), received.len());
}
