//! Real hardware output that other projects publish, for tests: the Milan and Turin reports, VCEKs and AMD chains
//! the sev crate ships with its sources (`tests/certs_data/`). Read from cargo's registry, where the sev 8.0.0
//! dependency of the broker and xtask was unpacked; nothing of it is committed here.

use std::path::{Path, PathBuf};

/// The path of `name` in the sev crate's published test data (`$CARGO_HOME`, by default `~/.cargo`). Panics with
/// the place it looked if it is missing: a test that needs it cannot run without it.
pub fn sev_test_data_path(name: &str) -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .expect("CARGO_HOME or HOME is set");
    let registries = std::fs::read_dir(cargo_home.join("registry/src")).expect("cargo's registry sources");
    registries
        .filter_map(|entry| Some(entry.ok()?.path().join("sev-8.0.0/tests/certs_data").join(name)))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("the sev 8.0.0 sources with tests/certs_data/{name} are not in {}", cargo_home.display())
        })
}

/// The bytes of `name` in the sev crate's published test data.
pub fn sev_test_data(name: &str) -> Vec<u8> {
    let path = sev_test_data_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
