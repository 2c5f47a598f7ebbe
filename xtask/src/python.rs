//! Python reference tools (sev-snp-measure, ...), installed from PyPI into a virtualenv under `target/` when
//! missing, with a one-line message. Versions are pinned.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};

use crate::paths;

/// Pinned PyPI packages and the command that shows they are installed.
#[derive(Clone, Copy, Debug)]
pub struct PythonTool {
    /// `name==version`, space-separated when several.
    pub requirement: &'static str,
    /// The executable it puts in the virtualenv's `bin/`.
    pub executable: &'static str,
    /// Why xtask needs it, for the install message.
    pub why: &'static str,
}

/// AMD's reference calculator of SEV-SNP launch digests.
pub const SEV_SNP_MEASURE: PythonTool = PythonTool {
    requirement: "sev-snp-measure==0.0.13",
    executable: "sev-snp-measure",
    why: "an independent check of the SNP launch digest",
};

/// An independent HPKE (RFC 9180) implementation, for interop tests. It installs no command: its `python` runs
/// the test script.
pub const PYHPKE: PythonTool =
    PythonTool { requirement: "pyhpke==0.6.5", executable: "python", why: "an independent HPKE implementation" };

/// The training stack of `cargo xtask train` (inference/model/train.py).
pub const TRAINING: PythonTool = PythonTool {
    requirement: "scikit-learn==1.9.1 onnx==1.23.2 onnxruntime==1.32.0",
    executable: "python",
    why: "training the model and computing its reference outputs",
};

/// paraphrase-MiniLM-L3-v2's reference outputs (`cargo xtask minilm-reference`): onnxruntime on the ONNX file as
/// shipped, and Hugging Face's tokenizers (the library the client's Rust tokenizer is the core of).
pub const MINILM_REFERENCE: PythonTool = PythonTool {
    requirement: "onnxruntime==1.32.0 tokenizers==0.22.2",
    executable: "python",
    why: "paraphrase-MiniLM-L3-v2's reference outputs",
};

/// A real HTTP client for the REST gateway's tests (`xtask/tests/gateway.rs`).
pub const REQUESTS: PythonTool = PythonTool {
    requirement: "requests==2.32.5",
    executable: "python",
    why: "an HTTP client of another ecosystem against the REST gateway",
};

/// The virtualenv: `target/venv`.
pub fn venv_dir(root: &Path) -> PathBuf {
    paths::target_dir(root).join("venv")
}

/// The virtualenv's own Python (for pip downloads), creating the virtualenv first if needed.
pub fn venv_python(root: &Path) -> Result<PathBuf> {
    let venv = venv_dir(root);
    std::fs::create_dir_all(paths::target_dir(root))?;
    let lock = std::fs::File::create(paths::target_dir(root).join("venv.lock"))?;
    lock.lock().context("locking target/venv.lock")?;
    create_venv(&venv)?;
    Ok(venv.join("bin/python"))
}

fn create_venv(venv: &Path) -> Result<()> {
    if venv.join("bin/python").is_file() {
        return Ok(());
    }
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(venv)
        .stdout(Stdio::null())
        .status()
        .context("running python3 -m venv (is python3 installed?)")?;
    ensure!(status.success(), "python3 -m venv {} failed", venv.display());
    Ok(())
}

/// The path of `tool`'s executable, installing the tool (and the virtualenv) first if needed.
pub fn ensure_tool(root: &Path, tool: PythonTool) -> Result<PathBuf> {
    let venv = venv_dir(root);
    let bin = venv.join("bin");
    let executable = bin.join(tool.executable);
    let marker = venv.join(format!(".installed-{}", tool.requirement.replace(' ', "+")));
    if executable.is_file() && marker.is_file() {
        return Ok(executable);
    }
    // One installer at a time, across threads and processes (tests run in parallel).
    std::fs::create_dir_all(paths::target_dir(root))?;
    let lock = std::fs::File::create(paths::target_dir(root).join("venv.lock"))?;
    lock.lock().context("locking target/venv.lock")?;
    if executable.is_file() && marker.is_file() {
        return Ok(executable);
    }
    eprintln!("xtask: installing {} from PyPI into {} ({})", tool.requirement, venv.display(), tool.why);
    create_venv(&venv)?;
    let log = paths::target_dir(root).join("pip.log");
    let out = Command::new(bin.join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(tool.requirement.split_whitespace())
        .output()
        .context("running pip")?;
    std::fs::write(&log, [out.stdout.as_slice(), out.stderr.as_slice()].concat())?;
    ensure!(out.status.success(), "pip install {} failed; see {}", tool.requirement, log.display());
    ensure!(executable.is_file(), "{} did not install {}", tool.requirement, executable.display());
    std::fs::write(marker, b"")?;
    Ok(executable)
}
