//! The registry's statements, written once for both stores: the SQL that SQLite and PostgreSQL share, with numbered
//! parameters (`$1`, `$2`, ... in order of first appearance, which is how SQLite numbers `$NAME` parameters). Only
//! the tables' definitions differ: a byte string is BLOB in one and BYTEA in the other, and the audit rows' order
//! comes from an INTEGER PRIMARY KEY in one and a BIGSERIAL in the other.

/// SQLite's tables.
pub const SQLITE_SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS model_keys (
        key_id BLOB NOT NULL, version INTEGER NOT NULL, wrapped BLOB NOT NULL, tee TEXT NOT NULL,
        measurement BLOB NOT NULL, host_data BLOB NOT NULL, state TEXT NOT NULL, created_ms INTEGER NOT NULL,
        retired_ms INTEGER, PRIMARY KEY (key_id, version))",
    "CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        key_id BLOB, version INTEGER, detail TEXT NOT NULL)",
];

/// PostgreSQL's tables.
pub const POSTGRES_SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS model_keys (
        key_id BYTEA NOT NULL, version BIGINT NOT NULL, wrapped BYTEA NOT NULL, tee TEXT NOT NULL,
        measurement BYTEA NOT NULL, host_data BYTEA NOT NULL, state TEXT NOT NULL, created_ms BIGINT NOT NULL,
        retired_ms BIGINT, PRIMARY KEY (key_id, version))",
    "CREATE TABLE IF NOT EXISTS audit (
        seq BIGSERIAL PRIMARY KEY, time_ms BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        key_id BYTEA, version BIGINT, detail TEXT NOT NULL)",
];

/// `$1` key id, `$2` version.
pub const VERSION_EXISTS: &str = "SELECT 1 FROM model_keys WHERE key_id = $1 AND version = $2";

/// `$1` .. `$8`: key id, version, wrapped, TEE, measurement, host data, state, created.
pub const INSERT_KEY: &str = "INSERT INTO model_keys
    (key_id, version, wrapped, tee, measurement, host_data, state, created_ms)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// `$1` time, `$2` key id.
pub const RETIRE_KEY: &str =
    "UPDATE model_keys SET state = 'retired', retired_ms = $1 WHERE key_id = $2 AND state = 'active'";

/// `$1` key id. The columns in [`super::KeyVersion`]'s order.
pub const KEY_VERSIONS: &str = "SELECT key_id, version, wrapped, tee, measurement, host_data, state, created_ms,
    retired_ms FROM model_keys WHERE key_id = $1 ORDER BY version";

/// Every key, the columns as in [`KEY_VERSIONS`].
pub const ALL_KEYS: &str = "SELECT key_id, version, wrapped, tee, measurement, host_data, state, created_ms,
    retired_ms FROM model_keys ORDER BY key_id, version";

/// `$1` .. `$6`: time, actor, action, key id, version, detail.
pub const INSERT_AUDIT: &str =
    "INSERT INTO audit (time_ms, actor, action, key_id, version, detail) VALUES ($1, $2, $3, $4, $5, $6)";

/// The trail, oldest first.
pub const AUDIT_TRAIL: &str = "SELECT time_ms, actor, action, key_id, version, detail FROM audit ORDER BY seq";
