//! The registry on SQLite: versions, retirement, the audit trail, and transactions that take effect whole or not
//! at all. (The same statements run on PostgreSQL in the replica tests.)

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

fn version(version: u32) -> KeyVersion {
    KeyVersion {
        key_id: KEY_ID,
        version,
        wrapped: vec![version as u8; 60],
        binding: Binding { tee: Tee::Plain, measurement: vec![0x4d; 48], host_data: vec![0x44; 48] },
        state: KeyState::Active,
        created_ms: 1_000 + u64::from(version),
        retired_ms: None,
    }
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
fn versions_are_kept_retired_together_and_audited() {
    let mut registry = registry("versions");
    registry.insert(&version(1), &admin("create", 1_001, Some(1))).unwrap();
    registry.insert(&version(2), &admin("rotate", 1_002, Some(2))).unwrap();
    assert_eq!(registry.versions(&KEY_ID).unwrap(), [version(1), version(2)]);
    assert!(registry.versions(&[0; 16]).unwrap().is_empty());
    // The same version twice is refused, and leaves no audit row.
    assert!(registry.insert(&version(2), &admin("rotate", 1_003, Some(2))).is_err());
    assert_eq!(registry.retire(&KEY_ID, &admin("retire", 2_000, None)).unwrap(), 2);
    let retired: Vec<_> = registry.versions(&KEY_ID).unwrap().into_iter().map(|v| (v.state, v.retired_ms)).collect();
    assert_eq!(retired, [(KeyState::Retired, Some(2_000)); 2]);
    // Retiring again finds nothing active: refused, and not audited.
    assert!(registry.retire(&KEY_ID, &admin("retire", 2_001, None)).is_err());
    let actions: Vec<_> = registry.audit_trail().unwrap().into_iter().map(|a| (a.action, a.time_ms)).collect();
    assert_eq!(actions, [("create".into(), 1_001), ("rotate".into(), 1_002), ("retire".into(), 2_000)]);
    assert_eq!(registry.all().unwrap().len(), 2);
}

#[test]
fn decisions_are_audit_rows_with_metadata_only() {
    let mut registry = registry("decisions");
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
fn a_transaction_that_fails_leaves_nothing_behind() {
    let mut db = database("rollback");
    db.transaction(&mut |s| {
        for statement in sql::SQLITE_SCHEMA {
            s.execute(statement, &[])?;
        }
        Ok(())
    })
    .unwrap();
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
    registry.insert(&version(1), &admin("create", 1, Some(1))).unwrap();
    registry
        .db
        .transaction(&mut |s| {
            s.execute("UPDATE model_keys SET state = 'lost'", &[])?;
            Ok(())
        })
        .unwrap();
    assert!(registry.versions(&KEY_ID).is_err());
}
