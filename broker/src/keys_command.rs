//! `ampoule-broker keys ...`: the lifecycle commands ([`broker::lifecycle`]), one JSON line of output per result.
//! Key material is never printed: only ids, versions, states, times and bindings.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use broker::config::{Config, parse_key_id, parse_tee};
use broker::custody::KeyCustody;
use broker::lifecycle::{self, Actor};
use broker::registry::{Binding, Registry};
use clap::Subcommand;
use protocol::sealed_blob::{BlobDigest, launch_binding};
use serde_json::json;

/// The lifecycle commands.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make a new key (version 1, bound to nothing yet); prints its id. `cargo xtask seal` seals a model under it.
    Create,
    /// Every key version: state, times, bindings.
    List,
    /// Release a version to guests of one launch: its TEE, measurement and sealed model.
    Bind {
        /// The key id (32 hex digits).
        key_id: String,
        /// The version.
        #[arg(long)]
        version: u32,
        /// `plain`, `snp` or `tdx`.
        #[arg(long)]
        tee: String,
        /// The launch measurement (96 hex digits).
        #[arg(long)]
        measurement: String,
        /// The sealed model's digest the launch is bound to (96 hex digits, as `cargo xtask seal` prints it).
        #[arg(long)]
        model_digest: String,
    },
    /// Make the next version of a key (bound to nothing yet); the older versions stay active until retired.
    Rotate {
        /// The key id.
        key_id: String,
    },
    /// Never release a version (or every version) of a key again.
    Retire {
        /// The key id.
        key_id: String,
        /// Only this version.
        #[arg(long)]
        version: Option<u32>,
    },
    /// The audit trail, oldest first.
    ExportAudit,
    /// Import a key store of the old format (`keys.toml`): each key wrapped into the registry, the file erased.
    Import {
        /// The file.
        file: PathBuf,
    },
}

fn now_ms() -> u64 {
    (broker::system_clock())()
}

fn open(config: &Config) -> Result<Registry> {
    config.store.as_ref().context("the configuration has no [store]")?.open()
}

fn custody(config: &Config) -> Result<KeyCustody> {
    let token = config.custody.as_ref().context("the configuration has no [custody]")?;
    KeyCustody::open_or_create_kek(token)
}

fn parse_hex48(what: &str, text: &str) -> Result<Vec<u8>> {
    let bytes = hex::decode(text).with_context(|| format!("{what} {text:?} is not hex"))?;
    ensure!(bytes.len() == 48, "{what} is 48 bytes (96 hex digits), not {}", bytes.len());
    Ok(bytes)
}

/// Runs one command.
pub fn run(config_path: &Path, command: KeysCommand) -> Result<()> {
    let config = Config::load(config_path)?;
    let mut registry = open(&config)?;
    let actor = Actor { name: "admin".into(), now_ms: now_ms() };
    match command {
        KeysCommand::Create => {
            let (key_id, _key) = lifecycle::create(&mut registry, &custody(&config)?, &actor)?;
            println!("{}", json!({ "key_id": hex::encode(key_id), "version": 1 }));
        }
        KeysCommand::Rotate { key_id } => {
            let key_id = parse_key_id(&key_id)?;
            let (version, _key) = lifecycle::rotate(&mut registry, &custody(&config)?, &key_id, &actor)?;
            println!("{}", json!({ "key_id": hex::encode(key_id), "version": version }));
        }
        KeysCommand::Bind { key_id, version, tee, measurement, model_digest } => {
            let key_id = parse_key_id(&key_id)?;
            let tee = parse_tee(&tee)?;
            let digest: BlobDigest = parse_hex48("model_digest", &model_digest)?.try_into().expect("48 bytes");
            let binding = Binding {
                tee,
                measurement: parse_hex48("measurement", &measurement)?,
                host_data: launch_binding(tee, &digest).to_vec(),
            };
            lifecycle::bind(&mut registry, &key_id, version, &binding, &actor)?;
            println!("{}", json!({ "key_id": hex::encode(key_id), "version": version, "bound": tee.as_str() }));
        }
        KeysCommand::Retire { key_id, version } => {
            let key_id = parse_key_id(&key_id)?;
            let retired = lifecycle::retire(&mut registry, &key_id, version, &actor)?;
            println!("{}", json!({ "key_id": hex::encode(key_id), "retired_versions": retired }));
        }
        KeysCommand::List => {
            for version in registry.all()? {
                let bindings: Vec<_> = registry
                    .bindings(&version.key_id, version.version)?
                    .iter()
                    .map(|b| {
                        json!({
                            "tee": b.tee.as_str(),
                            "measurement": hex::encode(&b.measurement),
                            "host_data": hex::encode(&b.host_data),
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    json!({
                        "key_id": hex::encode(version.key_id),
                        "version": version.version,
                        "state": version.state.as_str(),
                        "created_ms": version.created_ms,
                        "retired_ms": version.retired_ms,
                        "bindings": bindings,
                    })
                );
            }
        }
        KeysCommand::ExportAudit => {
            for entry in registry.audit_trail()? {
                let detail: serde_json::Value = serde_json::from_str(&entry.detail).unwrap_or(json!(entry.detail));
                println!(
                    "{}",
                    json!({
                        "time_ms": entry.time_ms,
                        "actor": entry.actor,
                        "action": entry.action,
                        "key_id": entry.key_id.map(hex::encode),
                        "version": entry.version,
                        "detail": detail,
                    })
                );
            }
        }
        KeysCommand::Import { file } => {
            let imported = lifecycle::import_toml(&mut registry, &custody(&config)?, &file, &actor)?;
            for key_id in imported {
                println!("{}", json!({ "key_id": hex::encode(key_id), "version": 1, "imported": true }));
            }
            eprintln!("ampoule-broker: {} erased and removed; bind the imported keys with `keys bind`", file.display());
        }
    }
    Ok(())
}
