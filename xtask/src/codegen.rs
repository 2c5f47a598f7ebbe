//! `cargo xtask codegen`: the generated parts of the `inference` crate, made by burn-onnx through the generator in
//! `inference/codegen/` (its own workspace, built into `target/codegen/`), one [`GraphSource`] per compiled-in model:
//! - the MLP: its graph (`inference/src/model/ampoule_mlp.rs`) and its weights as a burnpack
//!   (`inference/model/ampoule-mlp.bpk`, committed: 4.6 KB), from the committed ONNX file;
//! - paraphrase-MiniLM-L3-v2: its graph (`inference/src/model/paraphrase_minilm_l3_v2.rs`, committed) and its
//!   weights (`target/models/minilm/paraphrase-minilm-l3-v2.bpk`, 69 MB, never committed), from the ONNX file
//!   `xtask::minilm` fetches;
//! - the MLP's input limits (`inference/src/limits.rs`) from `limits.json`.
//!
//! [`drift`] regenerates everything under `target/` and names each committed file that differs: the drift test.
//!
//! burn-onnx gives every parameter a random `param_id` in the burnpack's metadata, so two generations of the same
//! ONNX file differ in exactly those values; [`same_weights`] compares burnpacks with them masked, and [`write`]
//! keeps the committed burnpack when that is the only difference (regenerating then changes nothing in git).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::paths;

/// One ONNX file burn-onnx turns into a compiled-in graph and its burnpack. Paths are relative to the checkout
/// (burn-onnx records the ONNX path it is given in the generated file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GraphSource {
    /// The model's name (`--model`).
    pub name: &'static str,
    /// The ONNX file.
    pub onnx: &'static str,
    /// The generated graph, committed.
    pub graph: &'static str,
    /// The generated weights.
    pub weights: &'static str,
    /// Whether the weights are committed (and so checked for drift) or only written under `target/`.
    pub weights_committed: bool,
}

/// The MLP.
pub const MLP: GraphSource = GraphSource {
    name: "mlp",
    onnx: "inference/model/ampoule-mlp.onnx",
    graph: "inference/src/model/ampoule_mlp.rs",
    weights: "inference/model/ampoule-mlp.bpk",
    weights_committed: true,
};

/// paraphrase-MiniLM-L3-v2, from the ONNX file as shipped: burn-onnx imports its dynamic-shape operators (Shape,
/// Gather, ConstantOfShape, Expand, Where) itself, so the graph runs at the input's own length.
pub const MINILM: GraphSource = GraphSource {
    name: "minilm",
    onnx: crate::minilm::ONNX_RELATIVE,
    graph: "inference/src/model/paraphrase_minilm_l3_v2.rs",
    weights: "target/models/minilm/paraphrase-minilm-l3-v2.bpk",
    weights_committed: false,
};

/// Every compiled-in graph.
pub const GRAPHS: [GraphSource; 2] = [MLP, MINILM];

/// The MLP's graph (kept for the CLI's messages).
pub const GRAPH: &str = MLP.graph;
/// The MLP's weights.
pub const WEIGHTS: &str = MLP.weights;
/// The input limits, as data.
pub const LIMITS_JSON: &str = "inference/model/limits.json";
/// The input limits, as Rust.
pub const LIMITS: &str = "inference/src/limits.rs";

/// One graph as generated.
pub struct GeneratedGraph {
    /// Where it comes from.
    pub source: GraphSource,
    /// The graph's Rust source.
    pub graph: Vec<u8>,
    /// The burnpack.
    pub weights: Vec<u8>,
}

/// Everything codegen makes.
pub struct Generated {
    /// Each graph.
    pub graphs: Vec<GeneratedGraph>,
    /// `limits.rs`.
    pub limits: Vec<u8>,
}

/// The generator's manifest.
pub fn generator_manifest(root: &Path) -> PathBuf {
    root.join("inference/codegen/Cargo.toml")
}

/// Builds the generator (burn-onnx; several minutes the first time).
pub fn build_generator(root: &Path) -> Result<()> {
    let status = paths::cargo(root)
        .args(["build", "--quiet", "--locked", "--manifest-path"])
        .arg(generator_manifest(root))
        .arg("--target-dir")
        .arg(paths::target_dir(root).join("codegen"))
        .status()
        .context("running cargo")?;
    ensure!(status.success(), "building the generator (inference/codegen) failed");
    Ok(())
}

