//! The simulated SEV-SNP platform (`hypervisor/`, DESIGN.md §10) boots the release image, byte for byte, as an SNP
//! guest: the guest's reset stub, #VC handlers, C-bit tables, GHCB, page-state changes and PVALIDATEs execute, and
//! the platform's own launch digest equals `measure`'s.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::image;
use xtask::hypervisor::{self, SimulatedLaunch};
use xtask::image::Variant;
use xtask::measure::{DEFAULT_GUEST_FEATURES, DEFAULT_VCPU_TYPE, VcpuType};
use xtask::paths;
use xtask::qemu::{self, Outcome, RunConfig, RunReport, SNP_POLICY, Tee};

fn launch() -> SimulatedLaunch {
    static HYPERVISOR: OnceLock<std::path::PathBuf> = OnceLock::new();
    let hypervisor = HYPERVISOR.get_or_init(|| hypervisor::build(&paths::repo_root(), false).expect("builds")).clone();
    SimulatedLaunch {
        hypervisor,
        vcpu_type: VcpuType::by_name(DEFAULT_VCPU_TYPE).unwrap(),
        guest_features: DEFAULT_GUEST_FEATURES,
        policy: SNP_POLICY,
    }
}

fn boot(launch: &SimulatedLaunch) -> RunReport {
    let config = RunConfig {
        tee: Tee::Snp,
        simulated: Some(launch.clone()),
        timeout: Duration::from_secs(120),
        ..RunConfig::new(image(Variant::Release))
    };
    let report = qemu::run(&config).expect("QEMU runs");
    assert!(report.non_records().next().is_none(), "lines that are not records: {:?}", report.lines);
    report
}

fn field<'a>(report: &'a RunReport, msg: &str, key: &str) -> &'a str {
    let (record, _) = report.record(msg).unwrap_or_else(|| panic!("no {msg} record: {:#?}", report.lines));
    record.field(key).unwrap_or_else(|| panic!("{msg} has no {key}"))
}

#[test]
fn the_release_image_boots_as_an_snp_guest_with_the_digest_measure_computes() {
    let launch = launch();
    let report = boot(&launch);
    assert_eq!(report.outcome, Outcome::Guest(ovmf::exit::ExitCode::Success), "{:#?}", report.lines);
    let bytes = std::fs::read(image(Variant::Release)).unwrap();
    let expected = hypervisor::expected_digest(&bytes, &launch).unwrap();
    hypervisor::check_launch_digest(&report, &expected).unwrap();
    // The guest ran its SNP path: detected SNP, validated every heap page once, passed every self-check.
    assert_eq!(field(&report, "booted", "tee"), "snp");
    assert_eq!(field(&report, "booted", "validated_pages"), "16384");
    let checks: Vec<_> = report.lines.iter().filter(|l| l.contains(r#"msg="self-check""#)).collect();
    assert_eq!(checks.len(), 4, "{checks:#?}");
    assert!(checks.iter().all(|l| l.ends_with("ok=true")), "{checks:#?}");
    // What the platform saw: one PVALIDATE per heap page, and CPUID never answered by the host.
    assert_eq!(field(&report, "exits", "pvalidates"), "16384");
    assert_ne!(field(&report, "exits", "vc_cpuid"), "0");
}

#[test]
fn a_digest_other_than_the_platforms_is_reported_as_a_mismatch() {
    let report = boot(&launch());
    let wrong = "00".repeat(48);
    let error = hypervisor::check_launch_digest(&report, &wrong).unwrap_err().to_string();
    assert!(error.contains("differs from measure's"), "{error}");
}
