//! Test images only (feature `fault-injection`): raise the fault that the fw_cfg file `opt/ampoule/inject` names,
//! so the integration tests can check the fault records and outcomes:
//!
//! - `ud`: an invalid opcode (#UD).
//! - `page-fault`: a read of an unmapped address (#PF, CR2 = [`UNMAPPED_ADDRESS`]).
//! - `stack-overflow`: unbounded recursion into the boot stack's guard page (#PF on the guard page).
//! - `broken-idt`: an IDT with limit 0, then #UD: undeliverable, so the CPU triple-faults and QEMU resets.
//! - `hang`: spin forever, so the runner's timeout has something to stop.

use core::hint::black_box;

use ovmf::exit::ExitCode;

use crate::exit::exit;
use crate::logger::Hex;
use crate::{fw_cfg, interrupts, sections};

/// An address the kernel never maps.
pub const UNMAPPED_ADDRESS: u64 = 0xdead_0000;

/// Raises the requested fault; returns if none was requested.
pub fn run() {
    let mut buf = [0u8; 32];
    let Some(len) = fw_cfg::read_file("opt/ampoule/inject", &mut buf) else {
        log::info!(target: "fault_injection", "no fault requested");
        return;
    };
    let kind = core::str::from_utf8(&buf[..len]).unwrap_or("").trim();
    match kind {
        "ud" => {
            log::info!(target: "fault_injection", kind = kind; "raising fault");
            // SAFETY: UD2 raises #UD by definition; the handler ends the run.
            unsafe { core::arch::asm!("ud2", options(nomem, nostack, noreturn)) }
        }
        "page-fault" => {
            log::info!(target: "fault_injection", kind = kind, address:% = Hex(UNMAPPED_ADDRESS); "raising fault");
            // SAFETY: the read faults by design (the kernel never maps this address) and the #PF handler ends the
            // run, so no value is ever produced from it.
            unsafe { (UNMAPPED_ADDRESS as *const u64).read_volatile() };
        }
        "stack-overflow" => {
            let guard = sections::boot_stack().guard;
            log::info!(target: "fault_injection", kind = kind, guard:% = Hex(guard); "raising fault");
            recurse(0);
        }
        "broken-idt" => {
            log::info!(target: "fault_injection", kind = kind; "raising fault");
            interrupts::load_broken_idt();
            // SAFETY: UD2 raises #UD, which cannot be delivered through the broken IDT: the CPU triple-faults.
            unsafe { core::arch::asm!("ud2", options(nomem, nostack, noreturn)) }
        }
        "hang" => {
            log::info!(target: "fault_injection", kind = kind; "hanging");
            loop {
                core::hint::spin_loop();
            }
        }
        _ => {
            log::error!(target: "fault_injection", "unknown fault kind");
            exit(ExitCode::SelfCheckFailed);
        }
    }
    log::error!(target: "fault_injection", kind = kind; "fault did not happen");
    exit(ExitCode::SelfCheckFailed);
}

/// Uses a page of stack per call and never stops: ends in the guard page.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 4096];
    frame[0] = depth as u8;
    black_box(&mut frame);
    // The condition is always true, but the compiler cannot know it.
    if black_box(depth) < u64::MAX { recurse(depth + 1).wrapping_add(u64::from(frame[0])) } else { 0 }
}
