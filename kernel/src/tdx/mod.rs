//! The TDX guest: what the kernel does differently when `platform::detect` finds a TD (DESIGN.md §4 and §9).
//!
//! - [`tdcall`]: TDCALL and TDG.VP.VMCALL, the only instructions here that are TDX's own.
//! - [`ve`]: the #VE handler: CPUID, HLT, port I/O and MSR accesses emulated through TDG.VP.VMCALL.
//! - [`memory`]: the TD HOB check, the shared pages (MapGPA), every heap page accepted exactly once.
//! - [`quote`]: TDG.MR.REPORT and the GetQuote buffer, for the [`loader::TdxAttester`].
//!
//! The parts that are plain data (the calls' registers, the #VE service, the TD HOB) live in `ovmf::tdx` and are
//! tested on the host. The stub (`ovmf/src/reset/tdx32.s`) has parked every vCPU but the boot one.
//!
//! RTMRs are not extended: the quote's RTMRs stay zero, and the broker expects zeros by default.

pub mod memory;
pub mod quote;
pub mod tdcall;
pub mod ve;

use loader::TdxAttester;
use ovmf::layout::Region;
use ovmf::tdx::tdcall::{TDX_SUCCESS, VpInfo, leaf};
use ovmf::tdx::tdvmcall::{TdVmCall, fatal};

use crate::paging::Encryption;

/// The page-table encoding for this TD: the shared bit from TDG.VP.INFO's GPAW. Runs on the boot page tables,
/// before `paging::init`; ends the TD for a GPAW it does not know.
pub fn encryption() -> Encryption {
    // SAFETY: TDG.VP.INFO writes no memory.
    let out = unsafe { tdcall::tdcall(leaf::TDG_VP_INFO, 0, 0, 0) };
    let info = VpInfo::from_registers(out.rcx, out.rdx, out.r8, out.r9);
    match info.shared_bit() {
        Some(bit) if out.rax == TDX_SUCCESS => Encryption::SharedBit(bit),
        _ => terminate(fatal::BAD_GPAW),
    }
}

/// Everything TDX needs before the kernel can print: runs after paging, the GDT and the IDT (#VE), before the
/// serial console and the heap; returns the heap, accepted. Ends the TD if anything is wrong.
pub fn init() -> Region {
    let heap = memory::check_td_hob();
    memory::share_shared_pages();
    memory::accept_heap(heap);
    heap
}

/// The attester for this boot: TDREPORTs from the TDX module, quotes through GetQuote.
pub fn attester() -> TdxAttester<quote::TdQuoteCalls> {
    TdxAttester::new(quote::TdQuoteCalls::new())
}

/// Ends the TD: ReportFatalError with `code` (`ovmf::tdx::tdvmcall::fatal`), for failures that happen where
/// nothing can be printed (the #VE handler, before the console). Spins if the VMM returns.
pub fn terminate(code: u32) -> ! {
    tdcall::tdvmcall(TdVmCall::report_fatal_error(code));
    loop {
        core::hint::spin_loop();
    }
}
