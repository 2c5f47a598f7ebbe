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
mod rows;
pub mod sql;
mod sqlite;
pub mod store;

use anyhow::{Context, Result, bail, ensure};
use protocol::message::KeyId;
use protocol::tee::Tee;

pub use postgres::PostgresDatabase;
pub use sqlite::SqliteDatabase;
pub use store::StoreConfig;

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
    /// The name in the registry and the commands' output.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }
}

/// What a key version is released to: guests of this TEE, launched with this measurement and host data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The TEE.
    pub tee: Tee,
    /// The launch measurement (48 bytes).
    pub measurement: Vec<u8>,
    /// The launch's HOST_DATA / MRCONFIGID as the guest's evidence reports it (48 bytes): the sealed model's
    /// binding.
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
    /// Active or retired.
    pub state: KeyState,
    /// When it was made (milliseconds since the Unix epoch).
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
    /// `release`, `refusal`, `create`, `rotate`, `bind`, `retire`, `import`.
    pub action: String,
    /// The key, if the act names one.
    pub key_id: Option<KeyId>,
    /// Its version, if one.
    pub version: Option<u32>,
    /// A JSON object of metadata: the peer, the TEE, the measurement, the refusal's reason.
    pub detail: String,
}

/// The registry over one connection. Each method is one transaction, its audit row inside it.
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

    /// Adds the next version of `key_id` (1 for a new key), active, with `wrapped` (made by the caller for that
    /// version: [`Registry::next_version`]). `new_key`: the key must not exist yet (create), or must have an active
    /// version (rotate: a retired key stays retired). Returns the version.
    pub fn add_version(
        &mut self,
        key_id: &KeyId,
        version: u32,
        wrapped: &[u8],
        new_key: bool,
        audit: &AuditEntry,
    ) -> Result<()> {
        self.db.transaction(&mut |s| {
            let newest = newest_version(s, key_id)?;
            match (new_key, newest) {
                (true, Some(_)) => bail!("key {} exists", hex::encode(key_id)),
                (false, None) => bail!("no key {}", hex::encode(key_id)),
                _ => {}
            }
            ensure!(
                newest.map_or(1, |v| v + 1) == version,
                "version {version} is not the next of key {}",
                hex::encode(key_id)
            );
            if !new_key {
                let versions = s.query(sql::KEY_VERSIONS, &[Param::Bytes(key_id)])?;
                let versions = versions.iter().map(|r| rows::key_version(r)).collect::<Result<Vec<_>>>()?;
                let any_active = versions.iter().any(|v| v.state == KeyState::Active);
                ensure!(any_active, "key {} is retired: a retired key is never made active again", hex::encode(key_id));
            }
            s.execute(
                sql::INSERT_KEY,
                &[
                    Param::Bytes(key_id),
                    Param::Int(version.into()),
                    Param::Bytes(wrapped),
                    Param::Text(KeyState::Active.as_str()),
                    Param::Int(to_i64(audit.time_ms)?),
                ],
            )?;
            append(s, audit)
        })
    }

    /// The number the next version of `key_id` gets (1 for a new key).
    pub fn next_version(&mut self, key_id: &KeyId) -> Result<u32> {
        let mut newest = None;
        self.db.transaction(&mut |s| {
            newest = newest_version(s, key_id)?;
            Ok(())
        })?;
        Ok(newest.map_or(1, |v| v + 1))
    }

    /// Binds an active version to a launch; refused for a retired or unknown version or a binding it has.
    pub fn bind(&mut self, key_id: &KeyId, version: u32, binding: &Binding, audit: &AuditEntry) -> Result<()> {
        self.db.transaction(&mut |s| {
            let state = s.query(sql::VERSION_STATE, &[Param::Bytes(key_id), Param::Int(version.into())])?;
            match state.first().map(|row| row.as_slice()) {
                Some([Value::Text(state)]) if state == "active" => {}
                Some(_) => bail!("version {version} of key {} is retired", hex::encode(key_id)),
                None => bail!("key {} has no version {version}", hex::encode(key_id)),
            }
            let params = binding_params(key_id, version, binding);
            ensure!(s.query(sql::BINDING_EXISTS, &params)?.is_empty(), "that binding exists");
            let mut insert = params.to_vec();
            insert.push(Param::Int(to_i64(audit.time_ms)?));
            s.execute(sql::INSERT_BINDING, &insert)?;
            append(s, audit)
        })
    }

    /// Retires one version of `key_id`, or every active one; how many were retired (at least one, else refused).
    pub fn retire(&mut self, key_id: &KeyId, version: Option<u32>, audit: &AuditEntry) -> Result<u64> {
        let mut retired = 0;
        self.db.transaction(&mut |s| {
            let time = Param::Int(to_i64(audit.time_ms)?);
            retired = match version {
                Some(v) => s.execute(sql::RETIRE_VERSION, &[time, Param::Bytes(key_id), Param::Int(v.into())])?,
                None => s.execute(sql::RETIRE_KEY, &[time, Param::Bytes(key_id)])?,
            };
            ensure!(retired > 0, "key {} has no such active version", hex::encode(key_id));
            append(s, audit)
        })?;
        Ok(retired)
    }

    /// The newest active version of `key_id` bound to `binding`, and its wrapped key: what a guest launched that
    /// way may be given.
    pub fn releasable(&mut self, key_id: &KeyId, binding: &Binding) -> Result<Option<(u32, Vec<u8>)>> {
        let mut rows = Vec::new();
        self.db.transaction(&mut |s| {
            let params = [
                Param::Bytes(key_id),
                Param::Text(binding.tee.as_str()),
                Param::Bytes(&binding.measurement),
                Param::Bytes(&binding.host_data),
            ];
            rows = s.query(sql::RELEASABLE, &params)?;
            Ok(())
        })?;
        rows.first().map(|row| rows::releasable(row)).transpose()
    }

    /// The active versions' bindings for a measurement: (key id, TEE, host data) each.
    pub fn launch_bindings(&mut self, measurement: &[u8]) -> Result<Vec<(KeyId, Tee, Vec<u8>)>> {
        self.read(sql::LAUNCH_BINDINGS, &[Param::Bytes(measurement)])?.iter().map(|r| rows::launch_binding(r)).collect()
    }

    /// Every version of `key_id`, oldest first.
    pub fn versions(&mut self, key_id: &KeyId) -> Result<Vec<KeyVersion>> {
        self.read(sql::KEY_VERSIONS, &[Param::Bytes(key_id)])?.iter().map(|r| rows::key_version(r)).collect()
    }

    /// Every key version, by key id and version.
    pub fn all(&mut self) -> Result<Vec<KeyVersion>> {
        self.read(sql::ALL_KEYS, &[])?.iter().map(|r| rows::key_version(r)).collect()
    }

    /// A version's bindings.
    pub fn bindings(&mut self, key_id: &KeyId, version: u32) -> Result<Vec<Binding>> {
        let params = [Param::Bytes(key_id), Param::Int(version.into())];
        self.read(sql::BINDINGS_OF, &params)?.iter().map(|r| rows::binding(r)).collect()
    }

    /// Appends one audit row in a transaction of its own (a decision: committed before its reply is sent).
    pub fn audit(&mut self, audit: &AuditEntry) -> Result<()> {
        self.db.transaction(&mut |s| append(s, audit))
    }

    /// Whether the database answers (a trivial query in a transaction).
    pub fn ping(&mut self) -> Result<()> {
        self.read("SELECT 1", &[]).map(|_| ())
    }

    /// The audit trail, oldest first.
    pub fn audit_trail(&mut self) -> Result<Vec<AuditEntry>> {
        self.read(sql::AUDIT_TRAIL, &[])?.iter().map(|r| rows::audit_entry(r)).collect()
    }

    fn read(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Vec<Value>>> {
        let mut rows = Vec::new();
        self.db.transaction(&mut |s| {
            rows = s.query(sql, params)?;
            Ok(())
        })?;
        Ok(rows)
    }
}

fn newest_version(s: &mut dyn Statements, key_id: &KeyId) -> Result<Option<u32>> {
    match s.query(sql::NEWEST_VERSION, &[Param::Bytes(key_id)])?.first().map(|r| r.as_slice()) {
        Some([Value::Int(v)]) => Ok(Some(u32::try_from(*v).context("a key version")?)),
        Some([Value::Null]) | None => Ok(None),
        Some(other) => bail!("a newest version of {other:?}"),
    }
}

fn binding_params<'a>(key_id: &'a KeyId, version: u32, binding: &'a Binding) -> [Param<'a>; 5] {
    [
        Param::Bytes(key_id),
        Param::Int(version.into()),
        Param::Text(binding.tee.as_str()),
        Param::Bytes(&binding.measurement),
        Param::Bytes(&binding.host_data),
    ]
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

#[cfg(test)]
mod tests;
