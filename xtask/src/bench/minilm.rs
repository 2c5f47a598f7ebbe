//! The `minilm` area: paraphrase-MiniLM-L3-v2 and its 69 MB sealed blob.
//!
//! - `minilm.burn_over_onnxruntime_p50_{128,16}_tokens`: host-native burn (the inference crate with the guest's
//!   codegen settings) over onnxruntime (Python API, on the ONNX file as shipped), one thread each, the same token
//!   ids, same run.
//! - `minilm.guest_over_native_instructions`: instructions per 16-token embedding in the guest (QEMU
//!   `-icount shift=0`, the `served` records' `model_cycles`) over the same crate host-native (callgrind).
//! - `model.load_mb_per_s`: the guest's authenticated load of the blob under TCG (fw_cfg DMA reads into shared
//!   pages, copied in, AES-256-GCM chunk by chunk, weights into burn; the `model unsealed` record's wall time in a
//!   run without icount) next to host-native AES-256-GCM opening the same weights sealed the same way
//!   (`protocol/examples/native_open.rs`, the guest's codegen settings).
//! - `model.measured_pages`: the pages an SNP launch measures: the image's, whatever model is sealed.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use protocol::console::Record;

use super::inference::{ServingGuest, build_native, callgrind_instructions, client_result, p50_ns, serving_guest_with};
use super::{Figure, median, round};
use crate::dance::BrokerOptions;
use crate::serve::run_serving;
use crate::{codegen, install, manifest, minilm, paths, python, sealing};

/// Timed embeddings per side for the p50 latencies.
const TIMED_EMBEDDINGS: usize = 30;
/// Embeddings between the two callgrind counts.
const COUNTED_EMBEDDINGS: usize = 3;
/// Embeddings in the guest under icount (the first, which warms the allocator, is left out of the median).
const GUEST_EMBEDDINGS: usize = 4;

/// The longest reference sentence's ids cut to `tokens` (its first `tokens - 1`, then `[SEP]`), comma-separated.
fn token_ids(cases: &[minilm::EmbeddingCase], tokens: usize) -> Result<String> {
    let longest = cases.iter().max_by_key(|c| c.token_ids.len()).context("no reference cases")?;
    ensure!(longest.token_ids.len() >= tokens, "no reference sentence has {tokens} tokens");
    let mut ids = longest.token_ids[..tokens - 1].to_vec();
    ids.push(102);
    Ok(ids.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
}

pub(super) fn figures(root: &Path, image: &Path) -> Result<Vec<Figure>> {
    install::ensure_debian_packages(
        &["valgrind"],
        "the MiniLM benchmark counts host instructions",
        &paths::target_dir(root),
    )?;
    let weights = codegen::ensure_weights(root, &manifest::named(root, minilm::NAME)?)?;
    let files = minilm::ensure(root)?;
    let cases = minilm::reference_cases(root)?;
    let native = build_native(root, "native_embedding", false)?;
    let python = python::ensure_tool(root, python::MINILM_REFERENCE)?;
    let script = root.join("inference/model/time_minilm_onnxruntime.py");
    let mut figures = Vec::new();
    for (name, tokens) in
        [("minilm.burn_over_onnxruntime_p50_128_tokens", 128), ("minilm.burn_over_onnxruntime_p50_16_tokens", 16)]
    {
        let ids = token_ids(&cases, tokens)?;
        let runs = TIMED_EMBEDDINGS.to_string();
        let burn_ns = p50_ns(Command::new(&native).arg(&weights).args(["time", &runs, &ids]))?;
        let ort_ns = p50_ns(Command::new(&python).arg(&script).arg(&files.onnx).args([&runs, &ids]))?;
        figures.push(Figure {
            name,
            value: round(burn_ns / ort_ns, 3),
            unit: "x",
            goal: Some("<= 1.0"),
            meets_goal: Some(burn_ns <= ort_ns),
            how: format!(
                "host-native burn p50 {:.2} ms / onnxruntime (Python API, session.run, ONNX file as shipped) p50 \
                 {:.2} ms; {TIMED_EMBEDDINGS} embeddings of {tokens} tokens each, one thread each, same run",
                burn_ns / 1e6,
                ort_ns / 1e6
            ),
        });
    }
    let ids16 = token_ids(&cases, 16)?;
    let one = callgrind_instructions(&native, &[&weights.display().to_string(), "count", "1", &ids16])?;
    let many = callgrind_instructions(
        &native,
        &[&weights.display().to_string(), "count", &(1 + COUNTED_EMBEDDINGS).to_string(), &ids16],
    )?;
    ensure!(many > one, "callgrind counted no more for {COUNTED_EMBEDDINGS} more embeddings");
    let native_instructions = (many - one) as f64 / COUNTED_EMBEDDINGS as f64;
    let guest_instructions = guest_instructions(root, image, &ids16)?;
    let ratio = guest_instructions / native_instructions;
    figures.push(Figure {
        name: "minilm.guest_over_native_instructions",
        value: round(ratio, 3),
        unit: "x",
        goal: Some("<= 1.05"),
        meets_goal: Some(ratio <= 1.05),
        how: format!(
            "guest {guest_instructions:.0} instructions per 16-token embedding (median of {} under QEMU -icount \
             shift=0, token check + graph) / native {native_instructions:.0} (callgrind, ({n}+1 minus 1)/{n}, same \
             crate, target-cpu and release profile as the guest)",
            GUEST_EMBEDDINGS - 1,
            n = COUNTED_EMBEDDINGS
        ),
    });
    let native_open = super::inference::build_native_example(root, "protocol", "native_open", false)?;
    let output = Command::new(&native_open).arg(&weights).arg("3").output()?;
    ensure!(output.status.success(), "native_open failed: {}", String::from_utf8_lossy(&output.stderr));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).context("native_open's output")?;
    let native_mb_per_s = value["mb_per_s"].as_f64().context("no mb_per_s")?;
    let load = guest_load(root, image)?;
    let guest_mb_per_s = load.weight_bytes as f64 / 1e6 / load.seconds;
    figures.push(Figure {
        name: "model.load_mb_per_s",
        value: round(guest_mb_per_s, 1),
        unit: "MB/s",
        goal: None,
        meets_goal: None,
        how: format!(
            "the guest's authenticated load of the {:.1} MB blob in {:.2} s under TCG (fw_cfg DMA into shared \
             pages, copied in, AES-256-GCM per 1 MiB chunk, into burn; the 'model unsealed' record) vs host-native \
             AES-256-GCM opening the same weights in 1 MiB chunks at {native_mb_per_s:.0} MB/s (native_open, one \
             thread, the guest's target CPU): guest/native {:.4}x",
            load.weight_bytes as f64 / 1e6,
            load.seconds,
            guest_mb_per_s / native_mb_per_s
        ),
    });
    let pages = super::launch_pages(&std::fs::read(image)?)?.normal;
    figures.push(Figure {
        name: "model.measured_pages",
        value: pages as f64,
        unit: "pages",
        goal: Some("independent of the model"),
        meets_goal: Some(true),
        how: format!(
            "4 KiB pages an SNP launch of the image measures ({} MiB image: both models' graphs, no weights); the \
             {:.1} MB blob enters the launch as HOST_DATA / MRCONFIGID, not as pages",
            ovmf::layout::IMAGE.size >> 20,
            load.weight_bytes as f64 / 1e6
        ),
    });
    Ok(figures)
}

