//! The `batching` area: `inference.batching_*`, the guest's micro-batching measured against itself. Two guests
//! serve the MLP one after the other in the same run, one with the default batch limits and one with batching
//! off (fw_cfg `opt/ampoule/batch` = `off`); each takes the same loads from 8 concurrent clients, in attested
//! sessions and with per-request HPKE, three times, and the median throughput is compared. The guest's `served`
//! records say how large its batches were and how long each batch's graph run took, from which the model's time
//! per request follows (`inference.batching_model_time_ratio`): what batching saves inside the guest, whatever
//! else bounds the throughput.

use std::path::Path;

use anyhow::{Result, ensure};
use loader::batch::{BATCH_LIMITS, FW_CFG_BATCH};

use super::end_to_end::load;
use super::inference::{ServingGuest, client_result, serving_guest};
use super::{Figure, median, round};
use crate::serve::{reference_cases, run_serving};

/// Concurrent clients.
const CLIENTS: usize = 8;
/// Loads of each kind per guest; the median counts.
const REPEATS: usize = 3;

/// What one guest did: req/s in sessions and with HPKE (medians), its mean batch size, and the graph's time per
/// request (a batch's run over its size), in microseconds, mean over every request.
struct Served {
    session_per_s: f64,
    sealed_per_s: f64,
    mean_batch: f64,
    model_us_per_request: f64,
}

pub(super) fn figures(root: &Path, image: &Path) -> Result<Vec<Figure>> {
    let batched = serve(root, image, None)?;
    let alone = serve(root, image, Some("off"))?;
    let session_ratio = batched.session_per_s / alone.session_per_s;
    let sealed_ratio = batched.sealed_per_s / alone.sealed_per_s;
    let limits = format!("{} requests, {} us", BATCH_LIMITS.max_requests, BATCH_LIMITS.max_wait_us);
    let how = |kind: &str, on: f64, off: f64| {
        format!(
            "{CLIENTS} clients x {} Infer requests {kind} to one guest under TCG, median of {REPEATS} loads: \
             {on:.0} req/s with batching ({limits}; mean batch {:.2}) / {off:.0} req/s with it off (mean batch \
             {:.2}), two guests in the same run",
            super::inference::E2E_REQUESTS_PER_CLIENT,
            batched.mean_batch,
            alone.mean_batch
        )
    };
    let model_ratio = alone.model_us_per_request / batched.model_us_per_request;
    Ok(vec![
        Figure {
            name: "inference.batching_model_time_ratio",
            value: round(model_ratio, 2),
            unit: "x",
            goal: None,
            meets_goal: None,
            how: format!(
                "the graph's time per request in the guest without batching {:.1} us / with it {:.1} us (each \
                 batch's run over its size, from the served records, mean over every request of both loads)",
                alone.model_us_per_request, batched.model_us_per_request
            ),
        },
        Figure {
            name: "inference.batching_speedup_8_clients_session",
            value: round(session_ratio, 2),
            unit: "x",
            goal: Some(">= 3"),
            meets_goal: Some(session_ratio >= 3.0),
            how: how("in attested sessions", batched.session_per_s, alone.session_per_s),
        },
        Figure {
            name: "inference.batching_speedup_8_clients_hpke",
            value: round(sealed_ratio, 2),
            unit: "x",
            goal: None,
            meets_goal: None,
            how: how("sealed one by one (HPKE)", batched.sealed_per_s, alone.sealed_per_s),
        },
        Figure {
            name: "inference.e2e_throughput_8_clients_session",
            value: round(batched.session_per_s, 1),
            unit: "req/s",
            goal: None,
            meets_goal: None,
            how: how("in attested sessions", batched.session_per_s, alone.session_per_s),
        },
    ])
}

/// One guest, with the host's batch limits `batch` (none: the guest's default), under the loads.
fn serve(root: &Path, image: &Path, batch: Option<&str>) -> Result<Served> {
    let cases = std::sync::Arc::new(reference_cases(root)?);
    let ServingGuest { mut config, guest, policy, broker } = serving_guest(root, image, &[])?;
    if let Some(batch) = batch {
        config.fw_cfg.push((FW_CFG_BATCH.into(), batch.into()));
    }
    let (report, done) = run_serving(&config, move || -> Result<[f64; 2]> {
        let mut session = Vec::new();
        let mut sealed = Vec::new();
        for _ in 0..REPEATS {
            session.push(load(guest, &policy, &cases, CLIENTS, true)?.per_second);
            sealed.push(load(guest, &policy, &cases, CLIENTS, false)?.per_second);
        }
        Ok([median(session), median(sealed)])
    })?;
    broker.stop();
    let [session_per_s, sealed_per_s] = client_result("the batching run", &report, done)?;
    let records: Vec<_> = report.lines.iter().filter_map(|l| protocol::console::Record::parse(l).ok()).collect();
    let number = |r: &protocol::console::Record, key| r.field(key).and_then(|v| v.parse::<f64>().ok());
    let tsc_hz = records.iter().find(|r| r.msg == "calibrated").and_then(|r| number(r, "tsc_hz"));
    let tsc_hz = tsc_hz.ok_or_else(|| anyhow::anyhow!("no calibrated record"))?;
    let served: Vec<(f64, f64)> = records
        .iter()
        .filter(|r| r.msg == "served" && r.field("request") == Some("infer"))
        .filter_map(|r| Some((number(r, "batch")?, number(r, "model_cycles")?)))
        .collect();
    ensure!(!served.is_empty(), "no served infer records");
    let count = served.len() as f64;
    let mean_batch = served.iter().map(|(batch, _)| batch).sum::<f64>() / count;
    let model_us_per_request = served.iter().map(|(batch, cycles)| cycles / batch).sum::<f64>() / count / tsc_hz * 1e6;
    Ok(Served { session_per_s, sealed_per_s, mean_batch, model_us_per_request })
}
