//! The simulated SEV-SNP platform's hypervisor (DESIGN.md §10): QEMU's TCG runs it (L0), it runs the unmodified
//! Ampoule image as an SVM guest with nested paging (L2), and it plays every part of the platform the guest talks
//! to: the firmware's launch (`simulated_platform::launch`), the RMP (`simulated_platform::rmp`), #VC delivery, the
//! GHCB protocol, and the untrusted host that performs the guest's I/O on QEMU's real devices.
//!
//! Test equipment: never in the guest's TCB. The rules (RMP, PVALIDATE, page-state changes, the launch digest, the
//! VMSA, the CPUID page) are plain code in the host-tested `simulated-platform` crate; this image adds the hardware.
#![no_std]
#![no_main]

extern crate alloc;
extern crate memfns;

mod arena;
mod config;
mod firmware;
mod ghcb_host;
mod guest_cpu;
mod guest_memory;
mod guest_request;
mod launch;
mod log;
mod misbehaviour;
mod msr;
mod multiboot;
mod nested_paging;
mod page_state;
mod platform_memory;
mod port;
mod rdrand;
mod serial;
mod statics;
mod svm;
mod td_launch;
mod td_main;
mod td_vcpu;
mod tdx_module;
mod tdx_vmm;
mod vc_delivery;
mod vcpu;

use ovmf::exit::ExitCode;
use ovmf::layout::{GUEST_RAM_SIZE, IMAGE};
use protocol::console::Value;

use crate::launch::LaunchError;
use crate::vcpu::RunEnd;

core::arch::global_asm!(include_str!("boot.s"), options(att_syntax));

/// Called by `boot.s` in long mode with the multiboot information's address.
#[unsafe(no_mangle)]
extern "C" fn hypervisor_main(multiboot_info: u64) -> ! {
    // SAFETY: boot.s passes EBX from QEMU's multiboot loader; nothing writes the information or the modules.
    let Some(modules) = (unsafe { multiboot::read(multiboot_info) }) else {
        log::fatal("no guest image: boot with -initrd ampoule.bin")
    };
    let config = match config::parse(modules.cmdline) {
        Ok(config) => config,
        Err(_) => log::fatal("bad platform options"),
    };
    let Ok(metadata) = ovmf::metadata::parse(modules.image, GUEST_RAM_SIZE) else {
        log::fatal("the image has no usable SEV metadata")
    };
    if modules.image.len() as u64 != IMAGE.size {
        log::fatal("the image is not the layout's size");
    }
    let statics = statics::take();
    port::mask_legacy_interrupts();
    if !svm::enable(statics.host_save) {
        log::fatal("the CPU has no SVM with nested paging (QEMU: -cpu max)");
    }
    if config.tdx {
        td_main::run(modules.image, &metadata, &config, statics);
    }
    let mut memory = platform_memory::PlatformMemory::new(
        guest_memory::GuestMemory::new(statics.image, guest_memory::AliasBit::Private, guest_memory::C_BIT),
        statics.ram_rmp,
        statics.image_rmp,
        nested_paging::NestedTables::new(statics.nested_tables),
    );
    let launched = match launch::launch(modules.image, &metadata, &config, &mut memory) {
        Ok(launched) => launched,
        Err(error) => refuse_launch(error),
    };
    if memory.sync_all().is_err() {
        log::fatal("nested page tables full");
    }
    let digest = launched.digest;
    let mut hex = [0u8; 96];
    log::info(
        "launched",
        &[
            ("tee", Value::Str("snp")),
            ("measurement", Value::Str(log::hex(&digest, &mut hex))),
            ("pages", Value::U64(launched.pages.into())),
            ("nested_tables", Value::U64(memory.tables_used() as u64)),
            ("vcpus", Value::U64(1)),
            ("signature", Value::Hex(config.vcpu.signature.into())),
            ("guest_features", Value::Hex(config.vcpu.sev_features)),
            ("policy", Value::Hex(config.policy)),
            ("host_data", Value::Str(log::hex(&config.host_data[..32], &mut [0u8; 96]))),
        ],
    );
    let report_context = simulated_platform::firmware_channel::Launched {
        measurement: digest,
        policy: config.policy,
        host_data: config.host_data[..32].try_into().expect("32 of 48 bytes"),
        vmpck0: launched.vmpck[0],
    };
    // Without a channel (a boot-only run) the PSP never hears of the launch, and guest requests fail.
    let _ = firmware::launched(&report_context);
    let hostile = misbehaviour::Misbehaviour::new(config.hostile);
    let mut vcpu = vcpu::Vcpu::new(statics.vmcb, statics.extended, config.vcpu.sev_features, hostile);
    vcpu.small_rmp_pages = config.small_rmp_pages;
    statics::configure(&mut vcpu, statics.iopm, statics.msrpm, memory.nested_root(), &launched.vmsa);
    let end = vcpu.run(&mut memory);
    vcpu::log_counts(&vcpu.counts, memory.validated_pages());
    match end {
        RunEnd::Terminated { set, code } => {
            log::error(
                "guest terminated",
                &[("reason_set", Value::U64(set.into())), ("reason_code", Value::U64(code.into()))],
            );
            log::exit(ExitCode::GuestTerminated)
        }
        RunEnd::TdFatal(_) => log::exit(ExitCode::GuestTerminated),
        RunEnd::Stopped(why) => {
            log::error(
                "guest stopped",
                &[
                    ("why", Value::Str(why)),
                    ("rip", Value::Hex(vcpu.cpu.vmcb.state(simulated_platform::vmsa::offset::RIP))),
                ],
            );
            log::exit(ExitCode::PlatformStopped)
        }
    }
}

fn refuse_launch(error: LaunchError) -> ! {
    let (why, detail) = match error {
        LaunchError::Metadata => ("metadata", 0),
        LaunchError::Memory(gpa) => ("not guest memory", gpa),
        LaunchError::CpuidPage(refusal) => ("cpuid page refused", u64::from(refusal.leaf)),
        LaunchError::Entropy => ("no entropy", 0),
    };
    log::error("launch refused", &[("why", Value::Str(why)), ("detail", Value::Hex(detail))]);
    log::exit(ExitCode::PlatformStopped)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let (file, line) = info.location().map_or(("?", 0), |l| (l.file(), l.line()));
    log::error(
        "panic",
        &[("file", protocol::console::Value::Str(file)), ("line", protocol::console::Value::U64(line.into()))],
    );
    log::exit(ExitCode::Panic)
}

/// Named by the precompiled `core`'s unwinding paths; unreachable with `panic = "abort"`.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

/// Named by the precompiled `core`'s unwinding paths; unreachable with `panic = "abort"`.
#[unsafe(no_mangle)]
extern "C" fn _Unwind_Resume() -> ! {
    log::exit(ExitCode::Panic)
}
