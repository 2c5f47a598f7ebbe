//! The launch measurements of the release image, checked against other implementations:
//! - SNP: sev-snp-measure (AMD's Python reference, from PyPI into target/venv) and the sev crate's
//!   `measurement::snp` (a Rust port of sev-snp-measure: one witness with it, not two);
//! - malformed images get an error naming the problem and no digest.

mod common;

use std::process::Command;

use common::image;
use xtask::image::Variant;
use xtask::measure::{self, SnpLaunch, VcpuType};
use xtask::paths;
use xtask::python::{self, SEV_SNP_MEASURE};

const VCPU_COUNTS: [u32; 3] = [1, 2, 4];
const VCPU_TYPES: [&str; 4] = ["EPYC-v4", "EPYC-Milan", "EPYC-Genoa", "EPYC-Turin"];
const GUEST_FEATURES: u64 = 0x1;

fn ours(bytes: &[u8], vcpus: u32, vcpu_type: &str) -> String {
    let launch = SnpLaunch { vcpus, vcpu_type: VcpuType::by_name(vcpu_type).unwrap(), guest_features: GUEST_FEATURES };
    measure::hex(&measure::measure(bytes, &launch).unwrap().snp)
}

#[test]
fn snp_digest_agrees_with_sev_snp_measure() {
    let image = image(Variant::Release);
    let bytes = std::fs::read(&image).unwrap();
    let tool = python::ensure_tool(&paths::repo_root(), SEV_SNP_MEASURE).expect("sev-snp-measure installs");
    for vcpus in VCPU_COUNTS {
        for vcpu_type in VCPU_TYPES {
            let out = Command::new(&tool)
                .args(["--mode", "snp", "--vcpus", &vcpus.to_string(), "--vcpu-type", vcpu_type])
                .arg("--guest-features")
                .arg(format!("{GUEST_FEATURES:#x}"))
                .arg("--ovmf")
                .arg(&image)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let reference = String::from_utf8(out.stdout).unwrap().trim().to_string();
            assert_eq!(ours(&bytes, vcpus, vcpu_type), reference, "vcpus={vcpus} type={vcpu_type}");
        }
    }
}

#[test]
fn snp_digest_agrees_with_the_sev_crate() {
    use sev::measurement::snp::{SnpMeasurementArgs, snp_calc_launch_digest};
    use sev::measurement::vcpu_types::CpuType;
    use sev::measurement::vmsa::{GuestFeatures, VMMType};
    let image = image(Variant::Release);
    let bytes = std::fs::read(&image).unwrap();
    for vcpus in VCPU_COUNTS {
        for vcpu_type in ["EPYC-v4", "EPYC-Milan", "EPYC-Genoa"] {
            let args = SnpMeasurementArgs {
                vcpus,
                vcpu_type: CpuType::try_from(vcpu_type).unwrap(),
                ovmf_file: image.clone(),
                guest_features: GuestFeatures(GUEST_FEATURES),
                kernel_file: None,
                initrd_file: None,
                append: None,
                ovmf_hash_str: None,
                vmm_type: Some(VMMType::QEMU),
            };
            let reference = snp_calc_launch_digest(args).unwrap().get_hex_ld();
            assert_eq!(ours(&bytes, vcpus, vcpu_type), reference.to_lowercase(), "vcpus={vcpus} type={vcpu_type}");
        }
    }
}

#[test]
fn every_launch_input_changes_the_digest() {
    let bytes = std::fs::read(image(Variant::Release)).unwrap();
    let base = ours(&bytes, 1, "EPYC-v4");
    assert_ne!(base, ours(&bytes, 2, "EPYC-v4"));
    assert_ne!(base, ours(&bytes, 1, "EPYC-Milan"));
    let launch = SnpLaunch { vcpus: 1, vcpu_type: VcpuType::by_name("EPYC-v4").unwrap(), guest_features: 0 };
    assert_ne!(base, measure::hex(&measure::measure(&bytes, &launch).unwrap().snp));
    // One byte of code changes both measurements.
    let mut changed = bytes.clone();
    changed[0x100] ^= 1;
    let launch = SnpLaunch { guest_features: GUEST_FEATURES, ..launch };
    let (a, b) = (measure::measure(&bytes, &launch).unwrap(), measure::measure(&changed, &launch).unwrap());
    assert_ne!(a.snp, b.snp);
    assert_ne!(a.mrtd, b.mrtd);
}

