//! Where the key a broker releases comes from, and where its decisions are audited:
//!
//! - [`KeySource::Allowlist`]: the configuration's `[[allow]]` entries with keys held in memory (run-qemu's per-run
//!   key, tests), decisions in the audit log file;
//! - [`KeySource::Registry`]: the registry's bindings and the token (`[store]`, `[custody]`): the newest active
//!   version bound to the guest's (TEE, measurement, host data) is unwrapped by the token for the instant it takes
//!   to seal it, and every decision is a registry audit row committed before the reply. Several replicas may share
//!   one registry: each holds its own connection, and a retirement is seen by all at their next decision.

use std::sync::Mutex;

use protocol::message::KeyId;
use protocol::refusal::RefusalCode;
use protocol::tee::Tee;
use serde_json::json;
use zeroize::Zeroizing;

use crate::custody::KeyCustody;
use crate::decision::Decision;
use crate::keys::KeyStore;
use crate::policy::Policy;
use crate::registry::{AuditEntry, Binding, Registry};
use crate::verify::Verified;

/// The keys a broker releases.
pub enum KeySource {
    /// The configuration's allowlist, keys in memory.
    Allowlist(KeyStore),
    /// The registry and the token.
    Registry {
        /// The registry (one connection; decisions take turns on it).
        registry: Mutex<Registry>,
        /// The token whose KEK unwraps the keys.
        custody: KeyCustody,
        /// `broker:NAME`, the audit rows' actor.
        actor: String,
    },
}

/// A key to release.
pub struct Released {
    /// Its id.
    pub key_id: KeyId,
    /// Its version (registry keys).
    pub version: Option<u32>,
    /// The key.
    pub key: Zeroizing<[u8; 32]>,
}

impl KeySource {
    /// The key for a guest whose evidence verified as `verified` and that asks for `requested`, or why not.
    pub fn release(
        &self,
        policy: &Policy,
        verified: &Verified,
        report_data: &[u8; 64],
        requested: &KeyId,
    ) -> Result<Released, RefusalCode> {
        match self {
            KeySource::Allowlist(keys) => {
                let allowed = policy.judge(verified, report_data)?;
                if &allowed.key_id != requested {
                    return Err(RefusalCode::KeyNotForMeasurement);
                }
                let key = keys.get(&allowed.key_id).ok_or(RefusalCode::Internal)?;
                Ok(Released { key_id: allowed.key_id, version: None, key: key.clone() })
            }
            KeySource::Registry { registry, custody, .. } => {
                policy.judge_launch(verified, report_data)?;
                let binding = Binding {
                    tee: verified.tee,
                    measurement: verified.measurement.clone(),
                    host_data: verified.host_data.to_vec(),
                };
                let mut registry = registry.lock().unwrap_or_else(|e| e.into_inner());
                match registry.releasable(requested, &binding).map_err(|_| RefusalCode::Internal)? {
                    Some((version, wrapped)) => {
                        let key = custody.unwrap(requested, version, &wrapped).map_err(|_| RefusalCode::Internal)?;
                        Ok(Released { key_id: *requested, version: Some(version), key })
                    }
                    None => Err(why_not(&mut registry, &binding)),
                }
            }
        }
    }

    /// Whether decisions can be audited: the registry answers (always, for the allowlist's file).
    pub fn healthy(&self) -> anyhow::Result<()> {
        match self {
            KeySource::Allowlist(_) => Ok(()),
            KeySource::Registry { registry, .. } => registry.lock().unwrap_or_else(|e| e.into_inner()).ping(),
        }
    }

    /// Records a decision in the registry (registry keys); `false` for the allowlist, whose decisions go to the
    /// audit log file. An error means the row is not committed: nothing may be released.
    pub fn audit(&self, time_ms: u64, peer: &str, tee: Option<Tee>, decision: &Decision) -> anyhow::Result<bool> {
        let KeySource::Registry { registry, actor, .. } = self else { return Ok(false) };
        let entry = AuditEntry {
            time_ms,
            actor: actor.clone(),
            action: if decision.outcome.is_ok() { "release" } else { "refusal" }.into(),
            key_id: decision.outcome.ok(),
            version: decision.version,
            detail: json!({
                "peer": peer,
                "tee": tee.map(Tee::as_str),
                "measurement": decision.measurement.as_ref().map(hex::encode),
                "reason": decision.outcome.err().map(|c| c.as_str()),
            })
            .to_string(),
        };
        registry.lock().unwrap_or_else(|e| e.into_inner()).audit(&entry)?;
        Ok(true)
    }
}

/// Why no version of the requested key is releasable to `binding`: the same codes the allowlist gives, in its
/// order.
fn why_not(registry: &mut Registry, binding: &Binding) -> RefusalCode {
    let Ok(bound) = registry.launch_bindings(&binding.measurement) else { return RefusalCode::Internal };
    let same_tee: Vec<_> = bound.iter().filter(|(_, tee, _)| *tee == binding.tee).collect();
    if bound.is_empty() {
        RefusalCode::UnknownMeasurement
    } else if same_tee.is_empty() {
        RefusalCode::WrongTee
    } else if !same_tee.iter().any(|(_, _, host_data)| *host_data == binding.host_data) {
        RefusalCode::HostDataMismatch
    } else {
        // The launch is bound, to another key.
        RefusalCode::KeyNotForMeasurement
    }
}
