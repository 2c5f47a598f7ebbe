//! The simulated platform's TDX personality (`hypervisor/`, DESIGN.md §10) builds the release image, byte for
//! byte, as a TD with two vCPUs: the application vCPU parks in the stub, and the boot vCPU's TDX path executes
//! (TDCALLs, #VE, TDG.VP.VMCALLs, MapGPA, the heap accepted in 2 MiB pages); the module's MRTD equals `measure`'s.

mod common;

/// The heap the simulated platform's memory map gives (all of `HEAP`: its RAM ends where the heap's bound does),
/// in 4 KiB pages and in 2 MiB ranges.
const HEAP_PAGES: u64 = ovmf::layout::HEAP.size / ovmf::layout::PAGE_SIZE;
const HEAP_RANGES: u64 = HEAP_PAGES / 512;

use std::time::Duration;

use common::image;
use common::simulated::{field, main_job, reference_client, released, served};
use ovmf::exit::ExitCode;
use ovmf::tdx::tdvmcall::fatal;
use simulated_platform::hostile::HostileKind;
use xtask::hypervisor::{self, SimulatedLaunch};
use xtask::image::Variant;
use xtask::paths;
use xtask::qemu::{self, Outcome, RunConfig, RunReport, Tee};

fn boot() -> (SimulatedLaunch, RunReport) {
    boot_with(None)
}

fn launch_with(hostile: Option<HostileKind>) -> SimulatedLaunch {
    let hypervisor = hypervisor::build(&paths::repo_root(), false).expect("builds");
    SimulatedLaunch { hostile, ..SimulatedLaunch::new(Tee::Tdx, hypervisor).unwrap() }
}

fn boot_with(hostile: Option<HostileKind>) -> (SimulatedLaunch, RunReport) {
    let launch = launch_with(hostile);
    let config = RunConfig {
        tee: Tee::Tdx,
        simulated: Some(launch.clone()),
        timeout: Duration::from_secs(120),
        ..RunConfig::new(image(Variant::Release))
    };
    let report = qemu::run(&config).expect("QEMU runs");
    assert!(report.non_records().next().is_none(), "lines that are not records: {:?}", report.lines);
    (launch, report)
}

