//! The broker's configuration: one TOML file.
//!
//! ```toml
//! listen = "127.0.0.1:7000"
//! allow_simulated = false          # plain-mode guests prove nothing: only for development, printed loudly
//! allow_debug = false              # refuse guests launched with debugging allowed
//! nonce_lifetime_secs = 10       # 1..=3600
//! release_lifetime_secs = 300     # 1..=86400
//! max_frame_len = 65536           # 1024..=65536
//! message_timeout_ms = 5000       # 100..=60000: each whole message, however it is split into reads
//! session_timeout_ms = 15000      # 100..=300000: the whole dance, from accept to the reply
//! max_connections = 64            # 1..=4096
//! metrics_listen = "127.0.0.1:9464"  # optional: GET /metrics (Prometheus) and /healthz
//!
//! [custody]                        # the PKCS#11 token whose KEK wraps the keys (broker::custody)
//! module = "/usr/lib/softhsm/libsofthsm2.so"
//! token = "ampoule"
//! pin_file = "token.pin"           # mode 0600; relative paths are relative to this file
//!
//! [store]                          # the key registry and audit trail (broker::registry)
//! sqlite = "registry.db"
//!
//! [snp]                            # optional: verify SEV-SNP reports (broker::verify::snp says what is checked)
//! product = "milan"
//! vcek = "vcek.der"
//! allow_smt = false
//! min_abi = [1, 51]
//! min_tcb = { bootloader = 3, tee = 0, snp = 8, microcode = 115 }
//!
//! ```
//!
//! The registry's bindings decide which launch gets which key. A program that embeds the broker with keys in
//! memory (`Broker::new`) uses an allowlist instead, with an audit log file; a client's policy file
//! (`ampoule-client --policy`) is this format's verifier part, its allowlist what the client pins:
//!
//! ```toml
//! allow_simulated = true
//! audit_log = "audit.jsonl"        # the embedded broker's decisions (JSON lines)
//!
//! [[allow]]                        # one entry per (measurement, model digest): it gets exactly one key
//! tee = "plain"
//! measurement = "<96 hex digits>"
//! key_id = "<32 hex digits>"
//! model_digest = "<96 hex digits>" # optional: the sealed blob the launch must be bound to (its HOST_DATA or
//!                                  # MRCONFIGID); without it, a launch bound to no blob (all zero)
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use protocol::frame::MAX_FRAME_LEN;
use protocol::message::KeyId;
use protocol::sealed_blob::{BlobDigest, launch_binding};
use protocol::tee::Tee;
use serde::Deserialize;

/// The parsed configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to listen (the standalone broker needs it).
    #[serde(default)]
    pub listen: Option<String>,
    /// Where to serve `GET /metrics` and `GET /healthz` (`broker::metrics_endpoint`); keep it on loopback.
    #[serde(default)]
    pub metrics_listen: Option<String>,
    /// This broker's name among replicas sharing a registry: its audit rows' actor is `broker:NAME`.
    #[serde(default = "default_name")]
    pub name: String,
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
    /// How long one whole message may take to arrive (or a reply to be taken), however it is split into reads.
    /// `read_timeout_ms`, its name before it covered whole messages, is still read.
    #[serde(default = "default_message_timeout", alias = "read_timeout_ms")]
    pub message_timeout_ms: u64,
    /// How long a whole connection may last, from accept to the reply.
    #[serde(default = "default_session_timeout")]
    pub session_timeout_ms: u64,
    /// Connections served at once. At the cap, a newcomer evicts the connection that has waited longest for a
    /// message; if every connection is busy deciding, the newcomer is refused (and counted).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The audit log (JSON lines) of a broker whose keys are in memory; a registry's decisions are its rows.
    #[serde(default)]
    pub audit_log: Option<PathBuf>,
    /// The key store file of older releases: refused, after `ampoule-broker keys import` has wrapped it into the
    /// registry.
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
    /// The PKCS#11 token whose KEK wraps the model keys (`broker::custody`).
    #[serde(default)]
    pub custody: Option<crate::custody::TokenConfig>,
    /// The key registry and audit trail (`broker::registry`).
    #[serde(default)]
    pub store: Option<crate::registry::StoreConfig>,
}