/// Generates one graph into memory (the generator's scratch files go under `target/`). The ONNX file must exist
/// (MiniLM's: `xtask::minilm::ensure`).
pub fn generate_graph(root: &Path, source: GraphSource) -> Result<GeneratedGraph> {
    build_generator(root)?;
    let out = paths::target_dir(root).join("codegen-out").join(source.name);
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    std::fs::create_dir_all(&out)?;
    let generator = paths::target_dir(root).join("codegen/debug/ampoule-codegen");
    let output = Command::new(&generator)
        .current_dir(root)
        .arg(source.onnx)
        .arg(&out)
        .output()
        .with_context(|| format!("running {}", generator.display()))?;
    // burn-onnx logs every node it registers: kept in a file, shown only when it fails.
    let log = out.with_extension("log");
    std::fs::write(&log, [output.stdout.as_slice(), output.stderr.as_slice()].concat())?;
    ensure!(
        output.status.success(),
        "burn-onnx could not generate the graph from {}; its log: {}",
        source.onnx,
        log.display()
    );
    let stem = Path::new(source.onnx).file_stem().and_then(|s| s.to_str()).context("an ONNX file name")?;
    let read = |ext: &str| {
        let name = format!("{stem}.{ext}");
        std::fs::read(out.join(&name)).with_context(|| format!("burn-onnx wrote no {name}"))
    };
    Ok(GeneratedGraph { source, graph: read("rs")?, weights: read("bpk")? })
}

/// Generates every graph (fetching MiniLM's ONNX file first) and the limits.
pub fn generate(root: &Path) -> Result<Generated> {
    crate::minilm::ensure(root)?;
    let graphs = GRAPHS.iter().map(|source| generate_graph(root, *source)).collect::<Result<Vec<_>>>()?;
    Ok(Generated { graphs, limits: limits_source(root)? })
}

/// The weights of `source`, generating them when they are not under `target/` yet (MiniLM's are never committed).
pub fn ensure_weights(root: &Path, source: GraphSource) -> Result<PathBuf> {
    let path = root.join(source.weights);
    if !path.is_file() {
        if source == MINILM {
            crate::minilm::ensure(root)?;
        }
        eprintln!("xtask: generating {} from {} (burn-onnx)", source.weights, source.onnx);
        let generated = generate_graph(root, source)?;
        std::fs::create_dir_all(path.parent().context("a weights path has a directory")?)?;
        std::fs::write(&path, &generated.weights).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(path)
}

/// Writes what differs into the checkout (and every uncommitted burnpack); returns the files written.
pub fn write(root: &Path, generated: &Generated) -> Result<Vec<&'static str>> {
    let mut written = Vec::new();
    for file in drift(root, generated)? {
        let bytes = match generated.graphs.iter().find(|g| g.source.graph == file || g.source.weights == file) {
            Some(g) if g.source.graph == file => &g.graph,
            Some(g) => &g.weights,
            None => &generated.limits,
        };
        std::fs::write(root.join(file), bytes).with_context(|| format!("writing {file}"))?;
        written.push(file);
    }
    for g in generated.graphs.iter().filter(|g| !g.source.weights_committed) {
        let path = root.join(g.source.weights);
        std::fs::create_dir_all(path.parent().context("a weights path has a directory")?)?;
        std::fs::write(&path, &g.weights).with_context(|| format!("writing {}", path.display()))?;
        written.push(g.source.weights);
    }
    Ok(written)
}

/// The committed files that differ from `generated` (burnpacks compared with their parameter ids masked).
pub fn drift(root: &Path, generated: &Generated) -> Result<Vec<&'static str>> {
    let committed = |file: &str| std::fs::read(root.join(file)).unwrap_or_default();
    let mut differ = Vec::new();
    for g in &generated.graphs {
        if committed(g.source.graph) != g.graph {
            differ.push(g.source.graph);
        }
        if g.source.weights_committed && !same_weights(&committed(g.source.weights), &g.weights)? {
            differ.push(g.source.weights);
        }
    }
    if committed(LIMITS) != generated.limits {
        differ.push(LIMITS);
    }
    Ok(differ)
}

/// The burnpack magic (`BURN` as a little-endian u32), then a u16 version and the u32 length of the CBOR metadata.
const BURNPACK_MAGIC: &[u8; 4] = b"NRUB";
const BURNPACK_HEADER_LEN: usize = 10;
/// In the CBOR metadata: the text key "param_id" (0x68: text of 8 bytes), then 0x1b (an unsigned 64-bit integer).
const PARAM_ID_KEY: &[u8] = b"\x68param_id\x1b";

/// Whether two burnpacks are the same but for their random parameter ids. A malformed one (`a` may be absent:
/// empty) never is.
pub fn same_weights(a: &[u8], b: &[u8]) -> Result<bool> {
    if a.len() != b.len() || a.len() < BURNPACK_HEADER_LEN {
        return Ok(false);
    }
    Ok(mask_param_ids(a)? == mask_param_ids(b)?)
}

/// The burnpack with every `param_id` value in its metadata zeroed.
fn mask_param_ids(burnpack: &[u8]) -> Result<Vec<u8>> {
    ensure!(burnpack.starts_with(BURNPACK_MAGIC), "not a burnpack");
    let metadata_len = u32::from_le_bytes(burnpack[6..10].try_into().expect("4 bytes")) as usize;
    let metadata_end = BURNPACK_HEADER_LEN.checked_add(metadata_len).filter(|&end| end <= burnpack.len());
    let Some(metadata_end) = metadata_end else { bail!("burnpack metadata runs past its end") };
    let mut masked = burnpack.to_vec();
    let mut at = BURNPACK_HEADER_LEN;
    while let Some(found) = masked[at..metadata_end].windows(PARAM_ID_KEY.len()).position(|w| w == PARAM_ID_KEY) {
        let value = at + found + PARAM_ID_KEY.len();
        ensure!(value + 8 <= metadata_end, "a param_id without its value");
        masked[value..value + 8].fill(0);
        at = value + 8;
    }
    Ok(masked)
}

