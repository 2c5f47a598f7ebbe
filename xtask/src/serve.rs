//! run-qemu's client side: once the guest says `serving`, act as a client with `ampoule-client`'s library: verify
//! the guest's evidence against the run's broker policy, check health, send the model's reference inputs sealed,
//! and compare the opened outputs with onnxruntime's reference outputs.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use broker::config::Config;
use broker::policy::Policy;
use client::GuestClient;
use inference::served::mlp::OUTPUT_LABELS as CLASSES;
use protocol::console::Record;

use crate::qemu::{self, RunConfig, RunReport};

/// The reference vectors' tolerance (inference/tests/reference.rs says why it is right).
pub const TOLERANCE: f32 = 1e-5;

/// One reference case: input and onnxruntime's output.
pub struct ReferenceCase {
    /// The 30 raw measurements.
    pub features: Vec<f32>,
    /// onnxruntime's class probabilities.
    pub probabilities: Vec<f32>,
}

/// Reads `inference/model/reference.json`.
pub fn reference_cases(root: &Path) -> Result<Vec<ReferenceCase>> {
    let path = root.join("inference/model/reference.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)?;
    ensure!(value["cases"].as_array().is_some_and(|c| !c.is_empty()), "{} has no cases", path.display());
    let floats = |v: &serde_json::Value| -> Option<Vec<f32>> {
        v.as_array()?.iter().map(|x| x.as_f64().map(|f| f as f32)).collect()
    };
    value["cases"]
        .as_array()
        .context("reference.json has no cases")?
        .iter()
        .map(|c| {
            Ok(ReferenceCase {
                features: floats(&c["features"]).context("a case without features")?,
                probabilities: floats(&c["probabilities"]).context("a case without probabilities")?,
            })
        })
        .collect()
}

/// Whether a guest line is the `serving` record.
pub fn is_serving(line: &str) -> bool {
    Record::parse(line).is_ok_and(|r| r.msg == "serving")
}

/// Boots `config`; once the guest says `serving`, runs `client` on a thread, and ends the run when it returns.
/// Returns the run and the client's result (`None` if the guest never served: it failed or was refused).
pub fn run_serving<T: Send + 'static>(
    config: &RunConfig,
    client: impl FnOnce() -> T + Send + 'static,
) -> Result<(RunReport, Option<std::thread::Result<T>>)> {
    let mut client = Some(client);
    let mut running: Option<std::thread::JoinHandle<T>> = None;
    let report = qemu::run_until(config, |line| {
        if line.is_some_and(is_serving)
            && let Some(client) = client.take()
        {
            running = Some(std::thread::spawn(client));
        }
        running.as_ref().is_some_and(|r| r.is_finished())
    })?;
    Ok((report, running.map(|r| r.join())))
}

/// What the client saw.
#[derive(Debug)]
pub struct ClientSummary {
    /// Predicted class of each case.
    pub predictions: Vec<&'static str>,
    /// The largest difference to onnxruntime.
    pub worst_difference: f32,
    /// Connect + evidence verification.
    pub evidence: Duration,
    /// Each inference's round trip.
    pub latencies: Vec<Duration>,
}

/// The policy of a broker configuration file.
pub fn policy_of(config_path: &Path) -> Result<Policy> {
    Policy::from_config(&Config::load(config_path)?)
}

/// Runs the reference cases through the guest at `guest`.
pub fn check_reference_cases(guest: SocketAddr, policy: &Policy, cases: &[ReferenceCase]) -> Result<ClientSummary> {
    let started = Instant::now();
    let mut client = GuestClient::connect(guest, policy, Duration::from_secs(30))?;
    let evidence = started.elapsed();
    ensure!(client.health()? == (true, true), "the guest is not attested with its model loaded");
    let mut summary = ClientSummary { predictions: Vec::new(), worst_difference: 0.0, evidence, latencies: Vec::new() };
    for (i, case) in cases.iter().enumerate() {
        let t = Instant::now();
        let output =
            client.infer(&case.features)?.map_err(|code| anyhow::anyhow!("case {i} refused: {}", code.as_str()))?;
        summary.latencies.push(t.elapsed());
        ensure!(output.len() == case.probabilities.len(), "case {i}: {} outputs", output.len());
        for (got, want) in output.iter().zip(&case.probabilities) {
            summary.worst_difference = summary.worst_difference.max((got - want).abs());
            ensure!((got - want).abs() <= TOLERANCE, "case {i}: the guest says {got}, onnxruntime {want}");
        }
        let best = (0..output.len()).max_by(|&a, &b| output[a].total_cmp(&output[b])).unwrap_or(0);
        summary.predictions.push(CLASSES[best]);
    }
    Ok(summary)
}