fn default_name() -> String {
    "broker".into()
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
fn default_message_timeout() -> u64 {
    5000
}
fn default_session_timeout() -> u64 {
    15_000
}
fn default_max_connections() -> usize {
    64
}

/// Refuses `value` for `field` unless `min <= value <= max`, naming both.
fn check_range(field: &str, value: u64, min: u64, max: u64) -> Result<()> {
    ensure!((min..=max).contains(&value), "{field} = {value} is out of range: it must be {min}..={max}");
    Ok(())
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
    /// The sealed blob's digest the launch must carry (`protocol::sealed_blob`), hex; none: a launch bound to no
    /// blob.
    #[serde(default)]
    pub model_digest: Option<String>,
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
    /// The sealed blob the launch must be bound to (HOST_DATA / MRCONFIGID), if any.
    pub model_digest: Option<BlobDigest>,
}

impl Allowed {
    /// What this entry's launch must report as its HOST_DATA (SNP, plain) or MRCONFIGID (TDX), zero-extended to 48
    /// bytes: its blob's binding, or zeros for a launch bound to no blob.
    pub fn expected_host_data(&self) -> [u8; 48] {
        self.model_digest.map_or([0; 48], |digest| launch_binding(self.tee, &digest))
    }
}

/// Parses a model digest: 96 hex digits.
fn parse_digest(text: &str) -> Result<BlobDigest> {
    let bytes = hex::decode(text).with_context(|| format!("model_digest {text:?} is not hex"))?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("model_digest {text} is not 48 bytes"))
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
    /// A configuration auditing to `audit_log`, every other setting at its default (no simulated evidence, no
    /// allowlist): what programs that embed the broker with keys in memory start from.
    pub fn with_defaults(audit_log: PathBuf) -> Config {
        Config {
            listen: None,
            metrics_listen: None,
            name: default_name(),
            allow_simulated: false,
            allow_debug: false,
            nonce_lifetime_secs: default_nonce_lifetime(),
            release_lifetime_secs: default_release_lifetime(),
            max_frame_len: default_max_frame_len(),
            message_timeout_ms: default_message_timeout(),
            session_timeout_ms: default_session_timeout(),
            max_connections: default_max_connections(),
            audit_log: Some(audit_log),
            key_store: None,
            allow: Vec::new(),
            snp: None,
            tdx: None,
            custody: None,
            store: None,
        }
    }

    /// Reads and checks a configuration file; relative paths in it become relative to its directory.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config: Config = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.audit_log = config.audit_log.map(|a| base.join(a));
        config.key_store = config.key_store.map(|k| base.join(k));
        if let Some(snp) = config.snp.as_mut() {
            crate::verify::SnpVerifier::resolve_paths(snp, base);
        }
        if let Some(tdx) = config.tdx.as_mut() {
            crate::verify::TdxVerifier::resolve_paths(tdx, base);
        }
        if let Some(custody) = config.custody.as_mut() {
            custody.pin_file = custody.pin_file.as_ref().map(|p| base.join(p));
        }
        if let Some(store) = config.store.as_mut() {
            store.resolve_paths(base);
            store.check()?;
        }
        config.check().with_context(|| format!("checking {}", path.display()))?;
        Ok(config)
    }

    /// Checks every number against its range (so that no arithmetic on them can overflow) and the allowlist.
    pub fn check(&self) -> Result<()> {
        check_range("nonce_lifetime_secs", self.nonce_lifetime_secs, 1, 3600)?;
        check_range("release_lifetime_secs", self.release_lifetime_secs, 1, 86_400)?;
        check_range("max_frame_len", self.max_frame_len as u64, 1024, MAX_FRAME_LEN as u64)?;
        check_range("message_timeout_ms", self.message_timeout_ms, 100, 60_000)?;
        check_range("session_timeout_ms", self.session_timeout_ms, 100, 300_000)?;
        check_range("max_connections", self.max_connections as u64, 1, 4096)?;
        ensure!(
            self.session_timeout_ms >= self.message_timeout_ms,
            "session_timeout_ms ({}) is shorter than message_timeout_ms ({}): a session holds at least one message",
            self.session_timeout_ms,
            self.message_timeout_ms
        );
        self.allowlist()?;
        if self.store.is_some() {
            ensure!(self.custody.is_some(), "[store] needs [custody]: the token that wraps its keys");
            ensure!(
                self.allow.is_empty(),
                "[[allow]] beside [store]: the registry's bindings decide releases (`ampoule-broker keys bind`); an \
                 allowlist belongs in a client's policy file"
            );
        }
        ensure!(
            self.key_store.is_none(),
            "key_store is no longer read: wrap it into the registry with `ampoule-broker --config FILE keys import \
             KEYS.toml` (which erases it), then remove the line"
        );
        Ok(())
    }

    /// The allowlist, checked: known TEEs, hex of the right lengths, each (measurement, model digest) once.
    pub fn allowlist(&self) -> Result<Vec<Allowed>> {
        let mut out: Vec<Allowed> = Vec::new();
        for entry in &self.allow {
            let tee = parse_tee(&entry.tee)?;
            let measurement = hex::decode(&entry.measurement)
                .with_context(|| format!("measurement {:?} is not hex", entry.measurement))?;
            if measurement.len() != 48 {
                bail!("measurement {} is {} bytes, expected 48", entry.measurement, measurement.len());
            }
            let model_digest = entry.model_digest.as_deref().map(parse_digest).transpose()?;
            if out.iter().any(|a| a.measurement == measurement && a.model_digest == model_digest) {
                bail!(
                    "measurement {} appears twice for the same model: a launch gets exactly one key",
                    entry.measurement
                );
            }
            out.push(Allowed { tee, measurement, key_id: parse_key_id(&entry.key_id)?, model_digest });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(extra: &str) -> Result<Config> {
        let dir = std::env::temp_dir().join(format!("ampoule-config-{}-{}", std::process::id(), extra.len()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("broker.toml");
        std::fs::write(&path, format!("listen = \"127.0.0.1:0\"\naudit_log = \"a.jsonl\"\n{extra}\n"))?;
        let config = Config::load(&path);
        let _ = std::fs::remove_dir_all(&dir);
        config
    }

    /// The defects this replaces: u64::MAX lifetimes panicked (at start-up, or on every valid dance), and a zero
    /// read timeout started a broker that dropped every connection.
    #[test]
    fn every_number_out_of_its_range_is_refused_naming_the_field_and_the_range() {
        for (line, field, range) in [
            ("nonce_lifetime_secs = 18446744073709551615", "nonce_lifetime_secs", "1..=3600"),
            ("nonce_lifetime_secs = 0", "nonce_lifetime_secs", "1..=3600"),
            ("release_lifetime_secs = 18446744073709551615", "release_lifetime_secs", "1..=86400"),
            ("read_timeout_ms = 0", "message_timeout_ms", "100..=60000"),
            ("message_timeout_ms = 60001", "message_timeout_ms", "100..=60000"),
            ("session_timeout_ms = 99", "session_timeout_ms", "100..=300000"),
            ("max_connections = 0", "max_connections", "1..=4096"),
            ("max_connections = 100000", "max_connections", "1..=4096"),
            ("max_frame_len = 100", "max_frame_len", "1024..=65536"),
            ("max_frame_len = 65537", "max_frame_len", "1024..=65536"),
        ] {
            let error = format!("{:#}", load(line).expect_err(line));
            assert!(error.contains(field) && error.contains(range), "{line}: {error}");
        }
        let error = format!("{:#}", load("message_timeout_ms = 9000\nsession_timeout_ms = 8000").unwrap_err());
        assert!(error.contains("session_timeout_ms (8000) is shorter"), "{error}");
    }

    #[test]
    fn the_defaults_and_the_old_timeout_name_are_accepted() {
        let config = load("").unwrap();
        assert_eq!((config.message_timeout_ms, config.session_timeout_ms), (5000, 15_000));
        let built =
            Config { listen: config.listen.clone(), ..Config::with_defaults(config.audit_log.clone().unwrap()) };
        assert_eq!(format!("{built:?}"), format!("{config:?}"), "with_defaults and an empty file agree");
        assert_eq!(load("read_timeout_ms = 2500").unwrap().message_timeout_ms, 2500);
        assert!(load("nonce_lifetime_secs = 3600\nrelease_lifetime_secs = 86400\nmax_connections = 4096").is_ok());
    }

    #[test]
    fn the_old_key_store_an_allowlist_beside_a_registry_and_a_registry_without_a_token_are_refused() {
        let error = format!("{:#}", load("key_store = \"keys.toml\"").unwrap_err());
        assert!(error.contains("keys import"), "{error}");
        let custody = "[custody]\nmodule = \"/m.so\"\ntoken = \"t\"\n";
        let allow = "[[allow]]\ntee = \"plain\"\nmeasurement = \"00\"\nkey_id = \"00\"\n";
        let error = format!("{:#}", load(&format!("[store]\nsqlite = \"r.db\"\n{allow}")).unwrap_err());
        assert!(error.contains("is not 48 bytes") || error.contains("expected 48"), "{error}");
        let allow = allow
            .replace("\"00\"\nkey", &format!("\"{}\"\nkey", "00".repeat(48)))
            .replace("key_id = \"00\"", &format!("key_id = \"{}\"", "00".repeat(16)));
        let error = format!("{:#}", load(&format!("{custody}[store]\nsqlite = \"r.db\"\n{allow}")).unwrap_err());
        assert!(error.contains("registry's bindings decide"), "{error}");
        let error = format!("{:#}", load("[store]\nsqlite = \"r.db\"").unwrap_err());
        assert!(error.contains("needs [custody]"), "{error}");
        assert!(load(&format!("{custody}[store]\nsqlite = \"r.db\"")).is_ok());
    }
}
