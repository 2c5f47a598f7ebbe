//! `ampoule-broker --config broker.toml`: serves until killed.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use broker::Broker;
use broker::log::{self, Level, Value};
use clap::Parser;

#[derive(Parser)]
#[command(name = "ampoule-broker", about = "Releases model keys to guests whose evidence checks out")]
struct Cli {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let broker = Arc::new(Broker::from_config_file(&cli.config)?);
    let listen = broker.config().listen.clone();
    let listener = TcpListener::bind(&listen).with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?.to_string();
    if broker.config().allow_simulated {
        log::record(
            Level::Warn,
            "SIMULATED EVIDENCE ACCEPTED: plain-mode guests prove nothing; never use this configuration in production",
            &[("allow_simulated", Value::Bool(true))],
        );
    }
    log::record(Level::Info, "listening", &[("addr", Value::Str(&addr))]);
    broker::server::serve(broker, listener, Arc::new(AtomicBool::new(false)))?;
    Ok(())
}
