//! The registry's rows, read back from either store into its types; a row that is not one is an error, never a
//! key.

use anyhow::{Context, Result, bail};
use protocol::message::KeyId;

use super::{AuditEntry, Binding, KeyState, KeyVersion, Value};

fn bytes(value: &Value) -> Result<Vec<u8>> {
    match value {
        Value::Bytes(b) => Ok(b.clone()),
        other => bail!("a registry column holds {other:?}, not bytes"),
    }
}

fn int(value: &Value) -> Result<i64> {
    match value {
        Value::Int(i) => Ok(*i),
        other => bail!("a registry column holds {other:?}, not an integer"),
    }
}

fn text(value: &Value) -> Result<&str> {
    match value {
        Value::Text(t) => Ok(t),
        other => bail!("a registry column holds {other:?}, not text"),
    }
}

fn key_id(value: &Value) -> Result<KeyId> {
    bytes(value)?.try_into().map_err(|_| anyhow::anyhow!("a key id in the registry is not 16 bytes"))
}

fn version(value: &Value) -> Result<u32> {
    u32::try_from(int(value)?).context("a key version")
}

fn time(value: &Value) -> Result<u64> {
    u64::try_from(int(value)?).context("a time")
}

fn optional<T>(value: &Value, read: impl FnOnce(&Value) -> Result<T>) -> Result<Option<T>> {
    match value {
        Value::Null => Ok(None),
        value => read(value).map(Some),
    }
}

/// A row of `sql::KEY_VERSIONS` / `sql::ALL_KEYS`.
pub(super) fn key_version(row: &[Value]) -> Result<KeyVersion> {
    let [id, v, wrapped, state, created, retired] = row else { bail!("a key row of {} columns", row.len()) };
    Ok(KeyVersion {
        key_id: key_id(id)?,
        version: version(v)?,
        wrapped: bytes(wrapped)?,
        state: match text(state)? {
            "active" => KeyState::Active,
            "retired" => KeyState::Retired,
            other => bail!("a key state {other:?} in the registry"),
        },
        created_ms: time(created)?,
        retired_ms: optional(retired, time)?,
    })
}

/// A row of `sql::BINDINGS_OF`.
pub(super) fn binding(row: &[Value]) -> Result<Binding> {
    let [tee, measurement, host_data] = row else { bail!("a binding row of {} columns", row.len()) };
    Ok(Binding {
        tee: crate::config::parse_tee(text(tee)?).context("a TEE in the registry")?,
        measurement: bytes(measurement)?,
        host_data: bytes(host_data)?,
    })
}

/// A row of `sql::LAUNCH_BINDINGS`.
pub(super) fn launch_binding(row: &[Value]) -> Result<(KeyId, protocol::tee::Tee, Vec<u8>)> {
    let [id, tee, host_data] = row else { bail!("a launch binding row of {} columns", row.len()) };
    Ok((key_id(id)?, crate::config::parse_tee(text(tee)?).context("a TEE in the registry")?, bytes(host_data)?))
}

/// A row of `sql::RELEASABLE`.
pub(super) fn releasable(row: &[Value]) -> Result<(u32, Vec<u8>)> {
    let [v, wrapped] = row else { bail!("a releasable row of {} columns", row.len()) };
    Ok((version(v)?, bytes(wrapped)?))
}

/// A row of `sql::AUDIT_TRAIL`.
pub(super) fn audit_entry(row: &[Value]) -> Result<AuditEntry> {
    let [t, actor, action, id, v, detail] = row else { bail!("an audit row of {} columns", row.len()) };
    Ok(AuditEntry {
        time_ms: time(t)?,
        actor: text(actor)?.to_string(),
        action: text(action)?.to_string(),
        key_id: optional(id, key_id)?,
        version: optional(v, version)?,
        detail: text(detail)?.to_string(),
    })
}
