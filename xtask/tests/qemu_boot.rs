//! QEMU integration tests (TCG): the release image boots and succeeds; the test image's faults produce the right
//! records and outcomes; bad CPUs and bad images are refused; nothing hangs.

mod common;

use std::time::Duration;

use common::{boot, boot_injecting, number};
use ovmf::exit::ExitCode;
use ovmf::layout::RAM_IMAGE;
use xtask::image::Variant;
use xtask::qemu::Outcome;

#[test]
fn release_image_boots_plain_and_passes_its_self_checks() {
    let report = boot(Variant::Release, |_| {});
    assert_eq!(report.outcome, Outcome::Guest(ExitCode::Success), "{:#?}", report.lines);
    let (booted, _) = report.record("booted").expect("a booted record");
    assert_eq!(booted.target, "kernel");
    assert_eq!(booted.field("tee"), Some("plain"));
    assert!(number(booted.field("reset_to_main_cycles").unwrap()) > 0);
    assert!(number(booted.field("main_to_booted_cycles").unwrap()) > 0);
    let checks: Vec<&str> = report
        .lines
        .iter()
        .filter_map(|l| protocol::console::Record::parse(l).ok())
        .filter(|r| r.msg == "self-check")
        .map(|r| {
            assert_eq!(r.field("ok"), Some("true"));
            r.field("check").unwrap()
        })
        .collect();
    assert_eq!(checks, ["paging", "heap", "avx", "exception-return"]);
    let (audit, _) = report.record("paging audit").unwrap();
    assert!(number(audit.field("small_pages").unwrap()) > 0);
    assert!(report.lines.iter().all(|l| !l.starts_with("level=error")), "{:#?}", report.lines);
    assert!(report.record("done").is_some());
}

/// The fault record has exactly the promised fields, in order.
fn fault_fields(report: &xtask::qemu::RunReport) -> Vec<(String, String)> {
    let (fault, _) = report.record("fault").expect("a fault record");
    assert_eq!(fault.level, protocol::console::Level::Error);
    assert_eq!(fault.target, "fault");
    let fields: Vec<(String, String)> =
        fault.fields().map(|f| f.unwrap()).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["vector", "exception", "error_code", "rip", "cr2"]);
    fields
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    &fields.iter().find(|(k, _)| k == key).unwrap().1
}

fn assert_rip_in_kernel(fields: &[(String, String)]) {
    let rip = number(field(fields, "rip"));
    assert!(RAM_IMAGE.contains(rip), "rip {rip:#x} outside the kernel");
}

#[test]
fn invalid_opcode_gives_a_ud_fault_record_and_the_fault_outcome() {
    let report = boot_injecting("ud");
    assert_eq!(report.outcome, Outcome::Guest(ExitCode::Fault), "{:#?}", report.lines);
    let fields = fault_fields(&report);
    assert_eq!(field(&fields, "vector"), "6");
    assert_eq!(field(&fields, "exception"), "#UD");
    assert_eq!(field(&fields, "error_code"), "0x0");
    assert_rip_in_kernel(&fields);
}

#[test]
fn unmapped_read_gives_a_page_fault_record_with_cr2() {
    let report = boot_injecting("page-fault");
    assert_eq!(report.outcome, Outcome::Guest(ExitCode::Fault), "{:#?}", report.lines);
    let fields = fault_fields(&report);
    assert_eq!(field(&fields, "vector"), "14");
    assert_eq!(field(&fields, "exception"), "#PF");
    // Error code 0: a read of a page that is not present, in supervisor mode.
    assert_eq!(field(&fields, "error_code"), "0x0");
    assert_eq!(field(&fields, "cr2"), "0xdead0000");
    assert_rip_in_kernel(&fields);
}

#[test]
fn stack_overflow_faults_in_the_guard_page_and_is_still_reported() {
    let report = boot_injecting("stack-overflow");
    assert_eq!(report.outcome, Outcome::Guest(ExitCode::Fault), "{:#?}", report.lines);
    let (injected, _) = report.record("raising fault").unwrap();
    let guard = number(injected.field("guard").unwrap());
    let fields = fault_fields(&report);
    assert_eq!(field(&fields, "exception"), "#PF");
    let cr2 = number(field(&fields, "cr2"));
    assert!((guard..guard + 4096).contains(&cr2), "cr2 {cr2:#x} is not in the guard page at {guard:#x}");
    // Error code 2: a write to a page that is not present.
    assert_eq!(field(&fields, "error_code"), "0x2");
}

