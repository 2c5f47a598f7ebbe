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
