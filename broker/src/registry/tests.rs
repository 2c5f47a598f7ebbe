//! The registry on both stores, through the same statements: versions, retirement, the audit trail, and
//! transactions that take effect whole or not at all. PostgreSQL runs as a private cluster per test
//! ([`local_cluster`]; Debian's postgresql, which `cargo xtask test` installs).

use super::local_cluster::LocalCluster;
use super::*;

const KEY_ID: KeyId = [0x1d; 16];

fn database(name: &str) -> Box<dyn Database> {
    let dir = std::env::temp_dir().join(format!("ampoule-registry-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Box::new(SqliteDatabase::open(&dir.join("registry.db")).unwrap())
}

fn registry(name: &str) -> Registry {
    Registry::open(database(name), &sql::SQLITE_SCHEMA).unwrap()
}

/// A private cluster of this test's own (stopped when dropped) and a registry in it.
fn postgres_registry(name: &str) -> (LocalCluster, Registry) {
    let dir: std::path::PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "target", "pg-tests", name].iter().collect();
    let _ = std::fs::remove_dir_all(&dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cluster = LocalCluster::start(&dir, port).unwrap();
    let db = Box::new(PostgresDatabase::connect(&cluster.params()).unwrap());
    (cluster, Registry::open(db, &sql::POSTGRES_SCHEMA).unwrap())
}

fn binding(tee: Tee, fill: u8) -> Binding {
    Binding { tee, measurement: vec![fill; 48], host_data: vec![0x44; 48] }
}

fn wrapped(version: u32) -> Vec<u8> {
    vec![version as u8; 60]
}

fn admin(action: &str, time_ms: u64, version: Option<u32>) -> AuditEntry {
    AuditEntry {
        time_ms,
        actor: "admin".into(),
        action: action.into(),
        key_id: Some(KEY_ID),
        version,
        detail: "{}".into(),
    }
}

#[test]
fn versions_are_kept_retired_together_and_audited_sqlite() {
    versions_are_kept_retired_together_and_audited(registry("versions"));
}

#[test]
fn versions_are_kept_retired_together_and_audited_postgres() {
    let (_cluster, registry) = postgres_registry("versions");
    versions_are_kept_retired_together_and_audited(registry);
}

fn versions_are_kept_retired_together_and_audited(mut registry: Registry) {
    assert_eq!(registry.next_version(&KEY_ID).unwrap(), 1);
    // Rotating a key that does not exist, or creating one twice, or skipping a version: refused.
    assert!(registry.add_version(&KEY_ID, 1, &wrapped(1), false, &admin("rotate", 1, Some(1))).is_err());
    registry.add_version(&KEY_ID, 1, &wrapped(1), true, &admin("create", 1_001, Some(1))).unwrap();
    assert!(registry.add_version(&KEY_ID, 2, &wrapped(2), true, &admin("create", 2, Some(2))).is_err());
    assert!(registry.add_version(&KEY_ID, 3, &wrapped(3), false, &admin("rotate", 3, Some(3))).is_err());
    registry.add_version(&KEY_ID, 2, &wrapped(2), false, &admin("rotate", 1_002, Some(2))).unwrap();
    let versions = registry.versions(&KEY_ID).unwrap();
    let summary: Vec<_> = versions.iter().map(|v| (v.version, v.wrapped.clone(), v.state, v.created_ms)).collect();
    assert_eq!(summary, [(1, wrapped(1), KeyState::Active, 1_001), (2, wrapped(2), KeyState::Active, 1_002)]);
    assert!(registry.versions(&[0; 16]).unwrap().is_empty());

    // Bindings: an active version, each once; the newest bound active version is the releasable one.
    let (snp, plain) = (binding(Tee::Snp, 0x5e), binding(Tee::Plain, 0x4d));
    registry.bind(&KEY_ID, 1, &plain, &admin("bind", 1_003, Some(1))).unwrap();
    assert!(registry.bind(&KEY_ID, 1, &plain, &admin("bind", 4, Some(1))).is_err());
    assert!(registry.bind(&KEY_ID, 9, &plain, &admin("bind", 4, Some(9))).is_err());
    registry.bind(&KEY_ID, 2, &plain, &admin("bind", 1_004, Some(2))).unwrap();
    registry.bind(&KEY_ID, 2, &snp, &admin("bind", 1_005, Some(2))).unwrap();
    assert_eq!(registry.bindings(&KEY_ID, 2).unwrap(), [plain.clone(), snp.clone()]);
    assert_eq!(registry.releasable(&KEY_ID, &plain).unwrap(), Some((2, wrapped(2))));
    assert_eq!(registry.releasable(&KEY_ID, &binding(Tee::Tdx, 0x5e)).unwrap(), None);
    assert_eq!(registry.releasable(&[0; 16], &plain).unwrap(), None);

    // Retiring version 2 leaves version 1 releasable for the plain launch; retiring the key leaves nothing.
    assert_eq!(registry.retire(&KEY_ID, Some(2), &admin("retire", 2_000, Some(2))).unwrap(), 1);
    assert!(registry.retire(&KEY_ID, Some(2), &admin("retire", 5, Some(2))).is_err());
    assert_eq!(registry.releasable(&KEY_ID, &plain).unwrap(), Some((1, wrapped(1))));
    assert_eq!(registry.releasable(&KEY_ID, &snp).unwrap(), None);
    assert!(registry.bind(&KEY_ID, 2, &binding(Tee::Tdx, 1), &admin("bind", 6, Some(2))).is_err());
    assert_eq!(registry.retire(&KEY_ID, None, &admin("retire", 2_001, None)).unwrap(), 1);
    assert!(registry.retire(&KEY_ID, None, &admin("retire", 7, None)).is_err());
    assert_eq!(registry.releasable(&KEY_ID, &plain).unwrap(), None);
    // A retired key is never made active again.
    assert!(registry.add_version(&KEY_ID, 3, &wrapped(3), false, &admin("rotate", 8, Some(3))).is_err());
    let states: Vec<_> = registry.versions(&KEY_ID).unwrap().into_iter().map(|v| (v.state, v.retired_ms)).collect();
    assert_eq!(states, [(KeyState::Retired, Some(2_001)), (KeyState::Retired, Some(2_000))]);

    // Only the acts that took effect are in the trail.
    let trail: Vec<_> = registry.audit_trail().unwrap().into_iter().map(|a| (a.action, a.time_ms)).collect();
    let expected = [
        ("create", 1_001),
        ("rotate", 1_002),
        ("bind", 1_003),
        ("bind", 1_004),
        ("bind", 1_005),
        ("retire", 2_000),
        ("retire", 2_001),
    ];
    assert_eq!(trail, expected.map(|(a, t)| (a.to_string(), t)));
    assert_eq!(registry.all().unwrap().len(), 2);
}

#[test]
fn decisions_are_audit_rows_with_metadata_only_sqlite() {
    decisions_are_audit_rows_with_metadata_only(registry("decisions"));
}

#[test]
fn decisions_are_audit_rows_with_metadata_only_postgres() {
    let (_cluster, registry) = postgres_registry("decisions");
    decisions_are_audit_rows_with_metadata_only(registry);
}

fn decisions_are_audit_rows_with_metadata_only(mut registry: Registry) {
    let refusal = AuditEntry {
        time_ms: 5,
        actor: "broker:a".into(),
        action: "refusal".into(),
        key_id: None,
        version: None,
        detail: r#"{"peer":"127.0.0.1:1","reason":"unknown_measurement"}"#.into(),
    };
    registry.audit(&refusal).unwrap();
    let release = AuditEntry { action: "release".into(), key_id: Some(KEY_ID), version: Some(3), ..refusal.clone() };
    registry.audit(&release).unwrap();
    assert_eq!(registry.audit_trail().unwrap(), [refusal, release]);
}

#[test]
fn a_transaction_that_fails_leaves_nothing_behind_sqlite() {
    a_transaction_that_fails_leaves_nothing_behind(registry("rollback"));
}

#[test]
fn a_transaction_that_fails_leaves_nothing_behind_postgres() {
    let (_cluster, registry) = postgres_registry("rollback");
    a_transaction_that_fails_leaves_nothing_behind(registry);
}

fn a_transaction_that_fails_leaves_nothing_behind(registry: Registry) {
    let mut db = registry.db;
    let result = db.transaction(&mut |s| {
        s.execute(
            sql::INSERT_AUDIT,
            &[Param::Int(1), Param::Text("admin"), Param::Text("create"), Param::Null, Param::Null, Param::Text("{}")],
        )?;
        anyhow::bail!("the act failed after its audit row")
    });
    assert!(result.is_err());
    let mut rows = Vec::new();
    db.transaction(&mut |s| {
        rows = s.query(sql::AUDIT_TRAIL, &[])?;
        Ok(())
    })
    .unwrap();
    assert!(rows.is_empty(), "the rolled-back audit row is there: {rows:?}");
}

#[test]
fn a_row_that_is_not_a_registry_row_is_an_error_not_a_key() {
    let mut registry = registry("corrupt");
    registry.add_version(&KEY_ID, 1, &wrapped(1), true, &admin("create", 1, Some(1))).unwrap();
    registry
        .db
        .transaction(&mut |s| {
            s.execute("UPDATE model_keys SET state = 'lost'", &[])?;
            Ok(())
        })
        .unwrap();
    assert!(registry.versions(&KEY_ID).is_err());
}
