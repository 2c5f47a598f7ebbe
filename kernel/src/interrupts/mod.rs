//! Exceptions: the IDT, the asm entry stubs, and the Rust side that reports a fault and ends the run.
//!
//! Every exception but #VC under SNP (served by `snp::vc`) and #VE under TDX (served by `tdx::ve`) is fatal: the handler prints one record (vector, error
//! code, RIP, CR2 and nothing else, DESIGN.md §4) and exits with `ExitCode::Fault`. The stubs save and restore all
//! state, so a handler can return.

mod idt;

use core::sync::atomic::{AtomicBool, Ordering};

use ovmf::emulation::InstructionRegisters;
use ovmf::exit::ExitCode;
use protocol::console::{self, Level, Value};
use x86_64::registers::control::Cr2;

use crate::exit::exit;
use crate::serial;

pub use idt::init;
#[cfg(feature = "fault-injection")]
pub use idt::load_broken as load_broken_idt;

core::arch::global_asm!(include_str!("entry.s"), options(att_syntax));

/// The stack as `exception_common` in entry.s leaves it.
#[repr(C)]
#[derive(Debug)]
pub struct ExceptionFrame {
    /// General registers, in the order entry.s pushes them (last pushed first).
    pub gprs: [u64; 15],
    /// The vector number, pushed by the stub.
    pub vector: u64,
    /// The CPU's error code, or 0 for vectors without one.
    pub error_code: u64,
    /// Where the exception happened.
    pub rip: u64,
    /// The code segment at the time.
    pub cs: u64,
    /// RFLAGS at the time.
    pub rflags: u64,
    /// The interrupted stack pointer.
    pub rsp: u64,
    /// The interrupted stack segment.
    pub ss: u64,
}

/// A general register in [`ExceptionFrame::gprs`].
#[derive(Clone, Copy, Debug)]
#[repr(usize)]
pub enum Gpr {
    /// RAX (pushed first, so last in the array).
    Rax = 14,
    /// RCX.
    Rcx = 13,
    /// RDX.
    Rdx = 12,
    /// RBX.
    Rbx = 11,
}

impl ExceptionFrame {
    /// The interrupted value of `register`.
    pub fn gpr(&self, register: Gpr) -> u64 {
        self.gprs[register as usize]
    }

    /// Sets the value `register` has when the interrupted code resumes.
    pub fn set_gpr(&mut self, register: Gpr, value: u64) {
        self.gprs[register as usize] = value;
    }

    /// The interrupted RAX, RBX, RCX and RDX: what an instruction the hypervisor emulates (#VC, #VE) works on.
    pub fn instruction_registers(&self) -> InstructionRegisters {
        InstructionRegisters {
            rax: self.gpr(Gpr::Rax),
            rbx: self.gpr(Gpr::Rbx),
            rcx: self.gpr(Gpr::Rcx),
            rdx: self.gpr(Gpr::Rdx),
        }
    }

    /// Resumes the interrupted code with `regs` and RIP past the emulated instruction of `length` bytes.
    pub fn complete_instruction(&mut self, regs: InstructionRegisters, length: u64) {
        self.set_gpr(Gpr::Rax, regs.rax);
        self.set_gpr(Gpr::Rbx, regs.rbx);
        self.set_gpr(Gpr::Rcx, regs.rcx);
        self.set_gpr(Gpr::Rdx, regs.rdx);
        self.rip += length;
    }
}

/// The mnemonic of an exception vector (Intel SDM vol. 3A, table 6-1; AMD APM vol. 2, 8.2 for #VC and #SX).
pub fn exception_name(vector: u64) -> &'static str {
    const NAMES: [&str; 32] = [
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#CSO", "#TS", "#NP", "#SS", "#GP", "#PF",
        "reserved", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "reserved", "reserved", "reserved", "reserved",
        "reserved", "reserved", "#HV", "#VC", "#SX", "reserved",
    ];
    NAMES.get(vector as usize).copied().unwrap_or("unknown")
}

/// #BP: returns only while the `exception-return` self-check expects it.
const BREAKPOINT: u64 = 3;

/// Set by the first fault: a fault while reporting one ends the run without another record.
static HANDLING_FAULT: AtomicBool = AtomicBool::new(false);

/// Called by entry.s with the saved state of every exception.
#[unsafe(no_mangle)]
extern "C" fn exception_dispatch(frame: &mut ExceptionFrame) {
    if frame.vector == BREAKPOINT && crate::self_check::EXPECTING_BREAKPOINT.swap(false, Ordering::SeqCst) {
        crate::self_check::expected_breakpoint();
        return;
    }
    if frame.vector == idt::VMM_COMMUNICATION as u64 && crate::platform::current() == crate::platform::Tee::Snp {
        crate::snp::vc::handle(frame);
        return;
    }
    if frame.vector == idt::VIRTUALIZATION_EXCEPTION as u64 && crate::platform::current() == crate::platform::Tee::Tdx {
        crate::tdx::ve::handle(frame);
        return;
    }
    if HANDLING_FAULT.swap(true, Ordering::SeqCst) {
        exit(ExitCode::Fault);
    }
    let cr2 = Cr2::read_raw();
    let fields = [
        ("vector", Value::U64(frame.vector)),
        ("exception", Value::Str(exception_name(frame.vector))),
        ("error_code", Value::Hex(frame.error_code)),
        ("rip", Value::Hex(frame.rip)),
        ("cr2", Value::Hex(cr2)),
    ];
    // The serial lock may be held by the code that faulted: write directly.
    let mut out = serial::write_unlocked();
    let _ = console::write_record(&mut out, Level::Error, "fault", format_args!("fault"), fields);
    exit(ExitCode::Fault)
}
