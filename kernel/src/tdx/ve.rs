//! The #VE handler (Intel TDX module base spec, "Virtualization Exception"): inside a TD the instructions the VMM
//! must emulate raise #VE. Served (the logic is `ovmf::tdx::ve`, tested on the host; this file adds TDCALL):
//! CPUID, HLT, IN/OUT and RDMSR/WRMSR, through TDG.VP.VMCALL. Anything else ends the TD.
//!
//! TDG.VP.VEINFO.GET comes first: until it runs, another #VE would be a double fault. The handler runs on its own
//! IST stack (the #VC slot, unused under TDX) and executes nothing that raises #VE (no port I/O, no printing), so
//! it never nests. Device registers are not reached by faulting MMIO: the virtio driver asks for MMIO explicitly
//! ([`mmio_read`], [`mmio_write`]).

use ovmf::tdx::tdcall::{TDX_SUCCESS, leaf};
use ovmf::tdx::tdvmcall::{TDG_VP_VMCALL_SUCCESS, TdVmCall, fatal};
use ovmf::tdx::ve::{VeError, VeInfo, serve};

use super::tdcall::{tdcall, tdvmcall};
use super::terminate;
use crate::interrupts::ExceptionFrame;
use crate::paging;

/// Serves the #VE in `frame`, stepping over the instruction; ends the TD for anything it does not serve.
pub fn handle(frame: &mut ExceptionFrame) {
    // SAFETY: TDG.VP.VEINFO.GET writes no memory.
    let out = unsafe { tdcall(leaf::TDG_VP_VEINFO_GET, 0, 0, 0) };
    if out.rax != TDX_SUCCESS {
        terminate(fatal::UNHANDLED_VE);
    }
    let info = VeInfo {
        exit_reason: out.rcx as u32,
        exit_qualification: out.rdx,
        gpa: out.r9,
        instruction_length: out.r10 as u32,
    };
    let mut regs = frame.instruction_registers();
    match serve(&info, &mut regs, frame.rflags, tdvmcall) {
        Ok(length) => frame.complete_instruction(regs, length),
        Err(VeError::Unhandled) => terminate(fatal::UNHANDLED_VE),
        Err(VeError::VmCallFailed) => terminate(fatal::VMCALL_FAILED),
    }
}

/// Reads `size` bytes of device memory at `gpa` through #VE.RequestMMIO.
pub fn mmio_read(gpa: u64, size: usize) -> u64 {
    let answer = tdvmcall(TdVmCall::mmio_read(gpa | paging::shared_mask(), size as u8));
    if answer.status != TDG_VP_VMCALL_SUCCESS {
        terminate(fatal::VMCALL_FAILED);
    }
    answer.r11
}

/// Writes `size` bytes of `value` to device memory at `gpa` through #VE.RequestMMIO.
pub fn mmio_write(gpa: u64, size: usize, value: u64) {
    let answer = tdvmcall(TdVmCall::mmio_write(gpa | paging::shared_mask(), size as u8, value));
    if answer.status != TDG_VP_VMCALL_SUCCESS {
        terminate(fatal::VMCALL_FAILED);
    }
}