#[test]
fn broken_idt_ends_as_a_reset_not_a_hang() {
    let report = boot_injecting("broken-idt");
    assert_eq!(report.outcome, Outcome::Reset, "{:#?}", report.lines);
    assert!(report.record("fault").is_none(), "an undeliverable fault cannot print");
    assert!(report.wall < Duration::from_secs(30));
}

#[test]
fn a_hanging_guest_is_stopped_at_the_timeout() {
    let report = boot(Variant::FaultInjection, |c| {
        c.fw_cfg.push(("opt/ampoule/inject".into(), "hang".into()));
        c.timeout = Duration::from_secs(3);
    });
    assert_eq!(report.outcome, Outcome::Timeout);
    assert!(report.record("hanging").is_some());
    assert!(report.wall < Duration::from_secs(10), "took {:?}", report.wall);
}

#[test]
fn the_release_image_ignores_fault_injection_requests() {
    let report = boot(Variant::Release, |c| c.fw_cfg.push(("opt/ampoule/inject".into(), "ud".into())));
    assert_eq!(report.outcome, Outcome::Guest(ExitCode::Success));
}

#[test]
fn a_cpu_without_x86_64_v3_is_refused_before_any_rust_runs() {
    // qemu64 lacks XSAVE, AVX and more: the stub names the first missing feature of its table.
    let report = boot(Variant::Release, |c| c.cpu = "qemu64".into());
    assert_eq!(report.outcome, Outcome::Guest(ExitCode::CpuUnsupported), "{:#?}", report.lines);
    let (record, _) = report.record("cpu feature missing").expect("the stub's record");
    assert_eq!(record.target, "boot");
    assert_eq!(record.field("need"), Some("x86-64-v3"));
    assert!(report.record("booted").is_none());
}

#[test]
fn a_cpu_missing_only_avx2_is_refused_by_name() {
    let report = boot(Variant::Release, |c| c.cpu = "max,-avx2".into());
    assert_eq!(report.outcome, Outcome::Guest(ExitCode::CpuUnsupported), "{:#?}", report.lines);
    assert_eq!(report.record("cpu feature missing").unwrap().0.field("feature"), Some("avx2"));
}

#[test]
fn a_cpu_missing_only_fma_is_refused_by_name() {
    let report = boot(Variant::Release, |c| c.cpu = "max,-fma".into());
    assert_eq!(report.outcome, Outcome::Guest(ExitCode::CpuUnsupported), "{:#?}", report.lines);
    assert_eq!(report.record("cpu feature missing").unwrap().0.field("feature"), Some("fma"));
}

#[test]
fn the_heap_follows_the_memory_map_and_too_little_ram_is_reported_not_crashed_into() {
    // 128 MiB: the heap is what e820 declares from 16 MiB on.
    let report = boot(Variant::Release, |c| c.memory = 128 << 20);
    assert_eq!(report.outcome, Outcome::Guest(ExitCode::Success), "{:#?}", report.lines);
    assert_eq!(report.record("booted").unwrap().0.field("heap_mib"), Some("112"));
    // 64 MiB: 48 MiB of heap is below the minimum; refused with a record, before anything uses the heap.
    let report = boot(Variant::Release, |c| c.memory = 64 << 20);
    assert_eq!(report.outcome, Outcome::Guest(ExitCode::SelfCheckFailed), "{:#?}", report.lines);
    let (record, _) = report.record("no heap in the memory map").expect("a clear record");
    assert_eq!(record.level, protocol::console::Level::Error);
    assert_eq!(record.field("reason"), Some("TooLittleRam"));
    assert!(report.record("booted").is_none());
    // The default: the whole bound.
    let report = boot(Variant::Release, |_| {});
    let expected = (ovmf::layout::HEAP.size >> 20).to_string();
    assert_eq!(report.record("booted").unwrap().0.field("heap_mib"), Some(expected.as_str()));
}
