//! Real hardware output that other projects publish, for tests, read from cargo's registry where the dependency
//! was unpacked (nothing of it is committed here):
//!
//! - the Milan and Turin reports, VCEKs and AMD chains the sev crate 8.0.0 ships (`tests/certs_data/`);
//! - the TDX and SGX quotes and collateral dcap-qvl 0.7.1 ships (`sample/`).

use std::path::{Path, PathBuf};

/// The path of `path` inside the unpacked sources of `package` (e.g. "sev-8.0.0") in cargo's registry
/// (`$CARGO_HOME`, by default `~/.cargo`). Panics with the place it looked if it is missing: a test that needs it
/// cannot run without it.
pub fn registry_file(package: &str, path: &str) -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .expect("CARGO_HOME or HOME is set");
    let registries = std::fs::read_dir(cargo_home.join("registry/src")).expect("cargo's registry sources");
    registries
        .filter_map(|entry| Some(entry.ok()?.path().join(package).join(path)))
        .find(|file| file.is_file())
        .unwrap_or_else(|| panic!("{package}/{path} is not in {}", cargo_home.display()))
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The path of `name` in the sev crate's published test data.
pub fn sev_test_data_path(name: &str) -> PathBuf {
    registry_file("sev-8.0.0", &format!("tests/certs_data/{name}"))
}

/// The bytes of `name` in the sev crate's published test data.
pub fn sev_test_data(name: &str) -> Vec<u8> {
    read(sev_test_data_path(name))
}

/// The bytes of `name` in dcap-qvl's published samples.
pub fn dcap_qvl_sample(name: &str) -> Vec<u8> {
    read(dcap_qvl_sample_path(name))
}

/// The path of `name` in dcap-qvl's published samples (for configurations that name files).
pub fn dcap_qvl_sample_path(name: &str) -> PathBuf {
    registry_file("dcap-qvl-0.7.1", &format!("sample/{name}"))
}
