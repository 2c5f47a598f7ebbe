//! What the #VE handler does (Intel TDX module base spec, "Virtualization Exception"; GHCI 1.5, "#VE handling"),
//! apart from executing TDCALL: the kernel reads the #VE information with TDG.VP.VEINFO.GET, and this module turns
//! it into the TDG.VP.VMCALL that emulates the instruction and the VMM's answer into the interrupted registers.
//!
//! Served: CPUID, HLT, IN/OUT (not the string forms) and RDMSR/WRMSR. Device memory is not reached by faulting
//! accesses: the kernel's drivers ask for MMIO explicitly (#VE.RequestMMIO), which keeps an instruction decoder out
//! of the TCB. Every exit reason here has an instruction length in the #VE information, so nothing is decoded.

use super::tdvmcall::{TDG_VP_VMCALL_SUCCESS, TdVmCall, TdVmCallResult};
use crate::emulation::{InstructionRegisters, LOW_32, port_in_result, port_mask};

/// VMX basic exit reasons (Intel SDM vol. 3C, appendix C) that the #VE information reports.
pub mod exit_reason {
    /// CPUID.
    pub const CPUID: u32 = 10;
    /// HLT.
    pub const HLT: u32 = 12;
    /// IN, OUT, INS, OUTS.
    pub const IO_INSTRUCTION: u32 = 30;
    /// RDMSR.
    pub const MSR_READ: u32 = 31;
    /// WRMSR.
    pub const MSR_WRITE: u32 = 32;
    /// An EPT violation: an access to a shared page the VMM has not mapped (device memory), or to private memory
    /// not yet accepted.
    pub const EPT_VIOLATION: u32 = 48;
}

/// What TDG.VP.VEINFO.GET returns that the handler uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VeInfo {
    /// RCX bits 31:0: the exit reason.
    pub exit_reason: u32,
    /// RDX: the exit qualification.
    pub exit_qualification: u64,
    /// R9: the guest-physical address (EPT violations).
    pub gpa: u64,
    /// R10 bits 31:0: the length of the instruction that raised the #VE.
    pub instruction_length: u32,
}

/// Why a #VE was not served; the kernel ends the TD for either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VeError {
    /// An exit reason or instruction form the handler does not serve.
    Unhandled,
    /// The VMM reported failure.
    VmCallFailed,
}

/// The longest x86 instruction.
const MAX_INSTRUCTION_LEN: u32 = 15;
const RFLAGS_IF: u64 = 1 << 9;

/// An I/O instruction as the exit qualification describes it (Intel SDM vol. 3C, table 28-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoQualification {
    /// The port.
    pub port: u16,
    /// The access size: 1, 2 or 4 bytes.
    pub size: u8,
    /// IN (true) or OUT (false).
    pub is_in: bool,
}

impl IoQualification {
    /// Decodes the qualification; `None` for the string and REP forms and for undefined sizes.
    pub const fn decode(qualification: u64) -> Option<Self> {
        const STRING: u64 = 1 << 4;
        const REP: u64 = 1 << 5;
        if qualification & (STRING | REP) != 0 {
            return None;
        }
        let size = match qualification & 0x7 {
            0 => 1,
            1 => 2,
            3 => 4,
            _ => return None,
        };
        Some(IoQualification { port: (qualification >> 16) as u16, size, is_in: qualification & (1 << 3) != 0 })
    }
}

/// Serves the #VE described by `info` through `vmcall` (TDG.VP.VMCALL), updating `regs`; `rflags` is the
/// interrupted RFLAGS (HLT reports whether interrupts were blocked). Returns the instruction's length, to step over
/// it.
pub fn serve(
    info: &VeInfo,
    regs: &mut InstructionRegisters,
    rflags: u64,
    mut vmcall: impl FnMut(TdVmCall) -> TdVmCallResult,
) -> Result<u64, VeError> {
    if info.instruction_length == 0 || info.instruction_length > MAX_INSTRUCTION_LEN {
        return Err(VeError::Unhandled);
    }
    let mut call = |request| {
        let answer = vmcall(request);
        if answer.status == TDG_VP_VMCALL_SUCCESS { Ok(answer) } else { Err(VeError::VmCallFailed) }
    };
    match info.exit_reason {
        exit_reason::CPUID => {
            let answer = call(TdVmCall::cpuid(regs.rax as u32, regs.rcx as u32))?;
            // CPUID writes all four registers, zero-extending in 64-bit mode.
            let [eax, ebx, ecx, edx] = answer.out.map(|r| r & LOW_32);
            (regs.rax, regs.rbx, regs.rcx, regs.rdx) = (eax, ebx, ecx, edx);
        }
        exit_reason::HLT => {
            call(TdVmCall::hlt(rflags & RFLAGS_IF == 0))?;
        }
        exit_reason::IO_INSTRUCTION => {
            let io = IoQualification::decode(info.exit_qualification).ok_or(VeError::Unhandled)?;
            if io.is_in {
                let answer = call(TdVmCall::port_in(io.port, io.size))?;
                regs.rax = port_in_result(regs.rax, io.size, answer.r11);
            } else {
                call(TdVmCall::port_out(io.port, io.size, regs.rax & port_mask(io.size)))?;
            }
        }
        exit_reason::MSR_READ => {
            let answer = call(TdVmCall::rdmsr(regs.rcx as u32))?;
            regs.rax = answer.r11 & LOW_32;
            regs.rdx = answer.r11 >> 32;
        }
        exit_reason::MSR_WRITE => {
            let value = (regs.rdx << 32) | (regs.rax & LOW_32);
            call(TdVmCall::wrmsr(regs.rcx as u32, value))?;
        }
        _ => return Err(VeError::Unhandled),
    }
    Ok(info.instruction_length.into())
}

#[cfg(test)]
mod tests;
