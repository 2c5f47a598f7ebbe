//! The simulated SEV-SNP platform (`hypervisor/`, DESIGN.md §10) runs the release image, byte for byte, as an SNP
//! guest: its reset stub, #VC handlers, C-bit tables, GHCB, page-state changes, PVALIDATEs and guest requests
//! execute; the platform's own launch digest equals `measure`'s; the broker verifies the reports on its real SNP
//! path against the platform's chain. Then the host misbehaves, one kind per test: the guest ends itself or is
//! refused, and the broker releases nothing.

mod common;

/// The heap the simulated platform's memory map gives (all of `HEAP`: its RAM ends where the heap's bound does),
/// in 4 KiB pages and in 2 MiB ranges.
const HEAP_PAGES: u64 = ovmf::layout::HEAP.size / ovmf::layout::PAGE_SIZE;
const HEAP_RANGES: u64 = HEAP_PAGES / 512;

use std::sync::OnceLock;
use std::time::Duration;

use common::simulated::{field, main_job, reference_client, released, served};
use common::{Run, image};
use ovmf::exit::ExitCode;
use simulated_platform::hostile::HostileKind;
use xtask::hypervisor::{self, SimulatedLaunch};
use xtask::image::Variant;
use xtask::paths;
use xtask::qemu::{self, Outcome, RunConfig, RunReport, Tee};

fn launch(hostile: Option<HostileKind>) -> SimulatedLaunch {
    static HYPERVISOR: OnceLock<std::path::PathBuf> = OnceLock::new();
    let hypervisor = HYPERVISOR.get_or_init(|| hypervisor::build(&paths::repo_root(), false).expect("builds")).clone();
    SimulatedLaunch { hostile, ..SimulatedLaunch::new(Tee::Snp, hypervisor).unwrap() }
}

/// A boot without network or broker.
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

