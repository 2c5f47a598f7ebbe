//! `gateway.overhead_p50_ms`: what `ampoule-client gateway` adds to a request. Against the same serving guest, in
//! the same run: one direct client (`GuestClient` in an attested session, as the gateway forwards), then one HTTP
//! client (keep-alive) through a gateway in this process; the figure is the difference of their p50 round trips.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use client::gateway::{Gateway, GatewayConfig};

use super::median;
use crate::serve::ReferenceCase;

/// Requests on each side.
const REQUESTS: usize = 200;

/// The p50 round trips (ms) of a direct client and of an HTTP client through a gateway, one after the other.
pub(super) fn round_trips(
    guest: SocketAddr,
    policy: broker::policy::Policy,
    cases: &[ReferenceCase],
) -> Result<[f64; 2]> {
    // Like for like: the gateway forwards in an attested session, so the direct client uses one too.
    let mut direct = client::GuestClient::connect(guest, &policy, Duration::from_secs(60))?;
    direct.open_session()?;
    let mut direct_ms = Vec::with_capacity(REQUESTS);
    for case in cases.iter().cycle().take(REQUESTS) {
        let sent = Instant::now();
        direct.infer(&case.features)?.map_err(|code| anyhow::anyhow!("refused: {}", code.as_str()))?;
        direct_ms.push(sent.elapsed().as_secs_f64() * 1e3);
    }
    drop(direct);

    let model = inference::served::SERVED.iter().find(|m| m.name == "mlp").expect("the MLP is served");
    let config = GatewayConfig {
        guest,
        policy,
        model,
        tokenizer: None,
        reverify: Duration::from_secs(3600),
        timeout: Duration::from_secs(60),
    };
    let gateway = Gateway::start(config, "127.0.0.1:0")?;
    let url = format!("http://{}/v1/infer", gateway.addr);
    let agent = ureq::Agent::new_with_defaults();
    let bodies: Vec<String> = cases.iter().map(|c| serde_json::json!({ "values": c.features }).to_string()).collect();
    // The first request verifies the guest: before the clock, as for the direct client.
    agent.post(&url).content_type("application/json").send(bodies[0].as_str())?;
    let mut gateway_ms = Vec::with_capacity(REQUESTS);
    for body in bodies.iter().cycle().take(REQUESTS) {
        let sent = Instant::now();
        let mut response = agent.post(&url).content_type("application/json").send(body.as_str())?;
        let text = response.body_mut().read_to_string()?;
        gateway_ms.push(sent.elapsed().as_secs_f64() * 1e3);
        ensure!(text.contains("\"outputs\""), "the gateway answered {text}");
    }
    gateway.stop();
    Ok([median(direct_ms), median(gateway_ms)])
}
