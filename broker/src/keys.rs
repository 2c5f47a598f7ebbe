//! The key store: model keys by key id, loaded from a TOML file (`"<key id hex>" = "<key hex>"` under `[keys]`).
//! Keys live in memory only inside `Zeroizing` and are never logged or written anywhere else.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use protocol::message::KeyId;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::config::parse_key_id;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    keys: HashMap<String, String>,
}

/// Model keys by id.
#[derive(Default)]
pub struct KeyStore {
    keys: HashMap<KeyId, Zeroizing<[u8; 32]>>,
}

impl KeyStore {
    /// Loads the store.
    pub fn load(path: &Path) -> Result<KeyStore> {
        let text =
            Zeroizing::new(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?);
        let file: KeyFile = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let mut store = KeyStore::default();
        for (id, key_hex) in file.keys {
            let key_hex = Zeroizing::new(key_hex);
            let mut key = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(key_hex.as_bytes(), &mut key[..])
                .with_context(|| format!("key {id} is not 32 bytes of hex"))?;
            store.insert(parse_key_id(&id)?, key);
        }
        Ok(store)
    }

    /// Adds a key.
    pub fn insert(&mut self, id: KeyId, key: Zeroizing<[u8; 32]>) {
        self.keys.insert(id, key);
    }

    /// The key with this id.
    pub fn get(&self, id: &KeyId) -> Option<&Zeroizing<[u8; 32]>> {
        self.keys.get(id)
    }

    /// Every key, by id.
    pub fn iter(&self) -> impl Iterator<Item = (&KeyId, &Zeroizing<[u8; 32]>)> {
        let mut keys: Vec<_> = self.keys.iter().collect();
        keys.sort_by_key(|(id, _)| **id);
        keys.into_iter()
    }

    /// Checks that every key id the allowlist names is present.
    pub fn check_covers(&self, ids: impl IntoIterator<Item = KeyId>) -> Result<()> {
        for id in ids {
            ensure!(
                self.keys.contains_key(&id),
                "the allowlist names key {} but the key store lacks it",
                hex::encode(id)
            );
        }
        Ok(())
    }
}
