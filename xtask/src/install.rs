//! Installing what the commands need and the machine lacks, with a one-line message: Debian packages through
//! apt-get (as root), or the exact command to run otherwise.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Whether `program` is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// Whether a Debian package is installed.
pub fn deb_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Installs Debian `packages` that are missing, saying why in one line. apt's output goes to `log_dir/apt.log`.
pub fn ensure_debian_packages(packages: &[&str], why: &str, log_dir: &Path) -> Result<()> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !deb_installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let command = format!("apt-get install -y --no-install-recommends {}", missing.join(" "));
    if !is_root() {
        bail!("{} missing ({why}); install with: sudo apt-get update && sudo {command}", missing.join(", "));
    }
    eprintln!("xtask: installing {} from Debian's packages ({why})", missing.join(" "));
    std::fs::create_dir_all(log_dir)?;
    let log_path = log_dir.join("apt.log");
    let log = std::fs::File::create(&log_path)?;
    let run = |args: &[&str]| -> Result<bool> {
        Ok(Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            .status()
            .context("running apt-get")?
            .success())
    };
    let mut install: Vec<&str> = vec!["install", "-y", "--no-install-recommends"];
    install.extend(&missing);
    // The package lists may be missing or stale on a fresh machine: update once, then install.
    if !run(&["update", "-q"])? || !run(&install)? {
        bail!("`{command}` failed; see {}", log_path.display());
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}
