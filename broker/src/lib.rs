//! `ampoule-broker`: verifies a guest's evidence, applies the policy and, only if everything holds, releases the
//! model key bound to the guest's measurement, sealed (HPKE) to the guest's ephemeral key (DESIGN.md §5, §7).
//!
//! - [`config`]: the TOML configuration; [`keys`]: the key store; [`custody`]: the PKCS#11 token that wraps keys;
//!   [`registry`]: key versions and the audit trail in a database.
//! - [`nonce`]: single-use, expiring, connection-bound nonces.
//! - [`verify`]: one verifier per TEE (simulated so far); [`policy`]: the checks on evidence, shared with the client.
//! - [`decision`]: the ordered checks and the sealing; [`audit`]: one JSON line per decision.
//! - `session` (one connection) and [`server`] (TCP).

pub mod audit;
pub mod config;
pub mod custody;
pub mod decision;
pub mod http_server;
pub mod keys;
pub mod lifecycle;
pub mod log;
pub mod metrics;
pub mod metrics_endpoint;
pub mod nonce;
pub mod policy;
pub mod registry;
pub mod release;
pub mod server;
mod session;
pub use session::MessageWatch;
pub mod stats;
pub mod verify;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::audit::AuditLog;
use crate::config::Config;
use crate::custody::KeyCustody;
use crate::decision::Decision;
use crate::keys::KeyStore;
use crate::nonce::NonceStore;
use crate::policy::Policy;
use crate::registry::Registry;
use crate::release::KeySource;
use crate::stats::Stats;
use protocol::tee::Tee;
use std::sync::Mutex;

/// Milliseconds since the Unix epoch; tests substitute their own clock.
pub type Clock = Box<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Box::new(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64))
}

