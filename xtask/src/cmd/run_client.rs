//! run-qemu's client side once the guest serves: the model's reference inputs, sealed, through `ampoule-client`'s
//! library, each output checked against onnxruntime's; then the guest is shut down.

use std::process::ExitCode;
use std::time::Duration;

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Result, bail};
use broker::policy::Policy;
use xtask::manifest::{DEFAULT_MODEL, ModelManifest, SmokeInput};
use xtask::qemu::RunConfig;

use super::run::report_run;

/// A run whose guest serves on `service_port` and whose client trusts what `policy_file` allows.
pub(super) struct ClientRun<'a> {
    /// The launch.
    pub config: RunConfig,
    /// The guest's service port on 127.0.0.1.
    pub service_port: u16,
    /// The broker configuration the client takes its policy from.
    pub policy_file: &'a Path,
    /// The simulated platform's launch digest the run must report, if any.
    pub expected_digest: Option<&'a str>,
}

impl ClientRun<'_> {
    fn guest(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.service_port))
    }

    fn policy(&self) -> Result<Policy> {
        xtask::serve::policy_of(self.policy_file)
    }
}

/// Boots the guest and, once it serves, runs `model`'s inputs through it as a client (its reference inputs, or one
/// made from its manifest); then shuts it down.
pub(super) fn run_with_client(root: &Path, model: &ModelManifest, run: ClientRun<'_>) -> Result<ExitCode> {
    match model.name.as_str() {
        DEFAULT_MODEL => check_mlp(root, run),
        xtask::minilm::NAME => check_minilm(root, run),
        _ => check_from_manifest(root, model, run),
    }
}

/// The MLP's reference inputs, each output checked against onnxruntime's.
fn check_mlp(root: &Path, run: ClientRun<'_>) -> Result<ExitCode> {
    let (policy, guest) = (run.policy()?, run.guest());
    let cases = xtask::serve::reference_cases(root)?;
    let (exit, summary) = serve_and_check(&run, move || xtask::serve::check_reference_cases(guest, &policy, &cases))?;
    let Some(summary) = summary else { return exit.and_then(|_| bail!("the guest never said it was serving")) };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut latencies: Vec<f64> = summary.latencies.iter().map(|d| ms(*d)).collect();
    latencies.sort_by(f64::total_cmp);
    eprintln!("xtask: predictions: {}", summary.predictions.join(" "));
    eprintln!(
        "xtask: {} reference inputs sealed to the guest, {} outputs opened, all within {:e} of onnxruntime \
         (largest difference {:e}); first connection: connected and evidence verified in {:.1} ms; inference round trip p50 {:.1} ms, max {:.1} ms",
        latencies.len(),
        summary.predictions.len(),
        xtask::serve::TOLERANCE,
        summary.worst_difference,
        ms(summary.evidence),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
    );
    exit
}

/// paraphrase-MiniLM-L3-v2: each reference sentence's token ids sealed to the guest, each embedding opened and
/// checked.
fn check_minilm(root: &Path, run: ClientRun<'_>) -> Result<ExitCode> {
    let (policy, guest) = (run.policy()?, run.guest());
    let cases = xtask::minilm::reference_cases(root)?;
    let (exit, summary) = serve_and_check(&run, move || xtask::minilm::check_embeddings(guest, &policy, &cases))?;
    let Some(summary) = summary else { return exit.and_then(|_| bail!("the guest never said it was serving")) };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let per_token: Vec<String> =
        summary.latencies.iter().map(|(tokens, d)| format!("{tokens}:{:.0}", ms(*d))).collect();
    eprintln!(
        "xtask: {} sentences' token ids sealed to the guest, {} embeddings of 384 values opened, all within {:e} of \
         onnxruntime (largest difference {:e}); evidence verified in {:.1} ms; round trips (tokens:ms) {}",
        summary.latencies.len(),
        summary.latencies.len(),
        xtask::minilm::TOLERANCE,
        summary.worst_difference,
        ms(summary.evidence),
        per_token.join(" "),
    );
    exit
}

/// A model without reference outputs (your own): one input made from its manifest (each value the middle of its
/// range, or the token ids 0, 1, 2, ... up to 8 of them), sealed to the guest; the output opened and checked for its
/// length and finiteness only. `ampoule-client` sends real inputs.
fn check_from_manifest(root: &Path, model: &ModelManifest, run: ClientRun<'_>) -> Result<ExitCode> {
    let (policy, guest) = (run.policy()?, run.guest());
    let input = SmokeInput::of(root, model)?;
    let (name, output_len) = (model.name.clone(), model.output.len);
    let (exit, output) = serve_and_check(&run, move || {
        let mut client = client::GuestClient::connect(guest, &policy, Duration::from_secs(60))?;
        anyhow::ensure!(client.health()? == (true, true), "the guest is not attested with its model loaded");
        let output = match &input {
            SmokeInput::Values(values) => client.infer(values)?,
            SmokeInput::Tokens(ids) => client.embed(ids)?,
        };
        let output = output.map_err(|code| anyhow::anyhow!("the guest refused the input: {}", code.as_str()))?;
        anyhow::ensure!(output.len() == output_len, "{} output values, not the manifest's {output_len}", output.len());
        anyhow::ensure!(output.iter().all(|v| v.is_finite()), "an output value is not finite");
        Ok(output.len())
    })?;
    let Some(len) = output else { return exit.and_then(|_| bail!("the guest never said it was serving")) };
    eprintln!(
        "xtask: model {name}: one input made from its manifest sealed to the guest, an output of {len} finite values \
         opened (no reference outputs to compare with: send real inputs with ampoule-client)"
    );
    exit
}

/// Boots the run's guest; once it serves, runs `client`; checks the simulated platform's launch digest if the run
/// expects one. The run's outcome, and what the client found (`None` if the guest never served).
fn serve_and_check<T: Send + 'static>(
    run: &ClientRun<'_>,
    client: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<(Result<ExitCode>, Option<T>)> {
    let (report, summary) = xtask::serve::run_serving(&run.config, client)?;
    let summary = summary.map(|s| s.unwrap_or_else(|_| Err(anyhow::anyhow!("the client thread panicked"))));
    let digest = run.expected_digest.map(|expected| xtask::hypervisor::check_launch_digest(&report, expected));
    let exit = report_run(&report);
    digest.transpose()?;
    Ok((exit, summary.transpose()?))
}
