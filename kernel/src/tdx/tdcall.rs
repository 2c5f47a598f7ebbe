//! TDCALL, the one instruction through which a TD talks to the TDX module (and, with leaf 0, to the VMM). Encoded
//! as bytes (66 0F 01 CC) so that no assembler support is assumed.

use ovmf::tdx::tdcall::{TDX_SUCCESS, leaf};
use ovmf::tdx::tdvmcall::{EXPOSED_REGISTERS, TdVmCall, TdVmCallResult};

/// The registers a TDCALL leaf returns.
#[derive(Clone, Copy, Debug, Default)]
pub struct TdcallOutput {
    /// The completion status ([`TDX_SUCCESS`] or an error).
    pub rax: u64,
    /// RCX.
    pub rcx: u64,
    /// RDX.
    pub rdx: u64,
    /// R8.
    pub r8: u64,
    /// R9.
    pub r9: u64,
    /// R10.
    pub r10: u64,
}

/// TDCALL `leaf` with RCX, RDX and R8 as inputs.
///
/// # Safety
/// The leaf and operands must not make the TDX module write memory the caller does not own: TDG.MR.REPORT writes
/// the 1 KiB at RCX, TDG.MEM.PAGE.ACCEPT zeroes the page at RCX.
pub unsafe fn tdcall(leaf: u64, rcx: u64, rdx: u64, r8: u64) -> TdcallOutput {
    let mut out = TdcallOutput { rax: leaf, rcx, rdx, r8, ..Default::default() };
    // SAFETY: TDCALL transfers to the TDX module, which returns to the next instruction with only the registers
    // named here changed (Intel TDX module ABI spec, each leaf's "output operands"); memory effects are the
    // caller's contract above. No stack is used.
    unsafe {
        core::arch::asm!(
            ".byte 0x66, 0x0f, 0x01, 0xcc",
            inout("rax") out.rax,
            inout("rcx") out.rcx,
            inout("rdx") out.rdx,
            inout("r8") out.r8,
            lateout("r9") out.r9,
            lateout("r10") out.r10,
            lateout("r11") _,
            options(nostack),
        )
    };
    out
}

/// TDG.VP.VMCALL: asks the VMM for `call`. A TDCALL that fails by itself (the module refused the operands) reads
/// as a VMM failure (status all-ones).
pub fn tdvmcall(call: TdVmCall) -> TdVmCallResult {
    let [mut r12, mut r13, mut r14, mut r15] = call.args;
    let status: u64;
    let r10: u64;
    let r11: u64;
    // SAFETY: TDG.VP.VMCALL exposes only R10..R15 to the VMM (RCX = EXPOSED_REGISTERS); the TDX module saves and
    // restores every other register. The VMM reads or writes guest memory only at shared GPAs the call names, which
    // are the shared pages (never private memory, which it cannot reach). No stack is used.
    unsafe {
        core::arch::asm!(
            ".byte 0x66, 0x0f, 0x01, 0xcc",
            inout("rax") leaf::TDG_VP_VMCALL => status,
            inout("rcx") EXPOSED_REGISTERS => _,
            inout("r10") 0u64 => r10,
            inout("r11") call.subfunction => r11,
            inout("r12") r12,
            inout("r13") r13,
            inout("r14") r14,
            inout("r15") r15,
            options(nostack),
        )
    };
    if status != TDX_SUCCESS {
        return TdVmCallResult { status: u64::MAX, ..Default::default() };
    }
    TdVmCallResult { status: r10, r11, out: [r12, r13, r14, r15] }
}
