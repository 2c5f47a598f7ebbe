//! Where things are: the repository, the target directory, the images.

use std::path::{Path, PathBuf};

/// The target the guest, the hypervisor and the benchmarks' host-native builds are compiled for (DESIGN.md §3).
pub const GUEST_TARGET: &str = "x86_64-unknown-linux-gnu";

/// The repository root (the parent of xtask/).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ has a parent").to_path_buf()
}

/// `target/` of the root workspace, which also holds the kernel's build and the images.
pub fn target_dir(root: &Path) -> PathBuf {
    root.join("target")
}

/// Where built images go: `target/ampoule/`.
pub fn image_dir(root: &Path) -> PathBuf {
    target_dir(root).join("ampoule")
}

/// A command running the cargo that runs xtask (`CARGO`, so the toolchain of rust-toolchain.toml), or `cargo` from
/// `PATH` outside cargo, in `dir`.
pub fn cargo(dir: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(dir);
    command
}
