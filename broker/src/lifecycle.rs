//! The key lifecycle, shared by `ampoule-broker keys ...` and `cargo xtask seal`: create, rotate, bind, retire,
//! import. Each act is one registry transaction with its audit row; a new key is random, wrapped by the token's
//! KEK for its version before it is stored, and in plaintext only inside `Zeroizing` for as long as the caller
//! needs it (sealing a model under it).

use std::path::Path;

use anyhow::{Context, Result, ensure};
use protocol::message::KeyId;
use serde_json::json;
use zeroize::Zeroizing;

use crate::custody::KeyCustody;
use crate::registry::{AuditEntry, Binding, Registry};

/// Who acts and when.
#[derive(Clone, Debug)]
pub struct Actor {
    /// `admin`, or `broker:NAME`.
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub now_ms: u64,
}

impl Actor {
    fn audit(&self, action: &str, key_id: &KeyId, version: Option<u32>, detail: serde_json::Value) -> AuditEntry {
        AuditEntry {
            time_ms: self.now_ms,
            actor: self.name.clone(),
            action: action.into(),
            key_id: Some(*key_id),
            version,
            detail: detail.to_string(),
        }
    }
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>> {
    let mut bytes = Zeroizing::new([0u8; N]);
    getrandom::fill(&mut bytes[..]).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(bytes)
}

/// A new key (random id and key), version 1, active and bound to nothing yet; the key, for the caller to seal a
/// model under.
pub fn create(registry: &mut Registry, custody: &KeyCustody, actor: &Actor) -> Result<(KeyId, Zeroizing<[u8; 32]>)> {
    let key_id: KeyId = *random::<16>()?;
    let key = random::<32>()?;
    let wrapped = custody.wrap(&key_id, 1, &key)?;
    registry.add_version(&key_id, 1, &wrapped, true, &actor.audit("create", &key_id, Some(1), json!({})))?;
    Ok((key_id, key))
}

/// A new version of `key_id` (random key), active and bound to nothing yet; its number and the key. The previous
/// versions stay active until retired: deployments still launched with the old blob keep booting during a rollout.
pub fn rotate(
    registry: &mut Registry,
    custody: &KeyCustody,
    key_id: &KeyId,
    actor: &Actor,
) -> Result<(u32, Zeroizing<[u8; 32]>)> {
    let version = registry.next_version(key_id)?;
    ensure!(version > 1, "no key {}", hex::encode(key_id));
    let key = random::<32>()?;
    let wrapped = custody.wrap(key_id, version, &key)?;
    let audit = actor.audit("rotate", key_id, Some(version), json!({}));
    registry.add_version(key_id, version, &wrapped, false, &audit)?;
    Ok((version, key))
}

/// Binds version `version` of `key_id` to a launch.
pub fn bind(registry: &mut Registry, key_id: &KeyId, version: u32, binding: &Binding, actor: &Actor) -> Result<()> {
    ensure!(binding.measurement.len() == 48, "a measurement is 48 bytes, not {}", binding.measurement.len());
    ensure!(binding.host_data.len() == 48, "host data is 48 bytes, not {}", binding.host_data.len());
    let detail = json!({
        "tee": binding.tee.as_str(),
        "measurement": hex::encode(&binding.measurement),
        "host_data": hex::encode(&binding.host_data),
    });
    registry.bind(key_id, version, binding, &actor.audit("bind", key_id, Some(version), detail))
}

/// Retires one version of `key_id`, or all of them: none is released again.
pub fn retire(registry: &mut Registry, key_id: &KeyId, version: Option<u32>, actor: &Actor) -> Result<u64> {
    registry.retire(key_id, version, &actor.audit("retire", key_id, version, json!({})))
}

/// Imports a key store of the old format (`[keys]`, `"<key id hex>" = "<key hex>"`): each key becomes version 1 of
/// its id, wrapped; then the file is overwritten with zeros and removed, so that it cannot be read, or imported,
/// again. Bindings are made with [`bind`] afterwards. Returns the imported ids.
pub fn import_toml(registry: &mut Registry, custody: &KeyCustody, path: &Path, actor: &Actor) -> Result<Vec<KeyId>> {
    let store = crate::keys::KeyStore::load(path)?;
    // All or nothing: a key the registry already has stops the import before any is added.
    for (key_id, _) in store.iter() {
        ensure!(registry.next_version(key_id)? == 1, "key {} is already in the registry", hex::encode(key_id));
    }
    let mut imported = Vec::new();
    for (key_id, key) in store.iter() {
        let wrapped = custody.wrap(key_id, 1, key)?;
        let audit = actor.audit("import", key_id, Some(1), json!({ "from": path.display().to_string() }));
        registry.add_version(key_id, 1, &wrapped, true, &audit)?;
        imported.push(*key_id);
    }
    let len = std::fs::metadata(path)?.len();
    std::fs::write(path, vec![0u8; usize::try_from(len)?]).context("overwriting the imported key store")?;
    std::fs::remove_file(path).context("removing the imported key store")?;
    Ok(imported)
}
