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
mod log;
mod multiboot;
mod port;
mod serial;

use ovmf::exit::ExitCode;

core::arch::global_asm!(include_str!("boot.s"), options(att_syntax));

/// Called by `boot.s` in long mode with the multiboot information's address.
#[unsafe(no_mangle)]
extern "C" fn hypervisor_main(multiboot_info: u64) -> ! {
    // SAFETY: boot.s passes EBX from QEMU's multiboot loader; nothing writes the information or the modules.
    let Some(modules) = (unsafe { multiboot::read(multiboot_info) }) else {
        log::fatal("no guest image: boot with -initrd ampoule.bin")
    };
    log::info("hypervisor started", &[("image_bytes", protocol::console::Value::U64(modules.image.len() as u64))]);
    log::exit(ExitCode::Success)
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
