//! The guest passes `--cfg feature="fma"` to every crate it compiles (kernel/.cargo/config.toml) so that gemm, which
//! without std picks its AVX2/FMA matmul kernels on `cfg!(feature = "fma")`, picks them. A cfg given to every crate
//! must change nothing but that choice: no crate of the guest's graph may declare a feature named "fma", and the only
//! sources that test it must be gemm's. When a gemm release tests `target_feature` instead, this test fails and the
//! cfg can go.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

/// The crates whose sources test the feature "fma" today: gemm-common's dispatch macro (expanded in gemm-f32,
/// gemm-f64, gemm-c32 and gemm-c64) and gemm-f16's own dispatch.
const EXPECTED_TESTERS: [&str; 2] = ["gemm-common", "gemm-f16"];

#[test]
fn the_guests_fma_cfg_reaches_only_gemms_kernel_choice() {
    let root = xtask::paths::repo_root();
    let config = std::fs::read_to_string(root.join("kernel/.cargo/config.toml")).unwrap();
    assert!(config.contains(r#""--cfg", 'feature="fma"'"#), "the guest no longer passes the cfg; drop this test");

    let output = xtask::paths::cargo(&root.join("kernel"))
        .args(["metadata", "--format-version", "1", "--locked", "--filter-platform", xtask::paths::GUEST_TARGET])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let resolved: BTreeSet<&str> =
        metadata["resolve"]["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    let packages: Vec<&Value> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| resolved.contains(p["id"].as_str().unwrap()))
        .collect();
    assert!(packages.len() > 100, "only {} packages resolved for the guest", packages.len());

    let declaring: Vec<&str> =
        packages.iter().filter(|p| p["features"].get("fma").is_some()).map(|p| p["name"].as_str().unwrap()).collect();
    assert!(declaring.is_empty(), "crates of the guest declare a feature \"fma\": {declaring:?}");

    let testers: BTreeSet<&str> = packages
        .iter()
        .filter(|p| {
            let manifest = Path::new(p["manifest_path"].as_str().unwrap());
            sources_test_fma_feature(manifest.parent().unwrap())
        })
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(testers, BTreeSet::from(EXPECTED_TESTERS));
}

/// Whether a `.rs` file under `dir` tests the crate feature "fma": `feature = "fma"` (not `target_feature`), or
/// gemm's `feature_detected!("fma")` (not std's `is_x86_feature_detected!`, which asks the CPU).
fn sources_test_fma_feature(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            return sources_test_fma_feature(&path);
        }
        if path.extension().is_none_or(|e| e != "rs") {
            return false;
        }
        let text: String =
            std::fs::read_to_string(&path).unwrap_or_default().chars().filter(|c| !c.is_whitespace()).collect();
        ["feature=\"fma\"", "feature_detected!(\"fma\")"]
            .iter()
            .any(|needle| text.match_indices(needle).any(|(at, _)| !text[..at].ends_with('_')))
    })
}

#[test]
fn the_scan_tells_a_crate_feature_from_a_target_feature() {
    let dir = std::env::temp_dir().join(format!("ampoule-guest-cfg-{}", std::process::id()));
    let file = dir.join("src/lib.rs");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    for (source, tests) in [
        ("#[cfg(target_feature = \"fma\")] fn a() {}", false),
        ("fn a() -> bool { std::arch::is_x86_feature_detected!(\"fma\") }", false),
        ("fn a() -> bool { cfg!(feature = \"fma\") }", true),
        ("fn a() -> bool { $crate::feature_detected!( \"fma\" ) }", true),
    ] {
        std::fs::write(&file, source).unwrap();
        assert_eq!(sources_test_fma_feature(&dir), tests, "{source}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