/// The system clock in seconds since the Unix epoch: the unit certificate and collateral validity are checked in
/// (the verifiers' clocks; [`system_clock`] counts milliseconds).
pub fn system_seconds() -> Clock {
    Box::new(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// A configured broker.
pub struct Broker {
    config: Config,
    policy: Policy,
    keys: KeySource,
    nonces: NonceStore,
    /// The decisions' log file (keys in memory); a registry audits in its own rows.
    audit: Option<AuditLog>,
    stats: Stats,
    clock: Clock,
    connections: AtomicU64,
    log: log::LogSink,
}

impl Broker {
    /// A broker with `config`, the keys of its allowlist in memory, and `clock`.
    pub fn new(config: Config, keys: KeyStore, clock: Clock) -> Result<Broker> {
        let policy = Policy::from_config(&config)?;
        keys.check_covers(policy.allowlist.iter().map(|a| a.key_id))?;
        Broker::with_keys(config, KeySource::Allowlist(keys), clock)
    }

    /// A broker whose keys are in `registry`, wrapped by `custody`'s token, and whose decisions are audited there.
    pub fn with_registry(config: Config, registry: Registry, custody: KeyCustody, clock: Clock) -> Result<Broker> {
        let actor = format!("broker:{}", config.name);
        Broker::with_keys(config, KeySource::Registry { registry: Mutex::new(registry), custody, actor }, clock)
    }

    fn with_keys(config: Config, keys: KeySource, clock: Clock) -> Result<Broker> {
        config.check()?;
        let policy = Policy::from_config(&config)?;
        let audit = match (&keys, &config.audit_log) {
            (KeySource::Registry { .. }, _) => None,
            (KeySource::Allowlist(_), Some(path)) => {
                Some(AuditLog::open(path, clock()).with_context(|| format!("opening {}", path.display()))?)
            }
            (KeySource::Allowlist(_), None) => bail!("a broker with keys in memory needs an audit_log"),
        };
        // In range (Config::check): at most an hour.
        let nonce_lifetime_ms =
            config.nonce_lifetime_secs.checked_mul(1000).context("nonce_lifetime_secs overflows")?;
        Ok(Broker {
            nonces: NonceStore::new(nonce_lifetime_ms),
            policy,
            keys,
            audit,
            stats: Stats::default(),
            clock,
            connections: AtomicU64::new(0),
            log: log::LogSink::Stderr,
            config,
        })
    }

    /// Sends the broker's records to `sink` instead of stderr.
    pub fn with_log(mut self, sink: log::LogSink) -> Broker {
        self.log = sink;
        self
    }

    /// Writes one record to the broker's log.
    pub fn log(&self, level: log::Level, msg: &str, fields: &[(&str, log::Value<'_>)]) {
        self.log.record(level, msg, fields);
    }

    /// Loads the configuration and opens its keys: the registry and token it names (`[store]`, `[custody]`).
    pub fn from_config_file(path: &std::path::Path) -> Result<Broker> {
        let config = Config::load(path)?;
        let store = config.store.as_ref().context(
            "the configuration names no [store]: a standalone broker's keys are in a registry, wrapped by a token's KEK",
        )?;
        let token = config.custody.as_ref().context("[store] needs [custody]: the token that wraps its keys")?;
        let custody = KeyCustody::open(token)?;
        let registry = store.open()?;
        Broker::with_registry(config, registry, custody, system_clock())
    }

    /// Audits a decision (in the registry, or the audit log file) before its reply is sent.
    pub(crate) fn record(&self, time_ms: u64, peer: &str, tee: Option<Tee>, decision: &Decision) -> Result<()> {
        if !self.keys.audit(time_ms, peer, tee, decision)?
            && let Some(audit) = &self.audit
        {
            audit.record(time_ms, peer, tee, decision)?;
        }
        Ok(())
    }

    /// Whether the broker can decide: its registry answers. The reason when not.
    pub fn healthy(&self) -> Result<(), &'static str> {
        self.keys.healthy().map_err(|_| "the registry does not answer")
    }

    /// Logs where the broker listens and, loudly, whether it trusts simulated evidence.
    pub fn announce(&self, addr: &str) {
        use crate::log::{Level, Value};
        if self.config.allow_simulated {
            self.log(
                Level::Warn,
                "SIMULATED EVIDENCE ACCEPTED: plain-mode guests prove nothing; never use this configuration in production",
                &[("allow_simulated", Value::Bool(true))],
            );
        }
        if let Some(repaired) = self.audit.as_ref().map(AuditLog::repaired_bytes).filter(|&b| b > 0) {
            self.log(
                Level::Warn,
                "audit log ended in a torn record (the last broker died writing it): removed, and recorded there",
                &[("bytes", Value::U64(repaired))],
            );
        }
        self.log(
            Level::Info,
            "listening",
            &[
                ("addr", Value::Str(addr)),
                ("max_connections", Value::U64(self.config.max_connections as u64)),
                ("message_timeout_ms", Value::U64(self.config.message_timeout_ms)),
                ("session_timeout_ms", Value::U64(self.config.session_timeout_ms)),
            ],
        );
    }

    /// The address in a log line that [`Broker::announce`] wrote (`msg="listening" addr=...`), if `line` is one:
    /// how a program that started the broker binary on port 0 learns its port.
    pub fn announced_addr(line: &str) -> Option<std::net::SocketAddr> {
        let record = protocol::console::Record::parse(line.trim_end()).ok().filter(|r| r.msg == "listening")?;
        record.field("addr")?.parse().ok()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Releases and refusals so far, by reason.
    pub fn stats(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.stats.snapshot()
    }

    /// Connections evicted and refused at the connection cap so far.
    pub fn capacity_stats(&self) -> (u64, u64) {
        self.stats.capacity()
    }

    fn now_ms(&self) -> u64 {
        (self.clock)()
    }

    fn next_connection(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod clock_tests {
    /// The verifiers' clock counts seconds (dcap-qvl's unit and X.509's), not the broker's milliseconds: a TDX
    /// verifier once got milliseconds and would have judged every collateral expired (year 50,000 and later).
    #[test]
    fn the_verifiers_clock_counts_seconds() {
        let (seconds, millis) = (super::system_seconds()(), super::system_clock()());
        assert!((1_700_000_000..4_000_000_000).contains(&seconds), "{seconds}");
        assert!(millis / 1000 >= seconds && millis / 1000 - seconds <= 5, "{millis} ms vs {seconds} s");
    }
}
