//! The broker under load on loopback: complete key dances (Hello -> Challenge -> Attest -> KeyRelease) by 1 and 8
//! concurrent clients against a broker serving over TCP, its keys in a registry (SQLite, then a private PostgreSQL
//! cluster, then two replicas sharing that cluster) wrapped by the development token, next to the raw rate of the
//! cryptography one release needs on the broker's side (verifying the simulated report's HMAC, unwrapping the key
//! in the token, sealing it with HPKE), measured in the same run on the same machine.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::Result;
use loader::{SimulatedAttester, StreamTransport, obtain_key};
use protocol::report::{SnpReport, simulated_report};
use protocol::seal::{EphemeralKeyPair, KEY_RELEASE_INFO, key_release_aad, seal};

use super::{Figure, median, round};
use crate::broker_state::{BrokerState, StoreKind};
use crate::dance::{BrokerOptions, start_broker};

/// Sessions per client in one measurement.
const SESSIONS_PER_CLIENT: usize = 150;

/// The system's randomness, as the `rand_core` generator HPKE takes.
fn system_rng() -> protocol::seal::rand_core::UnwrapErr<getrandom::SysRng> {
    protocol::seal::rand_core::UnwrapErr(getrandom::SysRng)
}

fn percentile(mut values: Vec<f64>, p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * p).round() as usize]
}

