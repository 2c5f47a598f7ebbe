//! The key registry and its audit trail, in a database: every model key's versions (wrapped by the token's KEK,
//! [`crate::custody`]; never in plaintext), each bound to one (TEE, measurement, host data), active or retired; and
//! one audit row per release, refusal and administrative act, each written in the transaction that makes the act
//! take effect, committed before the act is answered.
//!
//! One code path serves both stores: the statements in [`sql`] are written once, in the SQL both dialects share
//! (numbered `$N` parameters, which SQLite numbers in order of appearance), and [`Database`] runs them on SQLite
//! (embedded: one machine, one broker) or PostgreSQL (several broker replicas).

pub mod local_cluster;
mod postgres;
pub mod sql;
mod sqlite;

use anyhow::{Context, Result, bail, ensure};
use protocol::message::KeyId;
use protocol::tee::Tee;

pub use postgres::PostgresDatabase;
pub use sqlite::SqliteDatabase;

/// A statement's parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param<'a> {
    /// BLOB / BYTEA.
    Bytes(&'a [u8]),
    /// INTEGER / BIGINT.
    Int(i64),
    /// TEXT.
    Text(&'a str),
    /// NULL.
    Null,
}

/// A column's value as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// BLOB / BYTEA.
    Bytes(Vec<u8>),
    /// INTEGER / BIGINT.
    Int(i64),
    /// TEXT.
    Text(String),
    /// NULL.
    Null,
}

/// One database connection: statements, and transactions that commit or roll back whole.
pub trait Database: Send {
    /// Runs `work` in a transaction: committed (durably) if it returns `Ok`, rolled back otherwise.
    fn transaction(&mut self, work: &mut dyn FnMut(&mut dyn Statements) -> Result<()>) -> Result<()>;
}

/// Statements inside a transaction.
pub trait Statements {
    /// Runs a statement; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64>;
    /// Runs a query; its rows.
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Vec<Value>>>;
}

/// A key version's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Released to guests its binding admits.
    Active,
    /// Never released again.
    Retired,
}

impl KeyState {
    fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }

    fn parse(text: &str) -> Result<KeyState> {
        Ok(match text {
            "active" => KeyState::Active,
            "retired" => KeyState::Retired,
            other => bail!("a key state {other:?} in the registry"),
        })
    }
}

/// What a key version is released to: guests of this TEE, launched with this measurement and host data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The TEE.
    pub tee: Tee,
    /// The launch measurement (48 bytes).
    pub measurement: Vec<u8>,
    /// The launch's HOST_DATA / MRCONFIGID: the sealed model's digest.
    pub host_data: Vec<u8>,
}

/// One version of a model key, as the registry holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyVersion {
    /// The key's id (what the sealed blob names).
    pub key_id: KeyId,
    /// 1 for a new key, one more for each rotation.
    pub version: u32,
    /// The key, wrapped by the token's KEK.
    pub wrapped: Vec<u8>,
    /// What it is released to.
    pub binding: Binding,
    /// Active or retired.
    pub state: KeyState,
    /// When it was made, and retired (milliseconds since the Unix epoch).
    pub created_ms: u64,
    /// When it was retired.
    pub retired_ms: Option<u64>,
}

/// One audit row: who did what to which key, with metadata only (never key material).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// `broker:NAME` (a replica), or `admin` (the lifecycle commands).
    pub actor: String,
    /// `release`, `refusal`, `create`, `rotate`, `retire`, `import`.
    pub action: String,
    /// The key, if the act names one.
    pub key_id: Option<KeyId>,
    /// Its version, if one.
    pub version: Option<u32>,
    /// A JSON object of metadata: the peer, the TEE, the measurement, the refusal's reason.
    pub detail: String,
}

/// The registry over one connection.
pub struct Registry {
    db: Box<dyn Database>,
}

impl Registry {
    /// The registry in `db`, its tables created if missing.
    pub fn open(mut db: Box<dyn Database>, schema: &[&str]) -> Result<Registry> {
        db.transaction(&mut |s| {
            for statement in schema {
                s.execute(statement, &[])?;
            }
            Ok(())
        })
        .context("creating the registry's tables")?;
        Ok(Registry { db })
    }

    /// Adds version `version` of `key_id` (its wrapped key and binding), active, and its audit row, in one
    /// transaction. Refused if that version exists.
    pub fn insert(&mut self, key: &KeyVersion, audit: &AuditEntry) -> Result<()> {
        self.db.transaction(&mut |s| {
            let exists = s.query(sql::VERSION_EXISTS, &[Param::Bytes(&key.key_id), Param::Int(key.version.into())])?;
            ensure!(exists.is_empty(), "key {} already has a version {}", hex::encode(key.key_id), key.version);
            s.execute(
                sql::INSERT_KEY,
                &[
                    Param::Bytes(&key.key_id),
                    Param::Int(key.version.into()),
                    Param::Bytes(&key.wrapped),
                    Param::Text(key.binding.tee.as_str()),
                    Param::Bytes(&key.binding.measurement),
                    Param::Bytes(&key.binding.host_data),
                    Param::Text(key.state.as_str()),
                    Param::Int(to_i64(key.created_ms)?),
                ],
            )?;
            append(s, audit)
        })
    }

