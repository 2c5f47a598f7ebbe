//! `cargo xtask seal --model NAME` (any model with a manifest in `inference/models/`): a fresh model key for every sealing (rotation on every deploy, DESIGN.md §5),
//! the weights sealed under it into a chunked blob (`protocol::sealed_blob`) in `target/ampoule/models/NAME.sealed`,
//! and the key registered in the development broker's state (`target/ampoule/broker/`) for the pair (the image's
//! measurement, the blob's digest), and for nothing else. The image itself is code only: sealing never changes it.
//!
//! The state serves every model sealed beside it: sealing one model again replaces that model's blob, key and
//! allowlist entry, and keeps the others'. A launch bound to the old blob is then refused (its digest is no longer
//! registered), and the old key is gone from the store.
//!
//! The broker state is the one place a model key is kept on disk, because the broker needs a persistent key store:
//! `keys.toml` is created with mode 0600 in a 0700 directory, written whole and renamed into place. A real
//! deployment keeps the broker's keys in its HSM or KMS.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use broker::keys::KeyStore;
use protocol::message::KeyId;
use protocol::sealed_blob::{BlobDigest, BlobHeader, HEADER_LEN, MAX_CHUNK_LEN, seal};
use zeroize::Zeroizing;

use crate::dance::plain_measurement;
use crate::image::{self, BuildOptions, Variant};
use crate::manifest::ModelManifest;
use crate::model_delivery::header_of;
use crate::paths;

/// Where `seal` writes the sealed blob of `model`, and where run-qemu takes it from.
pub fn default_sealed_model(root: &Path, name: &str) -> PathBuf {
    paths::image_dir(root).join("models").join(format!("{name}.sealed"))
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
    /// The blob's digest: the launch's binding.
    pub digest: BlobDigest,
    /// The plain-mode measurement of the release image, which the allowlist pairs with the digest.
    pub measurement: [u8; 48],
}

/// Seals `model`'s `weights` into `out` under a fresh key and makes `state_dir` a broker state that releases the
/// key to (the release image built from `root`, the blob's digest) only.
pub fn seal_and_register(
    root: &Path,
    model: &ModelManifest,
    weights: &Path,
    out: &Path,
    state_dir: &Path,
) -> Result<Sealing> {
    let measurement = plain_measurement(&image::build(Variant::Release, &BuildOptions::for_checkout(root))?.bytes);
    seal_and_register_with(model.model_id(), weights, out, state_dir, measurement)
}

/// [`seal_and_register`] for an image of `measurement` (tests measure an image they built once).
pub fn seal_and_register_with(
    model_id: [u8; 16],
    weights: &Path,
    out: &Path,
    state_dir: &Path,
    measurement: [u8; 48],
) -> Result<Sealing> {
    let plaintext = Zeroizing::new(fs::read(weights).with_context(|| format!("reading {}", weights.display()))?);
    let key = Zeroizing::new(random::<32>()?);
    let key_id: KeyId = random()?;
    let blob = seal(&plaintext, model_id, key_id, &key, random()?, MAX_CHUNK_LEN)
        .map_err(|e| anyhow::anyhow!("sealing {}: {e}", weights.display()))?;
    let parent = out.parent().context("the blob's path has no directory")?;
    fs::create_dir_all(parent)?;
    write_atomically(out, &blob, 0o644)?;
    let header = BlobHeader::parse(&blob[..HEADER_LEN]).map_err(|e| anyhow::anyhow!("the blob just sealed: {e}"))?;
    let digest = *header.digest();
    let sealing = Sealing { sealed_model: out.to_path_buf(), key_id, digest, measurement };
    let others = registered_beside(out, state_dir)?;
    write_broker_state(state_dir, &measurement, &others, (&sealing, &key))?;
    Ok(sealing)
}

/// Seals `model` with the defaults unless its blob exists; returns the blob's path.
pub fn ensure_sealed(root: &Path, model: &ModelManifest) -> Result<PathBuf> {
    let out = default_sealed_model(root, &model.name);
    if !out.exists() {
        eprintln!(
            "xtask: sealing the {} model (no {} yet): a fresh key, registered in the development broker",
            model.name,
            out.display()
        );
        seal_and_register(
            root,
            model,
            &crate::codegen::ensure_weights(root, model)?,
            &out,
            &default_broker_state(root),
        )?;
    }
    Ok(out)
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

/// One registered deployment: its key id, its blob's digest and its key.
type Registered = (KeyId, BlobDigest, Zeroizing<[u8; 32]>);

/// The other blobs beside `out` whose keys the state holds: the deployments the state keeps serving.
fn registered_beside(out: &Path, state_dir: &Path) -> Result<Vec<Registered>> {
    let Ok(keys) = KeyStore::load(&state_dir.join("keys.toml")) else { return Ok(Vec::new()) };
    let mut registered = Vec::new();
    for entry in fs::read_dir(out.parent().context("the blob's path has no directory")?)? {
        let path = entry?.path();
        if path == out || path.extension().is_none_or(|e| e != "sealed") {
            continue;
        }
        let Ok(header) = header_of(&path) else { continue };
        if let Some(key) = keys.get(&header.key_id) {
            registered.push((header.key_id, *header.digest(), Zeroizing::new(**key)));
        }
    }
    registered.sort_by_key(|(key_id, _, _)| *key_id);
    Ok(registered)
}

fn write_broker_state(
    dir: &Path,
    measurement: &[u8; 48],
    others: &[Registered],
    (new, new_key): (&Sealing, &[u8; 32]),
) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let all = others.iter().map(|(id, digest, key)| (id, digest, &**key)).chain([(&new.key_id, &new.digest, new_key)]);
    let mut keys = Zeroizing::new(String::from(
        "# The development broker's key store, written by `cargo xtask seal` (mode 0600). Sealing again replaces a\n\
         # model's key.\n[keys]\n",
    ));
    let mut config = String::from(
        "# The development broker, written by `cargo xtask seal`: it releases each sealed model's key to the image\n\
         # launched bound to that blob (HOST_DATA), and to nothing else. Start it with `ampoule-broker --config`.\n\
         listen = \"127.0.0.1:7000\"\n\
         allow_simulated = true  # plain-mode guests prove nothing: development only\n\
         audit_log = \"audit.jsonl\"\n\
         key_store = \"keys.toml\"\n",
    );
    for (key_id, digest, key) in all {
        keys.push_str(&format!("\"{}\" = \"{}\"\n", hex::encode(key_id), Zeroizing::new(hex::encode(key)).as_str()));
        config.push_str(&format!(
            "\n[[allow]]\ntee = \"plain\"\nmeasurement = \"{}\"\nmodel_digest = \"{}\"\nkey_id = \"{}\"\n",
            hex::encode(measurement),
            hex::encode(digest),
            hex::encode(key_id),
        ));
    }
    write_atomically(&dir.join("keys.toml"), keys.as_bytes(), 0o600)?;
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
