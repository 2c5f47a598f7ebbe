//! `inference.e2e_*`, `inference.session_over_model_plus_round_trip` and `gateway.overhead_p50_ms`: requests through
//! a serving guest under TCG, in one run: per-request HPKE with 1 and 8 clients, one attested session, a Health
//! round trip, and the REST gateway.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};

use super::inference::{E2E_REQUESTS_PER_CLIENT, ServingGuest, client_result, serving_guest};
use super::{Figure, median, round};
use crate::serve::{ReferenceCase, reference_cases, run_serving};

/// Latency and throughput of sealed requests through the guest under TCG, with 1 and then 8 concurrent clients.
pub(super) fn end_to_end(root: &Path, image: &Path) -> Result<Vec<Figure>> {
    let cases = std::sync::Arc::new(reference_cases(root)?);
    let ServingGuest { config, guest, policy, broker } = serving_guest(root, image, &[])?;
    let (report, done) = run_serving(&config, move || -> Result<([Load; 3], f64, [f64; 2])> {
        let loads = [load(guest, &policy, &cases, 1, false)?, load(guest, &policy, &cases, 8, false)?];
        let session = load(guest, &policy, &cases, 1, true)?;
        let health_ms = health_round_trip(guest, &policy)?;
        let [one, eight] = loads;
        Ok(([one, eight, session], health_ms, super::gateway::round_trips(guest, policy, &cases)?))
    })?;
    broker.stop();
    let ([one, eight, session], health_ms, [direct_ms, gateway_ms]) =
        client_result("the end-to-end run", &report, done)?;
    // The session load's requests are the 40 after the first 360 (1 and 8 clients) in the guest's records.
    let served_us: Vec<f64> = report
        .lines
        .iter()
        .filter_map(|l| protocol::console::Record::parse(l).ok())
        .filter(|r| r.msg == "served" && r.field("request") == Some("infer"))
        .filter_map(|r| r.field("us").and_then(|v| v.parse().ok()))
        .collect();
    let before = 9 * E2E_REQUESTS_PER_CLIENT;
    ensure!(served_us.len() >= before + E2E_REQUESTS_PER_CLIENT, "{} served inferences", served_us.len());
    let model_ms = median(served_us[before..before + E2E_REQUESTS_PER_CLIENT].to_vec()) / 1e3;
    let bound_ms = model_ms + health_ms;
    let session_ratio = session.p50_ms / bound_ms;
    let how = |load: &Load| {
        format!(
            "{} client(s) x {E2E_REQUESTS_PER_CLIENT} sealed Infer requests over loopback to the guest under TCG \
             (evidence checked once per connection, before the clock); latency is the client's round trip: seal, \
             send, guest opens + infers + seals, open; p50 {:.1} ms, max {:.1} ms",
            load.clients, load.p50_ms, load.max_ms
        )
    };
    let figure = |name, value: f64, unit, load: &Load| Figure {
        name,
        value: round(value, 1),
        unit,
        goal: None,
        meets_goal: None,
        how: how(load),
    };
    let overhead = gateway_ms - direct_ms;
    let gateway = Figure {
        name: "gateway.overhead_p50_ms",
        value: round(overhead, 2),
        unit: "ms",
        goal: Some("< 0.5"),
        meets_goal: Some(overhead < 0.5),
        how: format!(
            "p50 of 200 POST /v1/infer through ampoule-client gateway (HTTP keep-alive, JSON) {gateway_ms:.2} ms minus \
             p50 of 200 direct requests in an attested session {direct_ms:.2} ms, same guest under TCG, same run"
        ),
    };
    let session_figures = [
        Figure {
            name: "inference.e2e_latency_p50_ms_1_client_session",
            value: round(session.p50_ms, 2),
            unit: "ms",
            goal: None,
            meets_goal: None,
            how: format!(
                "{E2E_REQUESTS_PER_CLIENT} Infer requests in one attested session (AES-GCM records, one HPKE exchange \
                 for the connection) over loopback to the guest under TCG; per-request HPKE in the same run: {:.2} ms",
                one.p50_ms
            ),
        },
        Figure {
            name: "inference.session_over_model_plus_round_trip",
            value: round(session_ratio, 2),
            unit: "x",
            goal: Some("<= 2"),
            meets_goal: Some(session_ratio <= 2.0),
            how: format!(
                "session round trip p50 {:.2} ms / (the guest's handling time p50 {model_ms:.2} ms, its `served us`, + \
                 one round trip to the guest {health_ms:.2} ms, a Health request's p50), same run",
                session.p50_ms
            ),
        },
    ];
    Ok(vec![
        gateway,
        session_figures[0].clone(),
        session_figures[1].clone(),
        figure("inference.e2e_latency_p50_ms_1_client", one.p50_ms, "ms", &one),
        figure("inference.e2e_throughput_1_client", one.per_second, "req/s", &one),
        figure("inference.e2e_latency_p50_ms_8_clients", eight.p50_ms, "ms", &eight),
        figure("inference.e2e_throughput_8_clients", eight.per_second, "req/s", &eight),
    ])
}

pub(super) struct Load {
    pub(super) clients: usize,
    pub(super) p50_ms: f64,
    pub(super) max_ms: f64,
    pub(super) per_second: f64,
}

/// The p50 of 40 Health round trips: one round trip to the guest and back, doing nothing.
fn health_round_trip(guest: SocketAddr, policy: &broker::policy::Policy) -> Result<f64> {
    let mut connection = client::GuestClient::connect(guest, policy, Duration::from_secs(60))?;
    let mut times = Vec::new();
    for _ in 0..E2E_REQUESTS_PER_CLIENT {
        let sent = Instant::now();
        connection.health()?;
        times.push(sent.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(times))
}

/// `clients` connections (each verifies the evidence first, and opens a session if `session`), then all send their
/// requests at once, [`E2E_REQUESTS_PER_CLIENT`] each.
pub(super) fn load(
    guest: SocketAddr,
    policy: &broker::policy::Policy,
    cases: &[ReferenceCase],
    clients: usize,
    session: bool,
) -> Result<Load> {
    let connected: Vec<client::GuestClient> = (0..clients)
        .map(|_| {
            let mut connection = client::GuestClient::connect(guest, policy, Duration::from_secs(60))?;
            if session {
                connection.open_session()?;
            }
            Ok(connection)
        })
        .collect::<Result<_>>()?;
    let started = Instant::now();
    let latencies = std::thread::scope(|scope| -> Result<Vec<Vec<f64>>> {
        let running: Vec<_> = connected
            .into_iter()
            .map(|mut client| {
                scope.spawn(move || -> Result<Vec<f64>> {
                    let mut latencies = Vec::new();
                    for case in cases.iter().cycle().take(E2E_REQUESTS_PER_CLIENT) {
                        let sent = Instant::now();
                        client.infer(&case.features)?.map_err(|code| anyhow::anyhow!("refused: {}", code.as_str()))?;
                        latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                    }
                    Ok(latencies)
                })
            })
            .collect();
        running.into_iter().map(|r| r.join().map_err(|_| anyhow::anyhow!("a client panicked"))?).collect()
    })?;
    let wall = started.elapsed().as_secs_f64();
    let all: Vec<f64> = latencies.into_iter().flatten().collect();
    let max_ms = all.iter().copied().fold(0.0, f64::max);
    Ok(Load { clients, per_second: all.len() as f64 / wall, max_ms, p50_ms: median(all) })
}
