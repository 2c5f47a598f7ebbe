//! `cargo xtask seal --model NAME` (any model with a manifest in `inference/models/`): the weights sealed into a
//! chunked blob (`protocol::sealed_blob`) in `target/ampoule/models/NAME.sealed` under a fresh key made in the
//! broker's registry (`broker::lifecycle`, as `ampoule-broker keys` makes them: wrapped by the token's KEK, every act
//! audited), and that key version bound to (plain, the release image's measurement, the blob's binding). The image
//! itself is code only: sealing never changes it.
//!
//! Sealing a model again rotates its key: a new version of the key the previous blob named, the new blob sealed
//! under it, the older versions retired. A launch bound to the old blob is then refused, and the old key is never
//! released again. The state serves every model sealed beside it: `policy.toml` pins each one's launch for clients.
//!
//! The key is in plaintext only in this process's memory, for as long as sealing takes (`Zeroizing`).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use broker::lifecycle;
use broker::registry::{Binding, KeyState, Registry};
use protocol::message::KeyId;
use protocol::sealed_blob::{BlobDigest, BlobHeader, HEADER_LEN, MAX_CHUNK_LEN, launch_binding, seal};
use protocol::tee::Tee;
use zeroize::Zeroizing;

use crate::broker_state::{BrokerState, actor};
use crate::dance::plain_measurement;
use crate::image::{self, BuildOptions, Variant};
use crate::manifest::ModelManifest;
use crate::model_delivery::header_of;
use crate::paths;

/// Where `seal` writes the sealed blob of `model`, and where run-qemu takes it from.
pub fn default_sealed_model(root: &Path, name: &str) -> PathBuf {
    paths::image_dir(root).join("models").join(format!("{name}.sealed"))
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
    /// The key's id (what the blob names).
    pub key_id: KeyId,
    /// The key's version the blob is sealed under.
    pub version: u32,
    /// The blob's digest: the launch's binding.
    pub digest: BlobDigest,
    /// The plain-mode measurement of the release image, which the key version is bound to.
    pub measurement: [u8; 48],
}

/// Seals `model`'s `weights` into `out` under a fresh key in `state`'s registry, bound to (the release image built
/// from `root`, the blob's digest) only.
pub fn seal_and_register(
    root: &Path,
    model: &ModelManifest,
    weights: &Path,
    out: &Path,
    state: &BrokerState,
) -> Result<Sealing> {
    let measurement = plain_measurement(&image::build(Variant::Release, &BuildOptions::for_checkout(root))?.bytes);
    seal_and_register_with(model.model_id(), weights, out, state, measurement)
}

/// [`seal_and_register`] for an image of `measurement` (tests measure an image they built once).
pub fn seal_and_register_with(
    model_id: [u8; 16],
    weights: &Path,
    out: &Path,
    state: &BrokerState,
    measurement: [u8; 48],
) -> Result<Sealing> {
    let plaintext = Zeroizing::new(fs::read(weights).with_context(|| format!("reading {}", weights.display()))?);
    let (custody, store, mut registry) = state.open()?;
    let actor = actor("xtask seal");
    // The blob this one replaces names its key: a new version of it, when the registry has it active.
    let previous = header_of(out).ok().map(|h| h.key_id).filter(|id| newest_active(&mut registry, id).is_some());
    let (key_id, version, key) = match previous {
        Some(key_id) => {
            let (version, key) = lifecycle::rotate(&mut registry, &custody, &key_id, &actor)?;
            (key_id, version, key)
        }
        None => {
            let (key_id, key) = lifecycle::create(&mut registry, &custody, &actor)?;
            (key_id, 1, key)
        }
    };
    let blob = seal(&plaintext, model_id, key_id, &key, random()?, MAX_CHUNK_LEN)
        .map_err(|e| anyhow::anyhow!("sealing {}: {e}", weights.display()))?;
    drop(key);
    fs::create_dir_all(out.parent().context("the blob's path has no directory")?)?;
    write_atomically(out, &blob, 0o644)?;
    let header = BlobHeader::parse(&blob[..HEADER_LEN]).map_err(|e| anyhow::anyhow!("the blob just sealed: {e}"))?;
    let digest = *header.digest();
    let binding = Binding {
        tee: Tee::Plain,
        measurement: measurement.to_vec(),
        host_data: launch_binding(Tee::Plain, &digest).to_vec(),
    };
    lifecycle::bind(&mut registry, &key_id, version, &binding, &actor)?;
    // The versions before it sealed blobs this one replaces: never released again.
    for old in registry.versions(&key_id)?.iter().filter(|v| v.state == KeyState::Active && v.version < version) {
        lifecycle::retire(&mut registry, &key_id, Some(old.version), &actor)?;
    }
    state.write_broker_config(&store)?;
    write_policy(state, out, &mut registry, &measurement)?;
    Ok(Sealing { sealed_model: out.to_path_buf(), key_id, version, digest, measurement })
}

/// The newest active version of `key_id` in `registry`.
pub fn newest_active(registry: &mut Registry, key_id: &KeyId) -> Option<u32> {
    let versions = registry.versions(key_id).ok()?;
    versions.iter().filter(|v| v.state == KeyState::Active).map(|v| v.version).max()
}

/// Seals `model` with the defaults unless its blob exists and `state`'s registry holds its key; returns the blob's
/// path.
pub fn ensure_sealed(root: &Path, model: &ModelManifest, state: &BrokerState) -> Result<PathBuf> {
    let out = default_sealed_model(root, &model.name);
    let registered = match header_of(&out) {
        Ok(header) => newest_active(&mut state.open()?.2, &header.key_id).is_some(),
        Err(_) => false,
    };
    if !registered {
        eprintln!(
            "xtask: sealing the {} model ({} is missing, or its key is not in the {} registry): a fresh key",
            model.name,
            out.display(),
            state.store.as_str()
        );
        seal_and_register(root, model, &crate::codegen::ensure_weights(root, model)?, &out, state)?;
    }
    Ok(out)
}

/// Writes `policy.toml` beside the state's registry: what a client pins for each blob beside `out` whose key the
/// registry holds, launched as the release image of `measurement`.
fn write_policy(state: &BrokerState, out: &Path, registry: &mut Registry, measurement: &[u8; 48]) -> Result<()> {
    let mut blobs: Vec<(KeyId, BlobDigest)> = Vec::new();
    for entry in fs::read_dir(out.parent().context("the blob's path has no directory")?)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "sealed") {
            continue;
        }
        let Ok(header) = header_of(&path) else { continue };
        if newest_active(registry, &header.key_id).is_some() {
            blobs.push((header.key_id, *header.digest()));
        }
    }
    blobs.sort();
    let mut policy = String::from(
        "# What a client pins (`ampoule-client --policy policy.toml`), written by `cargo xtask seal`: the release\n\
         # image, launched bound to each sealed model beside it. The broker releases by its registry's bindings.\n\
         allow_simulated = true  # plain-mode guests prove nothing: development only\n",
    );
    for (key_id, digest) in blobs {
        policy.push_str(&format!(
            "\n[[allow]]\ntee = \"plain\"\nmeasurement = \"{}\"\nmodel_digest = \"{}\"\nkey_id = \"{}\"\n",
            hex::encode(measurement),
            hex::encode(digest),
            hex::encode(key_id),
        ));
    }
    write_atomically(&state.dir.join("policy.toml"), policy.as_bytes(), 0o644)
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