    /// Retires every active version of `key_id`, with its audit row, in one transaction; how many were active.
    pub fn retire(&mut self, key_id: &KeyId, audit: &AuditEntry) -> Result<u64> {
        let mut retired = 0;
        self.db.transaction(&mut |s| {
            retired = s.execute(sql::RETIRE_KEY, &[Param::Int(to_i64(audit.time_ms)?), Param::Bytes(key_id)])?;
            ensure!(retired > 0, "key {} has no active version", hex::encode(key_id));
            append(s, audit)
        })?;
        Ok(retired)
    }

    /// Every version of `key_id`, oldest first.
    pub fn versions(&mut self, key_id: &KeyId) -> Result<Vec<KeyVersion>> {
        let mut rows = Vec::new();
        self.db.transaction(&mut |s| {
            rows = s.query(sql::KEY_VERSIONS, &[Param::Bytes(key_id)])?;
            Ok(())
        })?;
        rows.into_iter().map(key_version).collect()
    }

    /// Every key version, by key id and version.
    pub fn all(&mut self) -> Result<Vec<KeyVersion>> {
        let mut rows = Vec::new();
        self.db.transaction(&mut |s| {
            rows = s.query(sql::ALL_KEYS, &[])?;
            Ok(())
        })?;
        rows.into_iter().map(key_version).collect()
    }

    /// Appends one audit row in a transaction of its own (a decision: committed before its reply is sent).
    pub fn audit(&mut self, audit: &AuditEntry) -> Result<()> {
        self.db.transaction(&mut |s| append(s, audit))
    }

    /// The audit trail, oldest first.
    pub fn audit_trail(&mut self) -> Result<Vec<AuditEntry>> {
        let mut rows = Vec::new();
        self.db.transaction(&mut |s| {
            rows = s.query(sql::AUDIT_TRAIL, &[])?;
            Ok(())
        })?;
        rows.into_iter().map(audit_entry).collect()
    }
}

fn append(s: &mut dyn Statements, audit: &AuditEntry) -> Result<()> {
    let key_id = audit.key_id.as_ref().map_or(Param::Null, |id| Param::Bytes(id));
    let version = audit.version.map_or(Param::Null, |v| Param::Int(v.into()));
    s.execute(
        sql::INSERT_AUDIT,
        &[
            Param::Int(to_i64(audit.time_ms)?),
            Param::Text(&audit.actor),
            Param::Text(&audit.action),
            key_id,
            version,
            Param::Text(&audit.detail),
        ],
    )?;
    Ok(())
}

fn to_i64(value: u64) -> Result<i64> {
    i64::try_from(value).context("a time past 2^63 ms")
}

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

fn text(value: &Value) -> Result<String> {
    match value {
        Value::Text(t) => Ok(t.clone()),
        other => bail!("a registry column holds {other:?}, not text"),
    }
}

fn key_id(value: &Value) -> Result<KeyId> {
    bytes(value)?.try_into().map_err(|_| anyhow::anyhow!("a key id in the registry is not 16 bytes"))
}

/// A row of [`sql::ALL_KEYS`] / [`sql::KEY_VERSIONS`].
fn key_version(row: Vec<Value>) -> Result<KeyVersion> {
    let [id, version, wrapped, tee, measurement, host_data, state, created, retired] = row.as_slice() else {
        bail!("a key row of {} columns", row.len())
    };
    let tee = text(tee)?;
    Ok(KeyVersion {
        key_id: key_id(id)?,
        version: u32::try_from(int(version)?).context("a key version")?,
        wrapped: bytes(wrapped)?,
        binding: Binding {
            tee: crate::config::parse_tee(&tee).context("a TEE in the registry")?,
            measurement: bytes(measurement)?,
            host_data: bytes(host_data)?,
        },
        state: KeyState::parse(&text(state)?)?,
        created_ms: u64::try_from(int(created)?).context("a creation time")?,
        retired_ms: match retired {
            Value::Null => None,
            value => Some(u64::try_from(int(value)?).context("a retirement time")?),
        },
    })
}

/// A row of [`sql::AUDIT_TRAIL`].
fn audit_entry(row: Vec<Value>) -> Result<AuditEntry> {
    let [time, actor, action, id, version, detail] = row.as_slice() else {
        bail!("an audit row of {} columns", row.len())
    };
    Ok(AuditEntry {
        time_ms: u64::try_from(int(time)?).context("an audit time")?,
        actor: text(actor)?,
        action: text(action)?,
        key_id: match id {
            Value::Null => None,
            value => Some(key_id(value)?),
        },
        version: match version {
            Value::Null => None,
            value => Some(u32::try_from(int(value)?).context("an audit version")?),
        },
        detail: text(detail)?,
    })
}

#[cfg(test)]
mod tests;