#[test]
fn the_release_image_boots_as_a_td_with_the_mrtd_measure_computes() {
    let (launch, report) = boot();
    assert_eq!(report.outcome, Outcome::Guest(ExitCode::Success), "{:#?}", report.lines);
    let bytes = std::fs::read(image(Variant::Release)).unwrap();
    let expected = hypervisor::expected_digest(&bytes, &launch).unwrap();
    hypervisor::check_launch_digest(&report, &expected).unwrap();
    assert!(hypervisor::check_launch_digest(&report, &"00".repeat(48)).is_err());
    // Two vCPUs: the second parked in the stub's PAUSE loop before touching memory.
    assert_eq!(field(&report, "launched", "vcpus"), "2");
    assert_eq!(field(&report, "vcpu parked", "index"), "1");
    // The guest's TDX path: detected TDX, accepted every heap page once (as 2 MiB pages), every self-check.
    assert_eq!(field(&report, "booted", "tee"), "tdx");
    assert_eq!(field(&report, "booted", "validated_pages"), HEAP_PAGES.to_string());
    let checks: Vec<_> = report.lines.iter().filter(|l| l.contains(r#"msg="self-check""#)).collect();
    assert_eq!(checks.len(), 4, "{checks:#?}");
    assert!(checks.iter().all(|l| l.ends_with("ok=true")), "{checks:#?}");
    assert_eq!(field(&report, "exits", "accepts_2m"), HEAP_RANGES.to_string());
    assert_eq!(field(&report, "exits", "accepts_4k"), "0");
    // Port I/O went #VE -> TDG.VP.VMCALL: one VMCALL per #VE, and the exit port's.
    let (ve_io, vmcalls): (u64, u64) =
        (field(&report, "exits", "ve_io").parse().unwrap(), field(&report, "exits", "vmcalls").parse().unwrap());
    assert!(ve_io > 0 && vmcalls > ve_io, "ve_io={ve_io} vmcalls={vmcalls}");
}

/// Boots with the host misbehaving as `kind` and checks that the TD ended itself with ReportFatalError `code`.
fn misbehave(kind: HostileKind, code: u32) {
    let (_, report) = boot_with(Some(kind));
    assert_eq!(report.outcome, Outcome::Guest(ExitCode::GuestTerminated), "{:#?}", report.lines);
    assert_eq!(field(&report, "misbehaving", "hostile"), kind.name());
    assert_eq!(field(&report, "guest terminated", "tee"), "tdx");
    assert_eq!(field(&report, "guest terminated", "error_code"), code.to_string());
}

#[test]
fn a_td_hob_declaring_ram_inside_the_image_ends_the_td() {
    misbehave(HostileKind::TdHobRamInImage, fatal::BAD_TD_HOB);
}

#[test]
fn a_td_hob_declaring_the_heap_accepted_ends_the_td() {
    misbehave(HostileKind::TdHobHeapAccepted, fatal::BAD_TD_HOB);
}

#[test]
fn an_accepted_page_taken_out_of_the_secure_ept_ends_the_td() {
    misbehave(HostileKind::TdEptViolation, fatal::UNHANDLED_VE);
}

#[test]
fn a_failing_map_gpa_ends_the_td() {
    misbehave(HostileKind::TdMapGpaFails, fatal::VMCALL_FAILED);
}

#[test]
fn a_map_gpa_resuming_backwards_ends_the_td() {
    misbehave(HostileKind::TdMapGpaBackwards, fatal::VMCALL_FAILED);
}

/// A CPUID leaf the guest needs, sent to the VMM by #VE: the guest takes the #VE in the reset stub, before any
/// handler exists, and the TD shuts down; it never runs on the VMM's answer (which denies AVX2).
#[test]
fn a_cpuid_leaf_sent_to_the_vmm_shuts_the_td_down_before_it_believes_the_answer() {
    let (_, report) = boot_with(Some(HostileKind::TdCpuidVe));
    assert_eq!(report.outcome, Outcome::Guest(ExitCode::PlatformStopped), "{:#?}", report.lines);
    assert_eq!(field(&report, "misbehaving", "hostile"), "td-cpuid-ve");
    assert_eq!(field(&report, "guest stopped", "why"), "the TD shut down (triple fault)");
    assert!(report.record("booted").is_none());
    assert_eq!(field(&report, "exits", "vmcalls"), "0", "the VMM was never asked");
}

#[test]
fn a_page_already_accepted_ends_the_td() {
    misbehave(HostileKind::TdAlreadyAccepted, fatal::ACCEPT_FAILED);
}

/// The whole main job as a TD: TDG.MR.REPORT reaches the module's reporting and GetQuote the quote service (both
/// over the firmware channel); the broker's real TDX verifier checks the quote through dcap-qvl under the
/// simulated root CA, releases the key, and the TD unseals the model and serves the reference inputs.
#[test]
fn the_main_job_attests_with_a_quote_gets_its_key_and_serves_as_a_td() {
    let name = "simulated-tdx-main-job";
    let (run, quotes) = main_job(name, launch_with(None), reference_client(name));
    served(&run, "tdx");
    assert_eq!(field(&run.report, "launched", "gpaw"), "48");
    // The key dance's quote and the client's evidence: each a quote the service made.
    assert!(quotes >= 2, "{quotes} quotes made");
}

/// GPAW 52: the shared bit is 51, which only 5-level nested tables translate (the hypervisor pages with LA57).
/// The TD's shared pages (virtio, the GetQuote buffer) and MapGPA all go through bit 51, and the job still serves.
#[test]
fn a_td_with_gpaw_52_shares_through_bit_51_and_serves() {
    let name = "simulated-tdx-gpaw-52";
    let launch = SimulatedLaunch { gpaw: 52, ..launch_with(None) };
    let (run, _) = main_job(name, launch, reference_client(name));
    served(&run, "tdx");
    assert_eq!(field(&run.report, "launched", "gpaw"), "52");
    assert_eq!(field(&run.report, "launched", "nested_address_bits"), "57");
}

/// The TD ends its key dance without a key, and the broker released nothing.
fn no_key(kind: HostileKind) -> common::Run {
    let name = format!("simulated-tdx-{}", kind.name());
    let (run, _) = main_job(&name, launch_with(Some(kind)), |_| panic!("no key, no serving"));
    assert_eq!(run.report.outcome, Outcome::Guest(ExitCode::KeyNotReleased), "{:#?}", run.report.lines);
    assert_eq!(field(&run.report, "misbehaving", "hostile"), kind.name());
    assert!(run.report.record("key released").is_none());
    assert_eq!(released(&run), 0);
    run
}

#[test]
fn a_quote_whose_length_overflows_the_buffer_is_refused_by_the_td() {
    let run = no_key(HostileKind::TdQuoteOverflows);
    assert_eq!(field(&run.report, "key dance failed", "reason"), "no-evidence");
}

#[test]
fn a_quote_for_another_td_gets_no_key() {
    // A valid quote, signed by the platform, for another TD's report data: the TD reads the report data back,
    // sees that the quote does not bind its key and nonce, and sends nothing.
    let run = no_key(HostileKind::TdQuoteForAnotherTd);
    assert_eq!(field(&run.report, "key dance failed", "reason"), "no-evidence");
    assert!(run.report.record("attested").is_none());
}

#[test]
fn a_quote_that_never_completes_ends_in_no_evidence_not_a_hang() {
    let run = no_key(HostileKind::TdQuoteNeverCompletes);
    assert_eq!(field(&run.report, "key dance failed", "reason"), "no-evidence");
}
