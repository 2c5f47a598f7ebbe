//! The reset stub's CPU check (ovmf::cpu_features::REQUIRED) must cover every feature rustc enables for the
//! guest's target CPU (kernel/.cargo/config.toml): compiled Rust may use any of them before anything else checks.

use std::process::Command;

fn guest_target_cpu() -> String {
    let config = std::fs::read_to_string(xtask::paths::repo_root().join("kernel/.cargo/config.toml")).unwrap();
    let flag = config.split('"').find(|s| s.starts_with("target-cpu=")).expect("kernel config sets target-cpu");
    flag.trim_start_matches("target-cpu=").to_string()
}

#[test]
fn every_target_feature_of_the_guest_cpu_is_checked_at_reset() {
    let cpu = guest_target_cpu();
    let out = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .args(["--print", "cfg", "--target", "x86_64-unknown-linux-gnu", "-C"])
        .arg(format!("target-cpu={cpu}"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let enabled: Vec<&str> =
        text.lines().filter_map(|l| l.strip_prefix("target_feature=\"")).map(|f| f.trim_end_matches('"')).collect();
    assert!(enabled.contains(&"avx2"), "rustc reports {enabled:?} for {cpu}");
    let checked: Vec<&str> = ovmf::cpu_features::REQUIRED.iter().map(|f| f.name()).collect();
    let unchecked: Vec<&&str> = enabled.iter().filter(|f| !checked.contains(f)).collect();
    assert!(unchecked.is_empty(), "target-cpu={cpu} enables {unchecked:?}, which the reset stub does not check");
}