#[test]
fn the_release_image_boots_as_an_snp_guest_with_the_digest_measure_computes() {
    let launch = launch(None);
    let report = boot(&launch);
    assert_eq!(report.outcome, Outcome::Guest(ExitCode::Success), "{:#?}", report.lines);
    let bytes = std::fs::read(image(Variant::Release)).unwrap();
    let expected = hypervisor::expected_digest(&bytes, &launch).unwrap();
    hypervisor::check_launch_digest(&report, &expected).unwrap();
    // The guest ran its SNP path: detected SNP, validated every heap page once, passed every self-check.
    assert_eq!(field(&report, "booted", "tee"), "snp");
    assert_eq!(field(&report, "booted", "validated_pages"), HEAP_PAGES.to_string());
    let checks: Vec<_> = report.lines.iter().filter(|l| l.contains(r#"msg="self-check""#)).collect();
    assert_eq!(checks.len(), 4, "{checks:#?}");
    assert!(checks.iter().all(|l| l.ends_with("ok=true")), "{checks:#?}");
    // What the platform saw: the heap made private in one batch and validated as 2 MiB pages, the shared pages
    // in another batch, and CPUID never answered by the host.
    assert_eq!(field(&report, "exits", "pvalidates"), HEAP_RANGES.to_string());
    assert_eq!(field(&report, "exits", "page_state_changes"), "3", "the GHCB's own, then two batches");
    assert_ne!(field(&report, "exits", "vc_cpuid"), "0");
    // A digest other than the platform's is reported as a mismatch.
    let error = hypervisor::check_launch_digest(&report, &"00".repeat(48)).unwrap_err().to_string();
    assert!(error.contains("differs from measure's"), "{error}");
}

/// A host may back the 2 MiB ranges the guest asks for with small RMP entries: the guest's 2 MiB PVALIDATEs fail
/// with FAIL_SIZEMISMATCH, and it validates those ranges page by page, each once.
#[test]
fn a_host_that_backs_large_ranges_with_small_pages_gets_them_validated_page_by_page() {
    let launch = SimulatedLaunch { small_rmp_pages: true, ..launch(None) };
    let report = boot(&launch);
    assert_eq!(report.outcome, Outcome::Guest(ExitCode::Success), "{:#?}", report.lines);
    assert_eq!(field(&report, "booted", "validated_pages"), HEAP_PAGES.to_string());
    assert_eq!(field(&report, "exits", "pvalidates"), (HEAP_RANGES + HEAP_PAGES).to_string());
}

#[test]
fn the_main_job_attests_gets_its_key_and_serves_on_the_simulated_platform() {
    let name = "simulated-snp-main-job";
    let (run, answered) = main_job(name, launch(None), reference_client(name));
    served(&run, "snp");
    // The key dance's report and the client's evidence: each a guest message the PSP answered.
    assert!(answered >= 2, "{answered} guest messages answered");
}

/// Runs the main job with `kind` and checks that the guest ended with `outcome` and released nothing.
fn misbehave(kind: HostileKind, outcome: ExitCode) -> Run {
    let (run, _) = main_job(&format!("simulated-snp-{}", kind.name()), launch(Some(kind)), |_| {
        panic!("a guest whose host misbehaved must not serve")
    });
    assert_eq!(run.report.outcome, Outcome::Guest(outcome), "{:#?}", run.report.lines);
    assert!(run.report.record("key released").is_none());
    assert_eq!(released(&run), 0);
    run
}

/// The termination reason the platform printed (set 1: Ampoule's, `ovmf::snp::ghcb_msr`).
fn terminated_with(run: &Run, code: u8) {
    assert_eq!(field(&run.report, "guest terminated", "reason_set"), "1");
    assert_eq!(field(&run.report, "guest terminated", "reason_code"), code.to_string());
}

#[test]
fn a_cpuid_page_claiming_what_the_cpu_lacks_is_refused_at_launch() {
    let run = misbehave(HostileKind::CpuidPage, ExitCode::PlatformStopped);
    assert_eq!(field(&run.report, "launch refused", "why"), "cpuid page refused");
    assert!(run.report.record("booted").is_none());
}

#[test]
fn a_wiped_reply_to_a_port_read_ends_the_guest() {
    let run = misbehave(HostileKind::GhcbIoReply, ExitCode::GuestTerminated);
    terminated_with(&run, ovmf::snp::ghcb_msr::REASON_EXIT_FAILED);
}

#[test]
fn a_replayed_guest_request_response_leaves_the_guest_without_evidence() {
    let run = misbehave(HostileKind::ReplayedResponse, ExitCode::KeyNotReleased);
    // The guest's first guest request is the report it reads its launch binding from: with VMPCK0 retired it
    // cannot check the sealed model, and stops before it asks the broker for anything.
    assert_eq!(field(&run.report, "sealed model refused", "reason"), "launch-binding-unavailable");
    assert!(run.report.record("connected").is_none(), "{:#?}", run.report.lines);
}

#[test]
fn a_corrupted_guest_request_response_leaves_the_guest_without_evidence() {
    let run = misbehave(HostileKind::CorruptedResponse, ExitCode::KeyNotReleased);
    // The guest's first guest request is the report it reads its launch binding from: with VMPCK0 retired it
    // cannot check the sealed model, and stops before it asks the broker for anything.
    assert_eq!(field(&run.report, "sealed model refused", "reason"), "launch-binding-unavailable");
    assert!(run.report.record("connected").is_none(), "{:#?}", run.report.lines);
}

#[test]
fn a_heap_page_made_shared_behind_the_guests_back_ends_the_guest() {
    let run = misbehave(HostileKind::HeapPageShared, ExitCode::GuestTerminated);
    terminated_with(&run, ovmf::snp::ghcb_msr::REASON_UNHANDLED_VC);
}

#[test]
fn a_heap_page_remapped_behind_the_guests_back_ends_the_guest() {
    let run = misbehave(HostileKind::HeapPageRemapped, ExitCode::GuestTerminated);
    terminated_with(&run, ovmf::snp::ghcb_msr::REASON_UNHANDLED_VC);
}

#[test]
fn a_page_validated_before_the_guests_pvalidate_ends_the_guest() {
    let run = misbehave(HostileKind::Prevalidated, ExitCode::GuestTerminated);
    terminated_with(&run, ovmf::snp::ghcb_msr::REASON_VALIDATION_FAILED);
}

#[test]
fn a_refused_page_state_change_ends_the_guest() {
    let run = misbehave(HostileKind::RefusedPageStateChange, ExitCode::GuestTerminated);
    terminated_with(&run, ovmf::snp::ghcb_msr::REASON_GHCB_SETUP_FAILED);
}
