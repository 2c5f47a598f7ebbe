//! The shared store: PostgreSQL, for several broker replicas. Each replica holds its own connection; the server
//! serializes their writes, and a committed transaction is durable (`synchronous_commit` is on by default).

use anyhow::{Context, Result};
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls};

use super::{Database, Param, Statements, Value};

/// A connection to a PostgreSQL database.
pub struct PostgresDatabase {
    client: Client,
}

impl PostgresDatabase {
    /// Connects with a libpq-style connection string (`host=127.0.0.1 port=5432 user=... password=... dbname=...`).
    /// Loopback or a private network only: the connection is not encrypted (it carries wrapped keys and metadata,
    /// never a plaintext key).
    pub fn connect(params: &str) -> Result<PostgresDatabase> {
        let client = Client::connect(params, NoTls).context("connecting to PostgreSQL")?;
        Ok(PostgresDatabase { client })
    }
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Param::Bytes(b) => b.to_sql(ty, out),
            Param::Int(i) => i.to_sql(ty, out),
            Param::Text(t) => t.to_sql(ty, out),
            Param::Null => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Each variant's own conversion checks the column's type.
        true
    }

    to_sql_checked!();
}

struct PostgresStatements<'a, 'b>(&'a mut postgres::Transaction<'b>);

impl Statements for PostgresStatements<'_, '_> {
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        Ok(self.0.execute(sql, &params)?)
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Vec<Value>>> {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let mut rows = Vec::new();
        for row in self.0.query(sql, &params)? {
            let mut values = Vec::with_capacity(row.len());
            for (i, column) in row.columns().iter().enumerate() {
                let value = match *column.type_() {
                    Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Bytes),
                    Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Value::Int),
                    Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(|v| Value::Int(v.into())),
                    Type::TEXT => row.try_get::<_, Option<String>>(i)?.map(Value::Text),
                    ref other => anyhow::bail!("a registry column of type {other}"),
                };
                values.push(value.unwrap_or(Value::Null));
            }
            rows.push(values);
        }
        Ok(rows)
    }
}

impl Database for PostgresDatabase {
    fn transaction(&mut self, work: &mut dyn FnMut(&mut dyn Statements) -> Result<()>) -> Result<()> {
        let mut transaction = self.client.transaction().context("beginning a PostgreSQL transaction")?;
        work(&mut PostgresStatements(&mut transaction))?;
        transaction.commit().context("committing to PostgreSQL")
    }
}
