//! The broker's configuration: one TOML file.
//!
//! ```toml
//! listen = "127.0.0.1:7000"
//! allow_simulated = false          # plain-mode guests prove nothing: only for development, printed loudly
//! allow_debug = false              # refuse guests launched with debugging allowed
//! nonce_lifetime_secs = 10
//! release_lifetime_secs = 300
//! max_frame_len = 65536
//! read_timeout_ms = 5000
//! max_connections = 64
//! audit_log = "audit.jsonl"        # relative paths are relative to this file
//! key_store = "keys.toml"         # the standalone broker needs one
//!
//! [snp]                            # optional: verify SEV-SNP reports (broker::verify::snp says what is checked)
//! product = "milan"
//! vcek = "vcek.der"
//! allow_smt = false
//! min_abi = [1, 51]
//! min_tcb = { bootloader = 3, tee = 0, snp = 8, microcode = 115 }
//!
//! [[allow]]                        # one entry per measurement: it gets exactly one key
//! tee = "plain"
//! measurement = "<96 hex digits>"
//! key_id = "<32 hex digits>"
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use protocol::frame::MAX_FRAME_LEN;
use protocol::message::KeyId;
use protocol::tee::Tee;
use serde::Deserialize;

/// The parsed configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to listen.
    pub listen: String,
    /// Accept simulated (plain-mode) evidence.
    #[serde(default)]
    pub allow_simulated: bool,
    /// Accept guests launched with debugging allowed.
    #[serde(default)]
    pub allow_debug: bool,
    /// How long a nonce stays valid.
    #[serde(default = "default_nonce_lifetime")]
    pub nonce_lifetime_secs: u64,
    /// How long a release is valid (its `expires_at`).
    #[serde(default = "default_release_lifetime")]
    pub release_lifetime_secs: u64,
    /// The largest frame accepted (at most the protocol's bound).
    #[serde(default = "default_max_frame_len")]
    pub max_frame_len: usize,
    /// Per-read timeout on connections.
    #[serde(default = "default_read_timeout")]
    pub read_timeout_ms: u64,
    /// Concurrent connections; more wait in the accept queue.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The audit log (JSON lines).
    pub audit_log: PathBuf,
    /// The key store file. Absent when the program embedding the broker supplies keys in memory (run-qemu's
    /// per-run key never touches the disk).
    #[serde(default)]
    pub key_store: Option<PathBuf>,
    /// Measurement -> key bindings.
    #[serde(default)]
    pub allow: Vec<AllowEntry>,
    /// The SEV-SNP verifier's platform key and rules; without it SNP evidence is refused (`tee_not_supported`).
    #[serde(default)]
    pub snp: Option<crate::verify::snp::SnpConfig>,
    /// The TDX verifier's collateral and rules; without it TDX evidence is refused (`tee_not_supported`).
    #[serde(default)]
    pub tdx: Option<crate::verify::tdx::TdxConfig>,
}

fn default_nonce_lifetime() -> u64 {
    10
}
fn default_release_lifetime() -> u64 {
    300
}
fn default_max_frame_len() -> usize {
    MAX_FRAME_LEN
}
fn default_read_timeout() -> u64 {
    5000
}
fn default_max_connections() -> usize {
    64
}

/// One allowlist entry, as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowEntry {
    /// `plain`, `snp` or `tdx`.
    pub tee: String,
    /// The measurement, hex.
    pub measurement: String,
    /// The key this measurement gets, hex.
    pub key_id: String,
}

/// One allowlist entry, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowed {
    /// The TEE the measurement is for.
    pub tee: Tee,
    /// The measurement.
    pub measurement: Vec<u8>,
    /// Its key.
    pub key_id: KeyId,
}

/// Parses a TEE name.
pub fn parse_tee(name: &str) -> Result<Tee> {
    [Tee::Plain, Tee::Snp, Tee::Tdx]
        .into_iter()
        .find(|t| t.as_str() == name)
        .with_context(|| format!("unknown tee {name:?}"))
}

/// Parses a 16-byte key id from hex.
pub fn parse_key_id(text: &str) -> Result<KeyId> {
    let bytes = hex::decode(text).with_context(|| format!("key id {text:?} is not hex"))?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("key id {text:?} is not 16 bytes"))
}

impl Config {
    /// Reads and checks a configuration file; relative paths in it become relative to its directory.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config: Config = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.audit_log = base.join(&config.audit_log);
        config.key_store = config.key_store.map(|k| base.join(k));
        if let Some(snp) = config.snp.as_mut() {
            crate::verify::SnpVerifier::resolve_paths(snp, base);
        }
        if let Some(tdx) = config.tdx.as_mut() {
            crate::verify::TdxVerifier::resolve_paths(tdx, base);
        }
        config.allowlist()?;
        ensure!(config.max_frame_len <= MAX_FRAME_LEN, "max_frame_len exceeds the protocol's {MAX_FRAME_LEN}");
        ensure!(config.nonce_lifetime_secs > 0 && config.max_connections > 0, "lifetimes and limits must be positive");
        Ok(config)
    }

    /// The allowlist, checked: known TEEs, hex of the right lengths, each measurement once.
    pub fn allowlist(&self) -> Result<Vec<Allowed>> {
        let mut out: Vec<Allowed> = Vec::new();
        for entry in &self.allow {
            let tee = parse_tee(&entry.tee)?;
            let measurement = hex::decode(&entry.measurement)
                .with_context(|| format!("measurement {:?} is not hex", entry.measurement))?;
            if measurement.len() != 48 {
                bail!("measurement {} is {} bytes, expected 48", entry.measurement, measurement.len());
            }
            if out.iter().any(|a| a.measurement == measurement) {
                bail!("measurement {} appears twice: a measurement gets exactly one key", entry.measurement);
            }
            out.push(Allowed { tee, measurement, key_id: parse_key_id(&entry.key_id)? });
        }
        Ok(out)
    }
}
