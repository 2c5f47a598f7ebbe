//! The registry's statements, written once for both stores: the SQL that SQLite and PostgreSQL share, with numbered
//! parameters (`$1`, `$2`, ... in order of first appearance, which is how SQLite numbers `$NAME` parameters). Only
//! the tables' definitions differ: a byte string is BLOB in one and BYTEA in the other, and the audit rows' order
//! comes from an INTEGER PRIMARY KEY in one and a BIGSERIAL in the other.
//!
//! - `model_keys`: one row per version of a key: the key wrapped by the token's KEK, its state and times.
//! - `bindings`: what a version is released to, one row per (TEE, measurement, host data): one sealed model may be
//!   launched by several images (SNP, TDX, plain), each a binding of the same key.
//! - `audit`: one row per release, refusal and administrative act.

/// SQLite's tables.
pub const SQLITE_SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS model_keys (
        key_id BLOB NOT NULL, version INTEGER NOT NULL, wrapped BLOB NOT NULL, state TEXT NOT NULL,
        created_ms INTEGER NOT NULL, retired_ms INTEGER, PRIMARY KEY (key_id, version))",
    "CREATE TABLE IF NOT EXISTS bindings (
        key_id BLOB NOT NULL, version INTEGER NOT NULL, tee TEXT NOT NULL, measurement BLOB NOT NULL,
        host_data BLOB NOT NULL, created_ms INTEGER NOT NULL, PRIMARY KEY (key_id, version, tee, measurement, host_data))",
    "CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        key_id BLOB, version INTEGER, detail TEXT NOT NULL)",
];

/// PostgreSQL's tables.
pub const POSTGRES_SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS model_keys (
        key_id BYTEA NOT NULL, version BIGINT NOT NULL, wrapped BYTEA NOT NULL, state TEXT NOT NULL,
        created_ms BIGINT NOT NULL, retired_ms BIGINT, PRIMARY KEY (key_id, version))",
    "CREATE TABLE IF NOT EXISTS bindings (
        key_id BYTEA NOT NULL, version BIGINT NOT NULL, tee TEXT NOT NULL, measurement BYTEA NOT NULL,
        host_data BYTEA NOT NULL, created_ms BIGINT NOT NULL, PRIMARY KEY (key_id, version, tee, measurement, host_data))",
    "CREATE TABLE IF NOT EXISTS audit (
        seq BIGSERIAL PRIMARY KEY, time_ms BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        key_id BYTEA, version BIGINT, detail TEXT NOT NULL)",
];

/// `$1` key id: its newest version number (one row: NULL when the key has none).
pub const NEWEST_VERSION: &str = "SELECT MAX(version) FROM model_keys WHERE key_id = $1";

/// `$1` key id, `$2` version: the version's state (no row: no such version).
pub const VERSION_STATE: &str = "SELECT state FROM model_keys WHERE key_id = $1 AND version = $2";

/// `$1` .. `$5`: key id, version, wrapped, state, created.
pub const INSERT_KEY: &str =
    "INSERT INTO model_keys (key_id, version, wrapped, state, created_ms) VALUES ($1, $2, $3, $4, $5)";

/// `$1` .. `$6`: key id, version, TEE, measurement, host data, created.
pub const INSERT_BINDING: &str = "INSERT INTO bindings (key_id, version, tee, measurement, host_data, created_ms)
    VALUES ($1, $2, $3, $4, $5, $6)";

/// `$1` .. `$5`: key id, version, TEE, measurement, host data: one row if that binding exists.
pub const BINDING_EXISTS: &str = "SELECT 1 FROM bindings
    WHERE key_id = $1 AND version = $2 AND tee = $3 AND measurement = $4 AND host_data = $5";

/// `$1` time, `$2` key id, `$3` version.
pub const RETIRE_VERSION: &str =
    "UPDATE model_keys SET state = 'retired', retired_ms = $1 WHERE key_id = $2 AND version = $3 AND state = 'active'";

/// `$1` time, `$2` key id.
pub const RETIRE_KEY: &str =
    "UPDATE model_keys SET state = 'retired', retired_ms = $1 WHERE key_id = $2 AND state = 'active'";

/// `$1` key id: its versions, oldest first (columns in [`super::KeyVersion`]'s order).
pub const KEY_VERSIONS: &str = "SELECT key_id, version, wrapped, state, created_ms, retired_ms FROM model_keys
    WHERE key_id = $1 ORDER BY version";

/// Every key version, by key id and version.
pub const ALL_KEYS: &str = "SELECT key_id, version, wrapped, state, created_ms, retired_ms FROM model_keys
    ORDER BY key_id, version";

/// `$1` key id, `$2` version: the version's bindings.
pub const BINDINGS_OF: &str = "SELECT tee, measurement, host_data FROM bindings WHERE key_id = $1 AND version = $2
    ORDER BY tee, measurement, host_data";

/// `$1` .. `$4`: key id, TEE, measurement, host data: the newest active version bound to them, and its wrapped key.
pub const RELEASABLE: &str = "SELECT k.version, k.wrapped FROM model_keys k JOIN bindings b
    ON b.key_id = k.key_id AND b.version = k.version
    WHERE k.key_id = $1 AND k.state = 'active' AND b.tee = $2 AND b.measurement = $3 AND b.host_data = $4
    ORDER BY k.version DESC LIMIT 1";

/// `$1` measurement: the active versions' bindings for it (key id, TEE, host data), to say why nothing was
/// releasable.
pub const LAUNCH_BINDINGS: &str = "SELECT b.key_id, b.tee, b.host_data FROM bindings b JOIN model_keys k
    ON b.key_id = k.key_id AND b.version = k.version WHERE k.state = 'active' AND b.measurement = $1";

/// `$1` .. `$6`: time, actor, action, key id, version, detail.
pub const INSERT_AUDIT: &str =
    "INSERT INTO audit (time_ms, actor, action, key_id, version, detail) VALUES ($1, $2, $3, $4, $5, $6)";

/// The trail, oldest first.
pub const AUDIT_TRAIL: &str = "SELECT time_ms, actor, action, key_id, version, detail FROM audit ORDER BY seq";
