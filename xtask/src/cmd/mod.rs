//! The bodies of the commands with more than a few lines; main.rs holds the command line and dispatch.

pub mod build;
pub mod measure;
pub mod run;
mod run_client;
pub mod storm;
pub mod test;

use std::time::Instant;

use anyhow::Result;

/// Runs `f` as a named step, with its time.
pub fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let started = Instant::now();
    eprintln!("xtask: {name} ...");
    let value = f()?;
    eprintln!("xtask: {name}: done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(value)
}

/// Parses `0x...` or bare hex.
pub fn parse_hex_u64(text: &str) -> Result<u64, String> {
    u64::from_str_radix(text.trim_start_matches("0x"), 16).map_err(|e| format!("{text:?} is not hex: {e}"))
}
