//! Two `ampoule-broker` replicas on one PostgreSQL registry (a private cluster) and one SoftHSM2 token serve guests
//! at once (the loader's key dance, simulated evidence). One is killed with `kill -9` in the middle of the load:
//! every key a guest received has its release row (the reply waits for the commit), the other replica keeps
//! serving, and a retirement is seen by every replica at its next decision.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::fleet::{KEY, KEY_ID, Store, dance, export_audit, fleet};
use protocol::refusal::RefusalCode;

const CLIENTS_PER_REPLICA: usize = 3;

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
