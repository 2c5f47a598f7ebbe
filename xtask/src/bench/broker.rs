//! The broker under load on loopback: complete key dances (Hello -> Challenge -> Attest -> KeyRelease) by 1 and 8
//! concurrent clients against a broker serving over TCP, next to the raw rate of the cryptography one release
//! needs on the broker's side (verifying the simulated report's HMAC and sealing the key with HPKE), measured in
//! the same run on the same machine.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::Result;
use loader::{SimulatedAttester, StreamTransport, obtain_key};
use protocol::report::{SnpReport, simulated_report};
use protocol::seal::{EphemeralKeyPair, KEY_RELEASE_INFO, key_release_aad, seal};

use super::{Figure, median, round};
use crate::broker_state::BrokerState;
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

/// Runs `clients` clients doing `SESSIONS_PER_CLIENT` dances each; returns per-session latencies (ms) and the rate.
fn load(clients: usize) -> Result<(Vec<f64>, f64)> {
    let image = vec![0u8; 4096];
    let dir = std::env::temp_dir().join(format!("ampoule-bench-broker-{}", std::process::id()));
    // No image and no sealing here: a fresh key in a registry of the bench's own, bound to a launch of no blob.
    let options = BrokerOptions {
        sealed_model: None,
        state: BrokerState::scratch(&dir),
        ..BrokerOptions::for_checkout(&crate::paths::repo_root())
    };
    let broker = start_broker(&dir, &image, &options)?;
    let measurement = crate::dance::plain_measurement(&image);
    let (port, key_id) = (broker.port, broker.key_id);
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
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
    broker.stop();
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

/// Releases' worth of the broker's own cryptography per second on one thread: verify a simulated report, seal a
/// key with HPKE to a fresh guest key.
fn raw_release_crypto_rate() -> Result<(f64, f64)> {
    let report = simulated_report(&[1; 48], &[2; 64], 0x30000);
    let guest = EphemeralKeyPair::generate(&mut system_rng()).public_key();
    let aad = key_release_aad(&[3; 16], 1);
    let verify = || -> Result<()> {
        let report = SnpReport::new(&report).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        report.verify_simulated().map_err(|e| anyhow::anyhow!("{e:?}"))
    };
    let seal_key = || seal(&guest, &[0x5a; 32], KEY_RELEASE_INFO, &aad, &mut system_rng()).map(|_| ());
    let verify_rate = ops_per_second(&verify)?;
    let release_rate = ops_per_second(|| {
        verify()?;
        seal_key().map_err(|e| anyhow::anyhow!("{e:?}"))
    })?;
    Ok((verify_rate, release_rate))
}

pub(super) fn figures() -> Result<Vec<Figure>> {
    let (raw_verify, raw_release) = raw_release_crypto_rate()?;
    let mut figures = vec![
        Figure {
            name: "broker.raw_verify_per_s",
            value: round(raw_verify, 0),
            unit: "1/s",
            goal: None,
            meets_goal: None,
            how: "verifying a simulated report (HMAC-SHA-384) in a loop, one thread".into(),
        },
        Figure {
            name: "broker.raw_release_crypto_per_s",
            value: round(raw_release, 0),
            unit: "1/s",
            goal: None,
            meets_goal: None,
            how: "verify + HPKE seal of a 32-byte key to a fresh X25519 key, one thread".into(),
        },
    ];
    for clients in [1usize, 8] {
        let (latencies, rate) = load(clients)?;
        let how = format!(
            "{clients} client(s) x {SESSIONS_PER_CLIENT} full dances over loopback TCP (clients on the same 2 cores)"
        );
        figures.push(Figure {
            name: if clients == 1 { "broker.releases_per_s_1" } else { "broker.releases_per_s_8" },
            value: round(rate, 0),
            unit: "1/s",
            goal: None,
            meets_goal: None,
            how: how.clone(),
        });
        figures.push(Figure {
            name: if clients == 1 { "broker.latency_p50_ms_1" } else { "broker.latency_p50_ms_8" },
            value: round(median(latencies.clone()), 2),
            unit: "ms",
            goal: None,
            meets_goal: None,
            how: how.clone(),
        });
        figures.push(Figure {
            name: if clients == 1 { "broker.latency_p99_ms_1" } else { "broker.latency_p99_ms_8" },
            value: round(percentile(latencies, 0.99), 2),
            unit: "ms",
            goal: None,
            meets_goal: None,
            how,
        });
        if clients == 8 {
            let ratio = rate / raw_release;
            figures.push(Figure {
                name: "broker.rate_over_raw_release_crypto",
                value: round(ratio, 2),
                unit: "x",
                goal: Some(">= 0.5"),
                meets_goal: Some(ratio >= 0.5),
                how: "releases/s with 8 clients / raw verify+seal rate of one thread (the clients' own key generation \
                      and signing run on the same 2 cores)"
                    .into(),
            });
        }
    }
    Ok(figures)
}
