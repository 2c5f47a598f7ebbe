//! The embedded store: SQLite (bundled, so no system library is needed), one file, for one machine's broker.
//! Durability: WAL journal with `synchronous = FULL`, so a committed transaction survives a crash or power cut.

use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use super::{Database, Param, Statements, Value};

/// A SQLite database file.
pub struct SqliteDatabase {
    connection: Connection,
}

impl SqliteDatabase {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteDatabase> {
        let connection = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .context("configuring SQLite")?;
        Ok(SqliteDatabase { connection })
    }
}

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Param::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Param::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(i)),
            Param::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Param::Null => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

struct SqliteStatements<'a>(&'a rusqlite::Transaction<'a>);

impl Statements for SqliteStatements<'_> {
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        let changed = self.0.execute(sql, rusqlite::params_from_iter(params.iter()))?;
        Ok(changed as u64)
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Vec<Value>>> {
        let mut statement = self.0.prepare(sql)?;
        let columns = statement.column_count();
        let rows = statement.query_map(rusqlite::params_from_iter(params.iter()), |row| {
            (0..columns)
                .map(|i| {
                    Ok(match row.get_ref(i)? {
                        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
                        ValueRef::Integer(i) => Value::Int(i),
                        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Null => Value::Null,
                        ValueRef::Real(_) => Value::Null,
                    })
                })
                .collect::<rusqlite::Result<Vec<Value>>>()
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

impl Database for SqliteDatabase {
    fn transaction(&mut self, work: &mut dyn FnMut(&mut dyn Statements) -> Result<()>) -> Result<()> {
        // IMMEDIATE: the write lock is taken at the start, so two brokers on one file serialize, never deadlock.
        let transaction = self.connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        work(&mut SqliteStatements(&transaction))?;
        transaction.commit().context("committing to SQLite")
    }
}
