//! SoftHSM2 for development and tests: a configuration and token directory of their own (never the system's),
//! tokens initialized with `softhsm2-util`, each user PIN in a file of mode 0600. Production points `[custody]` at
//! its HSM's module instead. SoftHSM2 finds its configuration through [`CONF_ENV`], which the library reads when a
//! process first initializes it: a process that opens a SoftHSM2 token must have it in its environment from the
//! start (xtask starts broker processes and test runs that way).

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};

use super::TokenConfig;

/// Debian's SoftHSM2 module (package `softhsm2`).
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The environment variable SoftHSM2 reads its configuration's path from.
pub const CONF_ENV: &str = "SOFTHSM2_CONF";

/// A SoftHSM2 installation of its own in `dir`: `softhsm2.conf`, `tokens/`, and one `LABEL.pin` per token.
#[derive(Clone, Debug)]
pub struct SoftHsm {
    dir: PathBuf,
}

impl SoftHsm {
    /// The installation in `dir`, its configuration written if missing.
    pub fn ensure(dir: &Path) -> Result<SoftHsm> {
        let tokens = dir.join("tokens");
        // Its parents as they would be made anyway; itself and its token directory the owner's alone.
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        for own in [dir, tokens.as_path()] {
            if !own.exists() {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(own)
                    .with_context(|| format!("creating {}", own.display()))?;
            }
        }
        let softhsm = SoftHsm { dir: dir.to_path_buf() };
        let conf = softhsm.conf();
        if !conf.exists() {
            let text = format!(
                "# Ampoule's development token store (written by the broker's custody::softhsm).\n\
                 directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            );
            std::fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
        }
        Ok(softhsm)
    }

    /// `softhsm2.conf`: the value [`CONF_ENV`] must have.
    pub fn conf(&self) -> PathBuf {
        self.dir.join("softhsm2.conf")
    }

    /// Whether this process's environment points SoftHSM2 at this installation.
    pub fn is_this_process_configured(&self) -> bool {
        std::env::var_os(CONF_ENV).is_some_and(|value| Path::new(&value) == self.conf())
    }

    /// The token labelled `label`, initialized with fresh random PINs unless it exists; its configuration for the
    /// broker (the user PIN in `LABEL.pin`, mode 0600; the security officer's PIN is not kept). SoftHSM2 lists its
    /// tokens when a process first loads it: make every token before the process that uses them opens one.
    pub fn ensure_token(&self, label: &str) -> Result<TokenConfig> {
        ensure!(
            !label.is_empty() && label.len() <= 32 && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "token label {label:?}: 1 to 32 letters, digits and '-'"
        );
        let pin_file = self.dir.join(format!("{label}.pin"));
        let config = TokenConfig { module: MODULE.into(), token: label.to_string(), pin_file: Some(pin_file.clone()) };
        if pin_file.exists() {
            return Ok(config);
        }
        let (pin, so_pin) = (random_pin()?, random_pin()?);
        let status = Command::new("softhsm2-util")
            .env(CONF_ENV, self.conf())
            .args(["--init-token", "--free", "--label", label, "--pin", &pin, "--so-pin", &so_pin])
            .stdout(std::process::Stdio::null())
            .status()
            .context("running softhsm2-util (Debian's softhsm2)")?;
        ensure!(status.success(), "softhsm2-util could not initialize token {label:?}");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&pin_file)
            .with_context(|| format!("creating {}", pin_file.display()))?;
        std::io::Write::write_all(&mut file, format!("{}\n", *pin).as_bytes())?;
        Ok(config)
    }
}

/// 16 random hex digits.
fn random_pin() -> Result<zeroize::Zeroizing<String>> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 8]);
    getrandom::fill(&mut bytes[..]).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(zeroize::Zeroizing::new(hex::encode(&bytes[..])))
}