/// What the guest said about loading its model.
struct GuestLoad {
    weight_bytes: u64,
    seconds: f64,
}

fn minilm_options(root: &Path) -> Result<BrokerOptions> {
    let options = BrokerOptions::for_checkout(root);
    let blob = sealing::ensure_sealed(root, &manifest::named(root, minilm::NAME)?, &options.state)?;
    Ok(BrokerOptions { sealed_model: Some(blob), ..options })
}

/// Boots the guest with MiniLM under icount; the median instructions per embedding of `ids`.
fn guest_instructions(root: &Path, image: &Path, ids: &str) -> Result<f64> {
    let ServingGuest { config, guest, policy, broker } =
        serving_guest_with(root, image, &["-icount", "shift=0"], &minilm_options(root)?)?;
    let ids: Vec<u32> = ids.split(',').map(str::parse).collect::<Result<_, _>>()?;
    let (report, done) = run_serving(&config, move || -> Result<()> {
        let mut client = client::GuestClient::connect(guest, &policy, Duration::from_secs(120))?;
        for _ in 0..GUEST_EMBEDDINGS {
            client.embed(&ids)?.map_err(|code| anyhow::anyhow!("refused: {}", code.as_str()))?;
        }
        Ok(())
    })?;
    broker.stop();
    client_result("the MiniLM icount run", &report, done)?;
    let records: Vec<Record> = report.lines.iter().filter_map(|l| Record::parse(l).ok()).collect();
    let cycles: Vec<f64> = records
        .iter()
        .filter(|r| r.msg == "served" && r.field("request") == Some("embed"))
        .filter_map(|r| r.field("model_cycles").and_then(|v| v.parse().ok()))
        .collect();
    ensure!(cycles.len() == GUEST_EMBEDDINGS, "{} served embed records with model_cycles", cycles.len());
    Ok(median(cycles[1..].to_vec()))
}

/// Boots the guest with MiniLM (TCG, no icount: its TSC runs at wall-clock rate) until it serves; its load.
fn guest_load(root: &Path, image: &Path) -> Result<GuestLoad> {
    let ServingGuest { config, broker, .. } = serving_guest_with(root, image, &[], &minilm_options(root)?)?;
    let (report, done) = run_serving(&config, || -> Result<()> { Ok(()) })?;
    broker.stop();
    client_result("the MiniLM load run", &report, done)?;
    let (unsealed, _) = report.record("model unsealed").context("no 'model unsealed' record")?;
    let number = |key: &str| unsealed.field(key).and_then(|v| v.parse::<u64>().ok()).context("a load figure");
    Ok(GuestLoad { weight_bytes: number("weight_bytes")?, seconds: number("ms")? as f64 / 1e3 })
}