/// Runs `cargo xtask measure --image` on `bytes`; returns (success, stdout, stderr).
fn measure_cli(name: &str, bytes: &[u8]) -> (bool, String, String) {
    let dir = std::env::temp_dir().join(format!("ampoule-measure-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask")).args(["measure", "--image"]).arg(&path).output().unwrap();
    let _ = std::fs::remove_file(&path);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn measure_refuses_malformed_images_and_prints_no_digest() {
    let bytes = std::fs::read(image(Variant::Release)).unwrap();
    let find = |needle: &[u8]| bytes.windows(needle.len()).position(|w| w == needle).unwrap();
    let len = bytes.len();

    let mut no_footer = bytes.clone();
    no_footer[len - 0x30] ^= 0xff;
    let mut overlapping = bytes.clone();
    let second_sev_section = find(b"ASEV") + 16 + 12;
    overlapping[second_sev_section..second_sev_section + 4].copy_from_slice(&0x0010_1000u32.to_le_bytes());
    let mut out_of_range = bytes.clone();
    let hob = find(b"TDVF") + 16 + 32 * 3;
    out_of_range[hob + 8..hob + 16].copy_from_slice(&0xf000_0000u64.to_le_bytes());

    let cases: [(&str, &[u8], &str); 4] = [
        ("no-footer.bin", &no_footer, "no OVMF footer GUID"),
        ("overlap.bin", &overlapping, "overlap"),
        ("out-of-range.bin", &out_of_range, "outside guest RAM"),
        ("truncated.bin", &bytes[..len - 4096 - 100], "not a whole number of 4 KiB pages"),
    ];
    for (name, image, expected) in cases {
        let (ok, stdout, stderr) = measure_cli(name, image);
        assert!(!ok, "{name} was measured");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(!stdout.contains("digest") && !stdout.contains("mrtd"), "{name} printed a digest: {stdout}");
    }
    let (ok, stdout, _) = measure_cli("good.bin", &bytes);
    assert!(ok && stdout.contains("snp launch digest"));
}

#[test]
fn the_documented_digest_table_is_current() {
    let bytes = std::fs::read(image(Variant::Release)).unwrap();
    let doc = std::fs::read_to_string(paths::repo_root().join(measure::TABLE_DOC)).unwrap();
    let expected = measure::with_digest_table(&doc, &measure::digest_table(&bytes).unwrap()).unwrap();
    assert!(
        doc == expected,
        "{}'s table of predicted digests is stale for this image: run `cargo xtask measure --write-table`",
        measure::TABLE_DOC
    );
}

/// The release image's IGVM rendering with the default vCPU type and features, serialized and parsed back.
fn igvm_rendering() -> (Vec<u8>, igvm::IgvmFile) {
    let bytes = std::fs::read(image(Variant::Release)).unwrap();
    let metadata = ovmf::metadata::parse(&bytes, ovmf::layout::GUEST_RAM_SIZE).unwrap();
    let launch =
        SnpLaunch { vcpus: 1, vcpu_type: VcpuType::by_name("EPYC-v4").unwrap(), guest_features: GUEST_FEATURES };
    let serialized = xtask::igvm::to_bytes(&xtask::igvm::render(&bytes, &metadata, &launch).unwrap()).unwrap();
    let parsed = igvm::IgvmFile::new_from_binary(&serialized, None).expect("the file parses back");
    (serialized, parsed)
}

#[test]
fn igvm_snp_digest_agrees_with_the_igvm_crate() {
    let (serialized, file) = igvm_rendering();
    let reference =
        igvm::measurement::generate_snp_measurement(file.initializations(), file.directives(), xtask::igvm::SNP_MASK)
            .unwrap();
    let ours = measure::igvm::measure_igvm(&serialized).unwrap();
    assert_eq!(measure::hex(&ours.snp), measure::hex(&reference));
}

#[test]
fn mrtd_of_the_bios_image_agrees_with_the_igvm_crate_on_the_tdx_rendering() {
    let bytes = std::fs::read(image(Variant::Release)).unwrap();
    let launch =
        SnpLaunch { vcpus: 1, vcpu_type: VcpuType::by_name("EPYC-v4").unwrap(), guest_features: GUEST_FEATURES };
    let bios_mrtd = measure::measure(&bytes, &launch).unwrap().mrtd;
    let (serialized, file) = igvm_rendering();
    let reference = igvm::measurement::generate_tdx_measurement(file.directives(), xtask::igvm::TDX_MASK).unwrap();
    assert_eq!(measure::hex(&bios_mrtd), measure::hex(&reference), "-bios MRTD vs the igvm crate");
    assert_eq!(measure::hex(&measure::igvm::measure_igvm(&serialized).unwrap().mrtd), measure::hex(&reference));
}

#[test]
fn igvm_rendering_carries_the_bios_reset_state_and_policy() {
    let (_, file) = igvm_rendering();
    let vmsa = file
        .directives()
        .iter()
        .find_map(|d| match d {
            igvm::IgvmDirectiveHeader::SnpVpContext { vmsa, gpa, .. } => Some((vmsa.clone(), *gpa)),
            _ => None,
        })
        .expect("an SNP VP context");
    assert_eq!(vmsa.1, 0xffff_ffff_f000, "KVM measures VMSAs at this GPA");
    assert_eq!(vmsa.0.rdx, u64::from(VcpuType::by_name("EPYC-v4").unwrap().signature()));
    assert_eq!(u64::from(vmsa.0.sev_features), GUEST_FEATURES);
    assert_eq!(vmsa.0.rip, 0xfff0);
    assert!(file.initializations().iter().any(|h| matches!(
        h,
        igvm::IgvmInitializationHeader::GuestPolicy { policy: 0x30000, compatibility_mask: xtask::igvm::SNP_MASK }
    )));
}

#[test]
fn measure_igvm_refuses_what_is_not_an_igvm_file() {
    let (mut serialized, _) = igvm_rendering();
    assert!(measure::igvm::measure_igvm(b"not igvm").is_err());
    serialized.truncate(serialized.len() / 2);
    assert!(measure::igvm::measure_igvm(&serialized).is_err());
}

/// The simulated platform's firmware model (`simulated_platform::launch`, which the hypervisor launches with)
/// is a third implementation, written apart from both: it must agree for the one-vCPU launch it performs.
#[test]
fn snp_digest_agrees_with_the_simulated_platform() {
    use simulated_platform::vmsa::VcpuConfig;
    let bytes = std::fs::read(image(Variant::Release)).unwrap();
    let metadata = ovmf::metadata::parse(&bytes, ovmf::layout::GUEST_RAM_SIZE).unwrap();
    for vcpu_type in VCPU_TYPES {
        let signature = VcpuType::by_name(vcpu_type).unwrap().signature();
        let vcpu = VcpuConfig { signature, sev_features: GUEST_FEATURES };
        let simulated = simulated_platform::launch::measure(&bytes, &metadata, vcpu).unwrap();
        assert_eq!(measure::hex(&simulated), ours(&bytes, 1, vcpu_type), "type={vcpu_type}");
    }
}

/// The simulated TDX module's MRTD (`simulated_platform::tdx::mrtd`, which the hypervisor builds TDs with) is
/// another implementation, written apart from `measure`'s: they must agree.
#[test]
fn mrtd_agrees_with_the_simulated_platform() {
    let bytes = std::fs::read(image(Variant::Release)).unwrap();
    let metadata = ovmf::metadata::parse(&bytes, ovmf::layout::GUEST_RAM_SIZE).unwrap();
    let simulated = simulated_platform::tdx::mrtd::measure(&bytes, &metadata).unwrap();
    assert_eq!(measure::hex(&simulated), measure::hex(&ours_mrtd(&bytes)));
}

fn ours_mrtd(bytes: &[u8]) -> [u8; 48] {
    let launch =
        SnpLaunch { vcpus: 1, vcpu_type: VcpuType::by_name("EPYC-v4").unwrap(), guest_features: GUEST_FEATURES };
    measure::measure(bytes, &launch).unwrap().mrtd
}
