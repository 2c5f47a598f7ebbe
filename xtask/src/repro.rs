//! `cargo xtask repro`: the image must be a function of the source tree alone. Builds it from two copies of the
//! checkout at different paths, with separate target directories and different `CARGO_HOME` paths, and compares
//! the bytes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};

use crate::image::{self, BuildOptions, Variant};
use crate::measure::{self, DEFAULT_GUEST_FEATURES, DEFAULT_VCPU_TYPE, SnpLaunch, VcpuType};
use crate::paths;

/// The two builds.
#[derive(Debug)]
pub struct ReproReport {
    /// Each build's checkout path and image SHA-256.
    pub builds: [(PathBuf, String); 2],
    /// Each build's SNP launch digest (1 vCPU, default type and features) and MRTD, in hex.
    pub measurements: [(String, String); 2],
    /// Whether the images are byte-identical and their measurements equal.
    pub identical: bool,
    /// The offset of the first differing byte, if any.
    pub first_difference: Option<usize>,
}

/// The files of the checkout: tracked and untracked-but-not-ignored (so uncommitted work is checked too).
fn checkout_files(root: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("git")
        .current_dir(root)
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .output()
        .context("running git ls-files")?;
    ensure!(out.status.success(), "git ls-files failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(out
        .stdout
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
        // Deleted-but-tracked files are skipped; symlinks (kernel/shared/) are kept as symlinks.
        .filter(|p| root.join(p).symlink_metadata().is_ok())
        .collect())
}

fn copy_checkout(root: &Path, files: &[PathBuf], dest: &Path) -> Result<()> {
    for file in files {
        let to = dest.join(file);
        fs::create_dir_all(to.parent().expect("a file has a parent"))?;
        let from = root.join(file);
        if from.symlink_metadata()?.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else {
            fs::copy(&from, &to).with_context(|| format!("copying {}", file.display()))?;
        }
    }
    Ok(())
}

/// Copies the checkout's files (tracked, and untracked but not ignored) to `dest`: a checkout at another path with
/// no target directory (repro; the bring-your-own-model test, which adds a model to a copy).
pub fn copy_of_checkout(root: &Path, dest: &Path) -> Result<()> {
    copy_checkout(root, &checkout_files(root)?, dest)
}

/// A second `CARGO_HOME` at a different path that shares the first one's downloaded crates through symlinks, so
/// the second build sees different registry paths without downloading anything again.
fn second_cargo_home(dir: &Path) -> Result<PathBuf> {
    let original = image::cargo_home()?;
    fs::create_dir_all(dir)?;
    for shared in ["registry", "git"] {
        let from = original.join(shared);
        if from.exists() {
            std::os::unix::fs::symlink(&from, dir.join(shared))?;
        }
    }
    Ok(dir.to_path_buf())
}

/// Builds the release image twice, from `target/repro/a/...` and `target/repro/second-checkout/...`; removes
/// both copies when the images are identical.
pub fn run(root: &Path, verbose: bool) -> Result<ReproReport> {
    let work = paths::target_dir(root).join("repro");
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    let files = checkout_files(root)?;
    // The image is a function of the source tree alone (code only; the sealed model is handed over at launch).
    let checkouts = [work.join("a/ampoule"), work.join("second-checkout/somewhere/else/ampoule")];
    let mut builds = Vec::new();
    for (i, checkout) in checkouts.iter().enumerate() {
        copy_checkout(root, &files, checkout)?;
        let cargo_home = if i == 1 { Some(second_cargo_home(&work.join("cargo-home-b"))?) } else { None };
        let options = BuildOptions {
            root: checkout.clone(),
            target_dir: checkout.join("target/kernel"),
            out_dir: checkout.join("target/ampoule"),
            cargo_home,
            verbose,
        };
        builds.push(image::build(Variant::Release, &options)?);
    }
    let launch = SnpLaunch {
        vcpus: 1,
        vcpu_type: VcpuType::by_name(DEFAULT_VCPU_TYPE)?,
        guest_features: DEFAULT_GUEST_FEATURES,
    };
    let measured = |bytes: &[u8]| -> Result<(String, String)> {
        let m = measure::measure(bytes, &launch)?;
        Ok((measure::hex(&m.snp), measure::hex(&m.mrtd)))
    };
    let measurements = [measured(&builds[0].bytes)?, measured(&builds[1].bytes)?];
    let (a, b) = (&builds[0].bytes, &builds[1].bytes);
    let first_difference =
        a.iter().zip(b.iter()).position(|(x, y)| x != y).or((a.len() != b.len()).then_some(a.len().min(b.len())));
    let report = ReproReport {
        builds: [(checkouts[0].clone(), builds[0].sha256_hex()), (checkouts[1].clone(), builds[1].sha256_hex())],
        identical: a == b && measurements[0] == measurements[1],
        measurements,
        first_difference,
    };
    // Two checkouts with their target directories are ~0.8 GB: kept only when they differ, for inspection.
    if report.identical {
        fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    Ok(report)
}
