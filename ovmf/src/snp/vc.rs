//! What the #VC handler does, apart from executing VMGEXIT (the kernel's `snp::vc` supplies that): for each
//! intercepted instruction the kernel executes, how the GHCB is filled, and how the hypervisor's answer becomes the
//! interrupted code's registers (GHCB specification §4.1; AMD64 APM vol. 2, 15.35.5).
//!
//! - CPUID (exit code 0x72) is answered from the CPUID page and needs no GHCB.
//! - IN/OUT (0x7B), RDMSR/WRMSR (0x7C) and RDTSC/RDTSCP (0x6E, 0x87; raised only if the hypervisor intercepts
//!   them) go through the GHCB; the answer is read only from fields the hypervisor marked valid.
//!
//! Every function returns the instruction's length, to step over it, or refuses.

use super::cpuid_page::{CpuidPage, CpuidResult};
use super::ghcb::{ExitResult, Ghcb, exit_code, exit_result, offset};
use super::ioio::PortAccess;
use crate::emulation::{InstructionRegisters, LOW_32, port_in_result};

/// Why a #VC was not served; the kernel ends the guest for either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcError {
    /// Not an exit code or instruction form the handler serves.
    Unhandled,
    /// The hypervisor reported failure or left a needed result unmarked.
    ExitFailed,
}

const CPUID_OPCODE: [u8; 2] = [0x0f, 0xa2];
const RDMSR_OPCODE: [u8; 2] = [0x0f, 0x32];
const WRMSR_OPCODE: [u8; 2] = [0x0f, 0x30];
const RDTSC_OPCODE: [u8; 2] = [0x0f, 0x31];
const RDTSCP_OPCODE: [u8; 3] = [0x0f, 0x01, 0xf9];

/// CPUID from the page: EAX and ECX select the leaf and subleaf; a leaf the page lacks reads as zeros.
pub fn serve_cpuid(code: &[u8], regs: &mut InstructionRegisters, page: &CpuidPage<'_>) -> Result<u64, VcError> {
    if code.get(..2) != Some(&CPUID_OPCODE[..]) {
        return Err(VcError::Unhandled);
    }
    let zeros = CpuidResult { eax: 0, ebx: 0, ecx: 0, edx: 0 };
    let result = page.lookup(regs.rax as u32, regs.rcx as u32).unwrap_or(zeros);
    // CPUID writes all four registers, zero-extending in 64-bit mode.
    regs.rax = result.eax.into();
    regs.rbx = result.ebx.into();
    regs.rcx = result.ecx.into();
    regs.rdx = result.edx.into();
    Ok(2)
}

/// IN/OUT, RDMSR/WRMSR or RDTSC/RDTSCP (by `exit_code`) through `ghcb`, which `exit` hands to the hypervisor
/// (VMGEXIT).
pub fn serve_with_ghcb(
    exit_code: u64,
    code: &[u8],
    regs: &mut InstructionRegisters,
    ghcb: &mut Ghcb,
    exit: impl FnOnce(&mut Ghcb),
) -> Result<u64, VcError> {
    match exit_code {
        exit_code::IOIO => serve_port_access(code, regs, ghcb, exit),
        exit_code::MSR => serve_msr(code, regs, ghcb, exit),
        exit_code::RDTSC | exit_code::RDTSCP => serve_time_stamp(exit_code, code, regs, ghcb, exit),
        _ => Err(VcError::Unhandled),
    }
}

fn checked_exit(ghcb: &mut Ghcb, exit: impl FnOnce(&mut Ghcb)) -> Result<(), VcError> {
    exit(ghcb);
    if exit_result(ghcb) == ExitResult::Ok { Ok(()) } else { Err(VcError::ExitFailed) }
}

/// The low 32 bits of a register the hypervisor answered with (EAX, ECX, EDX), if it marked it valid.
fn answer_32(ghcb: &Ghcb, at: usize) -> Result<u64, VcError> {
    ghcb.get(at).map(|value| value & LOW_32).ok_or(VcError::ExitFailed)
}

fn serve_port_access(
    code: &[u8],
    regs: &mut InstructionRegisters,
    ghcb: &mut Ghcb,
    exit: impl FnOnce(&mut Ghcb),
) -> Result<u64, VcError> {
    let access = PortAccess::decode(code, regs.rdx as u16).ok_or(VcError::Unhandled)?;
    // RAX goes out only with OUT: marked valid for IN, a hypervisor that answered nothing would hand the guest its
    // own value back as the device's.
    if !access.is_in {
        ghcb.set(offset::RAX, regs.rax & access.mask());
    }
    ghcb.set_exit(exit_code::IOIO, access.exit_info(), 0);
    checked_exit(ghcb, exit)?;
    if access.is_in {
        let value = ghcb.get(offset::RAX).ok_or(VcError::ExitFailed)?;
        regs.rax = port_in_result(regs.rax, access.size, value);
    }
    Ok(access.length.into())
}

fn serve_msr(
    code: &[u8],
    regs: &mut InstructionRegisters,
    ghcb: &mut Ghcb,
    exit: impl FnOnce(&mut Ghcb),
) -> Result<u64, VcError> {
    let write = match code.get(..2) {
        Some(opcode) if opcode == RDMSR_OPCODE => false,
        Some(opcode) if opcode == WRMSR_OPCODE => true,
        _ => return Err(VcError::Unhandled),
    };
    ghcb.set(offset::RCX, regs.rcx & LOW_32);
    if write {
        ghcb.set(offset::RAX, regs.rax & LOW_32);
        ghcb.set(offset::RDX, regs.rdx & LOW_32);
    }
    // SW_EXITINFO1: 0 for RDMSR, 1 for WRMSR (§4.1.3).
    ghcb.set_exit(exit_code::MSR, u64::from(write), 0);
    checked_exit(ghcb, exit)?;
    if !write {
        (regs.rax, regs.rdx) = (answer_32(ghcb, offset::RAX)?, answer_32(ghcb, offset::RDX)?);
    }
    Ok(2)
}

/// RDTSC (EDX:EAX) or RDTSCP (also ECX = TSC_AUX), by `exit_code`: the hypervisor's values, as untrusted as any
/// clock it runs. No register changes unless every answer is there.
fn serve_time_stamp(
    exit_code: u64,
    code: &[u8],
    regs: &mut InstructionRegisters,
    ghcb: &mut Ghcb,
    exit: impl FnOnce(&mut Ghcb),
) -> Result<u64, VcError> {
    let with_aux = exit_code == exit_code::RDTSCP;
    let opcode: &[u8] = if with_aux { &RDTSCP_OPCODE } else { &RDTSC_OPCODE };
    if !code.starts_with(opcode) {
        return Err(VcError::Unhandled);
    }
    ghcb.set_exit(exit_code, 0, 0);
    checked_exit(ghcb, exit)?;
    let (eax, edx) = (answer_32(ghcb, offset::RAX)?, answer_32(ghcb, offset::RDX)?);
    let ecx = if with_aux { answer_32(ghcb, offset::RCX)? } else { regs.rcx };
    (regs.rax, regs.rcx, regs.rdx) = (eax, ecx, edx);
    Ok(opcode.len() as u64)
}

#[cfg(test)]
mod tests;
