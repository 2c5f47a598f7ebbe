//! run-qemu's client side once the guest serves: the model's reference inputs, sealed, through `ampoule-client`'s
//! library, each output checked against onnxruntime's; then the guest is shut down.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use xtask::qemu::RunConfig;

use super::run::report_run;

/// Boots the guest and, once it serves, runs the reference inputs through it as a client; then shuts it down.
pub(super) fn run_qemu_with_client(
    root: &std::path::Path,
    config: RunConfig,
    service_port: u16,
    policy_file: &std::path::Path,
    expected_digest: Option<&str>,
) -> Result<ExitCode> {
    let policy = xtask::serve::policy_of(policy_file)?;
    let cases = xtask::serve::reference_cases(root)?;
    let guest = std::net::SocketAddr::from(([127, 0, 0, 1], service_port));
    let (exit, summary) =
        serve_and_check(&config, expected_digest, move || xtask::serve::check_reference_cases(guest, &policy, &cases))?;
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

/// The same for paraphrase-MiniLM-L3-v2: each reference sentence's token ids sealed to the guest, each embedding
/// opened and checked.
pub(super) fn run_minilm_with_client(
    root: &std::path::Path,
    config: RunConfig,
    service_port: u16,
    policy_file: &std::path::Path,
    expected_digest: Option<&str>,
) -> Result<ExitCode> {
    let policy = xtask::serve::policy_of(policy_file)?;
    let cases = xtask::minilm::reference_cases(root)?;
    let guest = std::net::SocketAddr::from(([127, 0, 0, 1], service_port));
    let (exit, summary) =
        serve_and_check(&config, expected_digest, move || xtask::minilm::check_embeddings(guest, &policy, &cases))?;
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

/// The same for a model without reference outputs (your own): one input made from its manifest (each value the
/// middle of its range, or the token ids 0, 1, 2, ... up to 8 of them), sealed to the guest; the output opened and
/// checked for its length and finiteness only. `ampoule-client` sends real inputs.
pub(super) fn run_model_with_client(
    root: &std::path::Path,
    model: &xtask::manifest::ModelManifest,
    config: RunConfig,
    service_port: u16,
    policy_file: &std::path::Path,
    expected_digest: Option<&str>,
) -> Result<ExitCode> {
    let policy = xtask::serve::policy_of(policy_file)?;
    let input = xtask::manifest::SmokeInput::of(root, model)?;
    let (name, output_len) = (model.name.clone(), model.output.len);
    let guest = std::net::SocketAddr::from(([127, 0, 0, 1], service_port));
    let (exit, output) = serve_and_check(&config, expected_digest, move || {
        let mut client = client::GuestClient::connect(guest, &policy, Duration::from_secs(60))?;
        anyhow::ensure!(client.health()? == (true, true), "the guest is not attested with its model loaded");
        let output = match &input {
            xtask::manifest::SmokeInput::Values(values) => client.infer(values)?,
            xtask::manifest::SmokeInput::Tokens(ids) => client.embed(ids)?,
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

/// Boots `config`; once the guest serves, runs `client`; checks the simulated platform's launch digest against
/// `expected_digest` if given. The run's outcome, and what the client found (`None` if the guest never served).
fn serve_and_check<T: Send + 'static>(
    config: &RunConfig,
    expected_digest: Option<&str>,
    client: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<(Result<ExitCode>, Option<T>)> {
    let (report, summary) = xtask::serve::run_serving(config, client)?;
    let summary = summary.map(|s| s.unwrap_or_else(|_| Err(anyhow::anyhow!("the client thread panicked"))));
    let digest = expected_digest.map(|expected| xtask::hypervisor::check_launch_digest(&report, expected));
    let exit = report_run(&report);
    digest.transpose()?;
    Ok((exit, summary.transpose()?))
}
