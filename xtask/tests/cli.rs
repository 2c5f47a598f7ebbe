//! The xtask command line, as a user runs it.

use std::process::Command;

fn xtask() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
}

#[test]
fn run_qemu_refuses_a_truncated_image_with_a_clear_message() {
    let dir = std::env::temp_dir().join(format!("ampoule-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("truncated.bin", vec![0u8; 100_000], "not a multiple of 64 KiB"),
        ("small.bin", vec![0u8; 64 * 1024], "exactly"),
        ("empty.bin", Vec::new(), "empty"),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = xtask().args(["run-qemu", "--image"]).arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} was accepted");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(stderr.contains("refusing"), "{name}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_qemu_reports_a_missing_image_file() {
    let out = xtask().args(["run-qemu", "--image", "/nonexistent/ampoule.bin"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ampoule.bin"));
}
