//! `cargo xtask seal`: a fresh model key for every sealing (rotation on every deploy, DESIGN.md §5), the weights
//! sealed under it into `target/ampoule/model.sealed`, and the key registered in the development broker's state
//! (`target/ampoule/broker/`) for the measurement of the image built with that blob, and for nothing else.
//!
//! Sealing again replaces both: the allowlist names only the newest image, and the old key is gone, so an image
//! built with the old blob cannot get the new key (its measurement is unknown) and vice versa.
//!
//! The broker state is the one place a model key is kept on disk, because the issue asks for a persistent key
//! store: `keys.toml` is created with mode 0600 in a 0700 directory, written whole and renamed into place. A real
//! deployment keeps the broker's keys in its HSM or KMS.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use broker::keys::KeyStore;
use protocol::message::KeyId;
use protocol::sealed_model::{SealedModel, seal};
use zeroize::Zeroizing;

use crate::dance::plain_measurement;
use crate::image::{self, BuildOptions, Variant};
use crate::paths;

/// The plaintext weights `seal` reads: the burnpack `cargo xtask codegen` wrote from the ONNX file.
pub fn default_weights(root: &Path) -> PathBuf {
    root.join("inference/model/ampoule-mlp.bpk")
}

/// Where `seal` writes the sealed blob by default, and where `build` takes it from.
pub fn default_sealed_model(root: &Path) -> PathBuf {
    paths::image_dir(root).join("model.sealed")
}

/// The development broker's state: `broker.toml` (allowlist), `keys.toml` (keys), `audit.jsonl`.
pub fn default_broker_state(root: &Path) -> PathBuf {
    paths::image_dir(root).join("broker")
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(bytes)
}

/// What one sealing made.
#[derive(Clone, Debug)]
pub struct Sealing {
    /// The sealed blob's path.
    pub sealed_model: PathBuf,
    /// The new key's id.
    pub key_id: KeyId,
    /// The plain-mode measurement of the release image built with the blob.
    pub measurement: [u8; 48],
}

/// Seals `weights` into `out` under a fresh key, builds the release image with it (from `root`), and makes
/// `state_dir` a broker state that releases the key to that image's measurement only.
pub fn seal_and_register(root: &Path, weights: &Path, out: &Path, state_dir: &Path) -> Result<Sealing> {
    seal_and_register_with(weights, out, state_dir, |out| {
        let options = BuildOptions { sealed_model: out.to_path_buf(), ..BuildOptions::for_checkout(root) };
        Ok(plain_measurement(&image::build(Variant::Release, &options)?.bytes))
    })
}

/// [`seal_and_register`] with the image's measurement from `measure`, given the sealed blob's path (tests patch a
/// built image instead of building one per sealing).
pub fn seal_and_register_with(
    weights: &Path,
    out: &Path,
    state_dir: &Path,
    measure: impl FnOnce(&Path) -> Result<[u8; 48]>,
) -> Result<Sealing> {
    let plaintext = Zeroizing::new(fs::read(weights).with_context(|| format!("reading {}", weights.display()))?);
    let key = Zeroizing::new(random::<32>()?);
    let key_id: KeyId = random()?;
    let blob = seal(&plaintext, inference::MODEL_ID, key_id, &key, random()?)
        .map_err(|e| anyhow::anyhow!("sealing {}: {e}", weights.display()))?;
    ensure!(blob.len() as u64 <= ovmf::layout::SEALED_MODEL.size, "the sealed model does not fit the image's slot");
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent)?;
    }
    write_atomically(out, &blob, 0o644)?;
    let measurement = measure(out)?;
    write_broker_state(state_dir, &measurement, &key_id, &key)?;
    Ok(Sealing { sealed_model: out.to_path_buf(), key_id, measurement })
}

/// Seals with the defaults unless `target/ampoule/model.sealed` exists; returns its path.
pub fn ensure_default_sealed_model(root: &Path) -> Result<PathBuf> {
    let out = default_sealed_model(root);
    if !out.exists() {
        eprintln!(
            "xtask: sealing the model (no {} yet): a fresh key, registered in the development broker",
            out.display()
        );
        seal_and_register(root, &default_weights(root), &out, &default_broker_state(root))?;
    }
    Ok(out)
}

/// The key id the sealed model in an image names.
pub fn key_id_of_image(image: &[u8]) -> Result<KeyId> {
    let slot = image::sealed_model_slot(image);
    Ok(SealedModel::from_slot(slot).map_err(|e| anyhow::anyhow!("the image's sealed model: {e}"))?.key_id)
}

/// Loads the keys of a broker state.
pub fn load_keys(state_dir: &Path) -> Result<KeyStore> {
    KeyStore::load(&state_dir.join("keys.toml")).with_context(|| {
        format!(
            "no usable broker state in {}: `cargo xtask seal` makes a new sealing with its key",
            state_dir.display()
        )
    })
}

fn write_broker_state(dir: &Path, measurement: &[u8; 48], key_id: &KeyId, key: &[u8; 32]) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let keys = Zeroizing::new(format!(
        "# The development broker's key store, written by `cargo xtask seal` (mode 0600). Sealing again replaces it.\n\
         [keys]\n\"{}\" = \"{}\"\n",
        hex::encode(key_id),
        Zeroizing::new(hex::encode(key)).as_str(),
    ));
    write_atomically(&dir.join("keys.toml"), keys.as_bytes(), 0o600)?;
    let config = format!(
        "# The development broker, written by `cargo xtask seal`: it releases the newest sealing's key to the image\n\
         # built with that blob, and to nothing else. Start it with `ampoule-broker --config` on this file.\n\
         listen = \"127.0.0.1:7000\"\n\
         allow_simulated = true  # plain-mode guests prove nothing: development only\n\
         audit_log = \"audit.jsonl\"\n\
         key_store = \"keys.toml\"\n\n\
         [[allow]]\ntee = \"plain\"\nmeasurement = \"{}\"\nkey_id = \"{}\"\n",
        hex::encode(measurement),
        hex::encode(key_id),
    );
    write_atomically(&dir.join("broker.toml"), config.as_bytes(), 0o644)
}

/// Writes `bytes` to a temporary file beside `path` with `mode`, then renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let temp = path.with_extension("partial");
    let _ = fs::remove_file(&temp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .with_context(|| format!("creating {}", temp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temp, path).with_context(|| format!("renaming {} to {}", temp.display(), path.display()))
}