/// `limits.rs` from `limits.json`, formatted by rustfmt with the checkout's settings.
pub fn limits_source(root: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(root.join(LIMITS_JSON)).with_context(|| format!("reading {LIMITS_JSON}"))?;
    let limits: Limits = serde_json::from_str(&text).with_context(|| format!("parsing {LIMITS_JSON}"))?;
    rustfmt(root, &limits.to_rust()?)
}

#[derive(serde::Deserialize)]
struct Limits {
    classes: Vec<String>,
    features: Vec<Feature>,
}

#[derive(serde::Deserialize)]
struct Feature {
    name: String,
    min: f64,
    max: f64,
}

impl Limits {
    fn to_rust(&self) -> Result<String> {
        let n = self.features.len();
        ensure!(n > 0 && !self.classes.is_empty(), "{LIMITS_JSON} names no features or no classes");
        for f in &self.features {
            ensure!(
                f.min.is_finite() && f.max.is_finite() && f.min <= f.max,
                "{LIMITS_JSON}: bad range for {:?}",
                f.name
            );
        }
        let strings = |items: Vec<&str>| items.iter().map(|s| format!("{s:?}, ")).collect::<String>();
        let floats = |items: Vec<f64>| items.iter().map(|v| format!("{v:?}, ")).collect::<String>();
        let names = strings(self.features.iter().map(|f| f.name.as_str()).collect());
        let classes = strings(self.classes.iter().map(String::as_str).collect());
        let c = self.classes.len();
        Ok(format!(
            "// Generated by `cargo xtask codegen` from {LIMITS_JSON}. Do not edit: regenerate.\n\
             //! What an input may be: the model reads [`FEATURE_COUNT`] raw measurements, each finite and within\n\
             //! `FEATURE_MIN[i]..=FEATURE_MAX[i]` (zero to twice the largest value in the data set; a measurement \
             beyond that\n\
             //! is a unit or transcription error, not a patient), and returns one probability per class.\n\n\
             /// The number of input values.\n\
             pub const FEATURE_COUNT: usize = {n};\n\
             /// Each input value's name, in input order.\n\
             pub const FEATURE_NAMES: [&str; {n}] = [{names}];\n\
             /// The smallest accepted value of each input.\n\
             pub const FEATURE_MIN: [f32; {n}] = [{}];\n\
             /// The largest accepted value of each input.\n\
             pub const FEATURE_MAX: [f32; {n}] = [{}];\n\
             /// The output classes, in output order.\n\
             pub const CLASSES: [&str; {c}] = [{classes}];\n",
            floats(self.features.iter().map(|f| f.min).collect()),
            floats(self.features.iter().map(|f| f.max).collect()),
        ))
    }
}

/// Formats Rust source with the toolchain's rustfmt and the checkout's `rustfmt.toml`.
fn rustfmt(root: &Path, source: &str) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut child = Command::new("rustfmt")
        .current_dir(root)
        .args(["--edition", "2024", "--emit", "stdout", "--config-path"])
        .arg(root.join("rustfmt.toml"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running rustfmt")?;
    child.stdin.take().expect("stdin is piped").write_all(source.as_bytes())?;
    let output = child.wait_with_output()?;
    ensure!(output.status.success(), "rustfmt refused the generated limits");
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_rs_is_what_limits_json_generates() {
        let root = paths::repo_root();
        let generated = limits_source(&root).unwrap();
        let committed = std::fs::read(root.join(LIMITS)).unwrap();
        assert!(generated == committed, "{LIMITS} drifted from {LIMITS_JSON}: run `cargo xtask codegen`");
    }

    #[test]
    fn burnpacks_differing_only_in_param_ids_are_the_same_weights() {
        let committed = std::fs::read(paths::repo_root().join(WEIGHTS)).unwrap();
        let at = committed.windows(PARAM_ID_KEY.len()).position(|w| w == PARAM_ID_KEY).unwrap() + PARAM_ID_KEY.len();
        let mut other_id = committed.clone();
        other_id[at] ^= 0xff;
        assert!(same_weights(&committed, &other_id).unwrap());
        // One bit anywhere else (a weight, the metadata, the header) is a difference.
        for index in [0, at - 1, at + 8, committed.len() - 1] {
            let mut changed = committed.clone();
            changed[index] ^= 1;
            assert!(!same_weights(&committed, &changed).unwrap_or(false), "flip at {index} went unnoticed");
        }
        assert!(!same_weights(&committed, &committed[..committed.len() - 4]).unwrap());
        assert!(!same_weights(&[], &committed).unwrap());
    }
}