/// Runs `clients` clients doing `SESSIONS_PER_CLIENT` dances each against a broker over a fresh registry in
/// `store` (and `replicas` replicas of it, the clients spread over them); returns per-session latencies (ms) and
/// the rate.
fn load(clients: usize, store: StoreKind, replicas: usize) -> Result<(Vec<f64>, f64)> {
    let image = vec![0u8; 4096];
    let dir = std::env::temp_dir().join(format!("ampoule-bench-broker-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // No image and no sealing here: a fresh key in a registry of the bench's own, bound to a launch of no blob.
    let options = BrokerOptions {
        sealed_model: None,
        state: BrokerState { store, ..BrokerState::scratch(&dir) },
        ..BrokerOptions::for_checkout(&crate::paths::repo_root())
    };
    let first = start_broker(&dir, &image, &options)?;
    let mut brokers = vec![];
    for n in 1..replicas {
        brokers.push(first.replica(&format!("replica-{n}"))?);
    }
    brokers.insert(0, first);
    let measurement = crate::dance::plain_measurement(&image);
    let key_id = brokers[0].key_id;
    let ports: Vec<u16> = brokers.iter().map(|b| b.port).collect();
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let port = ports[client % ports.len()];
            std::thread::spawn(move || -> Result<Vec<f64>> {
                let mut latencies = Vec::with_capacity(SESSIONS_PER_CLIENT);
                for _ in 0..SESSIONS_PER_CLIENT {
                    let t = Instant::now();
                    let stream = TcpStream::connect(("127.0.0.1", port))?;
                    stream.set_nodelay(true)?;
                    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                    let mut attester = SimulatedAttester::new(measurement);
                    obtain_key(&mut StreamTransport(stream), &mut attester, &mut system_rng(), key_id, |_| {})
                        .map_err(|e| anyhow::anyhow!("a bench dance failed: {e:?}"))?;
                    latencies.push(t.elapsed().as_secs_f64() * 1e3);
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.join().map_err(|_| anyhow::anyhow!("a bench client panicked"))??);
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    // The replicas first: the first broker holds the cluster.
    for broker in brokers.into_iter().rev() {
        broker.stop();
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok((latencies, rate))
}

/// How often `op` runs per second, over 2000 runs.
fn ops_per_second(mut op: impl FnMut() -> Result<()>) -> Result<f64> {
    let (n, started) = (2000, Instant::now());
    for _ in 0..n {
        op()?;
    }
    Ok(f64::from(n) / started.elapsed().as_secs_f64())
}

/// Releases' worth of the broker's own cryptography per second on one thread: verify a simulated report, unwrap a
/// key in the token, seal it with HPKE to a fresh guest key. Also the rates of the verification and of the unwrap
/// alone.
fn raw_release_crypto_rate() -> Result<[f64; 3]> {
    let report = simulated_report(&[1; 48], &[2; 64], 0x30000);
    let guest = EphemeralKeyPair::generate(&mut system_rng()).public_key();
    let aad = key_release_aad(&[3; 16], 1);
    let custody = BrokerState::custody()?;
    let wrapped = custody.wrap(&[3; 16], 1, &[0x5a; 32])?;
    let verify = || -> Result<()> {
        let report = SnpReport::new(&report).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        report.verify_simulated().map_err(|e| anyhow::anyhow!("{e:?}"))
    };
    let unwrap = || custody.unwrap(&[3; 16], 1, &wrapped).map_err(|e| anyhow::anyhow!("{e:?}"));
    let verify_rate = ops_per_second(&verify)?;
    let unwrap_rate = ops_per_second(|| unwrap().map(|_| ()))?;
    let release_rate = ops_per_second(|| {
        verify()?;
        let key = unwrap()?;
        seal(&guest, &key[..], KEY_RELEASE_INFO, &aad, &mut system_rng())
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("{e:?}"))
    })?;
    Ok([verify_rate, unwrap_rate, release_rate])
}

fn figure(name: &'static str, value: f64, unit: &'static str, how: String) -> Figure {
    Figure { name, value, unit, goal: None, meets_goal: None, how }
}

/// The rate, p50 and p99 figures (named by `names`) of one configuration, with 1 and 8 clients; the two rates.
fn load_figures(
    figures: &mut Vec<Figure>,
    names: [[&'static str; 3]; 2],
    store: StoreKind,
    replicas: usize,
) -> Result<[f64; 2]> {
    let mut rates = [0.0; 2];
    for (i, clients) in [1usize, 8].into_iter().enumerate() {
        let (latencies, rate) = load(clients, store, replicas)?;
        let how = format!(
            "{clients} client(s) x {SESSIONS_PER_CLIENT} full dances over loopback TCP against {replicas} broker(s) over \
             {store:?} and the SoftHSM2 token (clients on the same 2 cores)"
        );
        let [rate_name, p50_name, p99_name] = names[i];
        figures.push(figure(rate_name, round(rate, 0), "1/s", how.clone()));
        figures.push(figure(p50_name, round(median(latencies.clone()), 2), "ms", how.clone()));
        figures.push(figure(p99_name, round(percentile(latencies, 0.99), 2), "ms", how));
        rates[i] = rate;
    }
    Ok(rates)
}

pub(super) fn figures() -> Result<Vec<Figure>> {
    let [raw_verify, raw_unwrap, raw_release] = raw_release_crypto_rate()?;
    let mut figures = vec![
        figure(
            "broker.raw_verify_per_s",
            round(raw_verify, 0),
            "1/s",
            "verifying a simulated report (HMAC-SHA-384) in a loop, one thread".into(),
        ),
        figure(
            "broker.raw_unwrap_per_s",
            round(raw_unwrap, 0),
            "1/s",
            "unwrapping a model key in the SoftHSM2 token (AES-GCM under the KEK), one thread".into(),
        ),
        figure(
            "broker.raw_release_crypto_per_s",
            round(raw_release, 0),
            "1/s",
            "verify + token unwrap + HPKE seal of the 32-byte key to a fresh X25519 key, one thread".into(),
        ),
    ];
    let sqlite = [
        ["broker.releases_per_s_1", "broker.latency_p50_ms_1", "broker.latency_p99_ms_1"],
        ["broker.releases_per_s_8", "broker.latency_p50_ms_8", "broker.latency_p99_ms_8"],
    ];
    let postgres = [
        ["broker.postgres.releases_per_s_1", "broker.postgres.latency_p50_ms_1", "broker.postgres.latency_p99_ms_1"],
        ["broker.postgres.releases_per_s_8", "broker.postgres.latency_p50_ms_8", "broker.postgres.latency_p99_ms_8"],
    ];
    let two = [
        [
            "broker.postgres_2_replicas.releases_per_s_1",
            "broker.postgres_2_replicas.latency_p50_ms_1",
            "broker.postgres_2_replicas.latency_p99_ms_1",
        ],
        [
            "broker.postgres_2_replicas.releases_per_s_8",
            "broker.postgres_2_replicas.latency_p50_ms_8",
            "broker.postgres_2_replicas.latency_p99_ms_8",
        ],
    ];
    let [_, sqlite_8] = load_figures(&mut figures, sqlite, StoreKind::Sqlite, 1)?;
    let [_, postgres_8] = load_figures(&mut figures, postgres, StoreKind::Postgres, 1)?;
    let [_, two_8] = load_figures(&mut figures, two, StoreKind::Postgres, 2)?;
    for (name, rate, store) in [
        ("broker.rate_over_raw_release_crypto", sqlite_8, "SQLite"),
        ("broker.postgres.rate_over_raw_release_crypto", postgres_8, "PostgreSQL"),
    ] {
        let ratio = rate / raw_release;
        figures.push(Figure {
            name,
            value: round(ratio, 2),
            unit: "x",
            goal: Some(">= 0.5"),
            meets_goal: Some(ratio >= 0.5),
            how: format!(
                "releases/s with 8 clients ({store}) / raw verify+unwrap+seal rate of one thread (the clients' own key \
                 generation and signing run on the same 2 cores; each decision is an audit row committed before its reply)"
            ),
        });
    }
    figures.push(figure(
        "broker.postgres_2_replicas_over_1",
        round(two_8 / postgres_8, 2),
        "x",
        "releases/s with 8 clients spread over 2 replicas / with 1 replica, one PostgreSQL cluster and one token"
            .into(),
    ));
    Ok(figures)
}
