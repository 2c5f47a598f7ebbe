//! The xtask command line, as a user runs it.

mod common;

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

#[test]
fn numbers_out_of_range_are_refused_at_once_naming_the_range() {
    // Before: `measure --vcpus 4294967295` did not end, and `--vcpus 100000` ran for seconds.
    for args in [
        &["measure", "--vcpus", "4294967295"][..],
        &["measure", "--vcpus", "100000"],
        &["measure", "--vcpus", "0"],
        &["run-qemu", "--vcpus", "4097"],
        &["run-qemu", "--timeout", "0"],
        &["run-qemu", "--timeout", "18446744073709551615"],
        &["bench", "--runs", "0"],
        &["bench", "--runs", "1001"],
        &["fuzz", "--seconds", "0"],
        &["test", "--fuzz-seconds", "86401"],
        &["storm", "--seconds", "0"],
    ] {
        let started = std::time::Instant::now();
        let out = xtask().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains("not in ") || stderr.contains("out of range"), "{args:?}: {stderr}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{args:?} took {:?}", started.elapsed());
    }
}

#[test]
fn interrupting_xtask_alone_ends_its_qemu() {
    // Before: SIGINT to xtask's pid (as a supervisor sends it) left QEMU running at 100% CPU.
    let image = common::image(xtask::image::Variant::FaultInjection);
    for signal in ["INT", "TERM", "KILL"] {
        let mut child = xtask()
            .args(["run-qemu", "--inject", "hang", "--timeout", "120", "--image"])
            .arg(&image)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let qemu = loop {
            if let Some(&pid) = xtask::procfs::children(child.id(), "qemu-system-x86").first() {
                break pid;
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(60), "QEMU never started");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert!(xtask::procfs::alive(qemu));
        let sent = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
        assert!(sent.success());
        child.wait().unwrap();
        let stopped = std::time::Instant::now();
        while xtask::procfs::alive(qemu) && stopped.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(!xtask::procfs::alive(qemu), "QEMU {qemu} outlived xtask after SIG{signal}");
    }
}

#[test]
fn print_cmdline_binds_snp_and_tdx_launches_to_the_sealed_model() {
    use base64::Engine;
    let root = xtask::paths::repo_root();
    let state = xtask::broker_state::BrokerState::for_checkout(&root, Default::default());
    let blob = xtask::sealing::ensure_sealed(&root, &xtask::manifest::named(&root, "mlp").unwrap(), &state).unwrap();
    let digest = *xtask::model_delivery::header_of(&blob).unwrap().digest();
    let base64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let image = common::image(xtask::image::Variant::Release);
    let cases = [
        ("snp", format!("host-data={}", base64(&digest[..32]))),
        ("tdx", format!(r#""mrconfigid":"{}""#, base64(&digest))),
    ];
    for (tee, binding) in cases {
        let out = xtask().args(["run-qemu", "--tee", tee, "--print-cmdline", "--image"]).arg(&image).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{tee}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(&binding), "{tee}: no {binding} in {stdout}");
        assert!(stdout.contains(&format!("name=opt/ampoule/model,file={}", blob.display())), "{tee}: {stdout}");
        assert!(!stdout.contains("opt/ampoule/host-data"), "{tee}: a real launch binds in its own field: {stdout}");
    }
}
