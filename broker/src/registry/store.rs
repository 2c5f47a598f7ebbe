//! `[store]` in the broker's configuration: where the registry is. Exactly one of
//!
//! ```toml
//! [store]
//! sqlite = "registry.db"                          # embedded: one machine (relative to the configuration file)
//! ```
//! ```toml
//! [store]
//! postgres = "host=127.0.0.1 port=5432 user=ampoule dbname=ampoule"   # shared by several replicas
//! password_file = "pg.password"                   # mode 0600; never a password in the configuration
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{PostgresDatabase, Registry, SqliteDatabase, sql};

/// Where the registry is.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// A SQLite file.
    #[serde(default)]
    pub sqlite: Option<PathBuf>,
    /// A libpq-style connection string without its password.
    #[serde(default)]
    pub postgres: Option<String>,
    /// The PostgreSQL password's file (mode 0600).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

impl StoreConfig {
    /// Makes relative paths relative to `base` (the configuration file's directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        self.sqlite = self.sqlite.as_ref().map(|p| base.join(p));
        self.password_file = self.password_file.as_ref().map(|p| base.join(p));
    }

    /// Checks that exactly one store is named, and that a connection string carries no password.
    pub fn check(&self) -> Result<()> {
        match (&self.sqlite, &self.postgres) {
            (Some(_), None) => ensure!(self.password_file.is_none(), "[store] password_file is for postgres"),
            (None, Some(params)) => ensure!(
                !params.split_whitespace().any(|kv| kv.starts_with("password=")),
                "[store] postgres must not hold the password: name a password_file"
            ),
            _ => bail!("[store] names exactly one of sqlite and postgres"),
        }
        Ok(())
    }

    /// Opens the registry, creating its tables if missing.
    pub fn open(&self) -> Result<Registry> {
        self.check()?;
        if let Some(path) = &self.sqlite {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            return Registry::open(Box::new(SqliteDatabase::open(path)?), &sql::SQLITE_SCHEMA);
        }
        let params = self.postgres.as_ref().context("no store")?;
        let full = match &self.password_file {
            Some(file) => {
                crate::custody::check_private(file)?;
                let password = Zeroizing::new(std::fs::read_to_string(file)?);
                Zeroizing::new(format!("{params} password={}", password.trim()))
            }
            None => Zeroizing::new(params.clone()),
        };
        Registry::open(Box::new(PostgresDatabase::connect(&full)?), &sql::POSTGRES_SCHEMA)
    }
}
