//! `ampoule-broker --config broker.toml`: serves until killed.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use broker::Broker;
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
    broker.announce(&listener.local_addr()?.to_string());
    broker::server::serve(broker, listener, Arc::new(AtomicBool::new(false)))?;
    Ok(())
}
