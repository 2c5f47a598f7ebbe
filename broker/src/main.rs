//! `ampoule-broker --config broker.toml`: serves until killed.
//! `ampoule-broker --config broker.toml keys create|list|bind|rotate|retire|export-audit|import`: the key
//! lifecycle, against the configuration's `[custody]` token and `[store]` registry; every act audited.

mod keys_command;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use broker::Broker;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ampoule-broker", about = "Releases model keys to guests whose evidence checks out")]
struct Cli {
    /// The configuration file (before the subcommand).
    #[arg(long)]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve guests (the default).
    Serve,
    /// The key lifecycle: needs `[custody]` (the token) and `[store]` (the registry) in the configuration.
    #[command(subcommand)]
    Keys(keys_command::KeysCommand),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let broker = Arc::new(Broker::from_config_file(&cli.config)?);
            let listen = broker.config().listen.clone().context("the configuration names no listen address")?;
            let listener = TcpListener::bind(&listen).with_context(|| format!("binding {listen}"))?;
            broker.announce(&listener.local_addr()?.to_string());
            let _metrics = match &broker.config().metrics_listen {
                Some(listen) => {
                    let endpoint = broker::metrics_endpoint::MetricsEndpoint::start(broker.clone(), listen)?;
                    let addr = endpoint.addr.to_string();
                    broker.log(
                        broker::log::Level::Info,
                        "metrics listening",
                        &[("addr", broker::log::Value::Str(&addr))],
                    );
                    Some(endpoint)
                }
                None => None,
            };
            broker::server::serve(broker, listener, Arc::new(AtomicBool::new(false)))?;
            Ok(())
        }
        Command::Keys(command) => keys_command::run(&cli.config, command),
    }
}
