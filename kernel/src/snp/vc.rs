//! The #VC handler (AMD64 APM vol. 2, 15.35.5; GHCB specification §4.1): under SEV-SNP the instructions the
//! hypervisor intercepts raise #VC in the guest instead, with the exit code as error code. Served here:
//!
//! - CPUID (0x72): answered from the CPUID page, never by the hypervisor;
//! - IN/OUT (0x7B): the instruction decoded by `ovmf::snp::ioio`, the access done through the GHCB;
//! - RDMSR/WRMSR (0x7C): through the GHCB.
//!
//! Anything else ends the guest. The handler runs on its own IST stack and executes nothing that raises #VC
//! (no port I/O, no CPUID, no printing), so it never nests; a #VC raised while another exit holds the GHCB ends
//! the guest (`Ghcb::take`). Device registers are not reached by faulting MMIO: the virtio driver asks the GHCB
//! directly (`ghcb::mmio_read`), which keeps an x86 instruction decoder out of the TCB.

use ovmf::snp::ghcb::exit_code::{CPUID, IOIO, MSR};
use ovmf::snp::ghcb::offset;
use ovmf::snp::ghcb_msr::{REASON_EXIT_FAILED, REASON_UNHANDLED_VC};
use ovmf::snp::ioio::PortAccess;

use super::cpuid;
use super::ghcb::{self, Ghcb};
use crate::interrupts::{ExceptionFrame, Gpr};
use crate::sections;

/// RDMSR and WRMSR (0F 32, 0F 30).
const RDMSR: [u8; 2] = [0x0f, 0x32];
const WRMSR: [u8; 2] = [0x0f, 0x30];
/// The longest instruction served: a prefixed IN/OUT or an imm8 one.
const MAX_INSTRUCTION_LEN: usize = 3;

/// Serves the #VC in `frame`, stepping over the instruction; ends the guest for anything it does not serve.
pub fn handle(frame: &mut ExceptionFrame) {
    let length = match frame.error_code {
        CPUID => serve_cpuid(frame),
        IOIO => serve_port_access(frame),
        MSR => serve_msr(frame),
        _ => None,
    };
    match length {
        Some(length) => frame.rip += length,
        None => ghcb::terminate(REASON_UNHANDLED_VC),
    }
}

/// The bytes at RIP, if RIP lies in the kernel's code (a #VC from anywhere else is not served).
fn instruction(frame: &ExceptionFrame) -> Option<&'static [u8]> {
    let text = sections::text();
    if !text.contains(&frame.rip) {
        return None;
    }
    let len = (text.end - frame.rip).min(MAX_INSTRUCTION_LEN as u64) as usize;
    // SAFETY: [rip, rip + len) lies inside .text, which is mapped readable and never written.
    Some(unsafe { core::slice::from_raw_parts(frame.rip as *const u8, len) })
}

fn serve_cpuid(frame: &mut ExceptionFrame) -> Option<u64> {
    if instruction(frame)?.get(..2)? != [0x0f, 0xa2] {
        return None;
    }
    let result = cpuid::cpuid(frame.gpr(Gpr::Rax) as u32, frame.gpr(Gpr::Rcx) as u32);
    frame.set_gpr(Gpr::Rax, u64::from(result.eax));
    frame.set_gpr(Gpr::Rbx, u64::from(result.ebx));
    frame.set_gpr(Gpr::Rcx, u64::from(result.ecx));
    frame.set_gpr(Gpr::Rdx, u64::from(result.edx));
    Some(2)
}

fn serve_port_access(frame: &mut ExceptionFrame) -> Option<u64> {
    let access = PortAccess::decode(instruction(frame)?, frame.gpr(Gpr::Rdx) as u16)?;
    let rax = frame.gpr(Gpr::Rax);
    let mut ghcb = Ghcb::take();
    let page = ghcb.page();
    page.set(offset::RAX, rax & access.mask());
    page.set_exit(IOIO, access.exit_info(), 0);
    ghcb.exit_or_terminate();
    if access.is_in {
        let value = ghcb.page().get(offset::RAX).unwrap_or_else(|| ghcb::terminate(REASON_EXIT_FAILED));
        // A 32-bit IN zero-extends into RAX; 8- and 16-bit ones keep the upper bits.
        let kept = if access.size == 4 { 0 } else { rax & !access.mask() };
        frame.set_gpr(Gpr::Rax, kept | (value & access.mask()));
    }
    Some(u64::from(access.length))
}

fn serve_msr(frame: &mut ExceptionFrame) -> Option<u64> {
    let code = instruction(frame)?.get(..2)?;
    let write = match [code[0], code[1]] {
        RDMSR => false,
        WRMSR => true,
        _ => return None,
    };
    let mut ghcb = Ghcb::take();
    let page = ghcb.page();
    page.set(offset::RCX, frame.gpr(Gpr::Rcx) & 0xffff_ffff);
    if write {
        page.set(offset::RAX, frame.gpr(Gpr::Rax) & 0xffff_ffff);
        page.set(offset::RDX, frame.gpr(Gpr::Rdx) & 0xffff_ffff);
    }
    page.set_exit(MSR, u64::from(write), 0);
    ghcb.exit_or_terminate();
    if !write {
        let page = ghcb.page();
        let (Some(eax), Some(edx)) = (page.get(offset::RAX), page.get(offset::RDX)) else {
            ghcb::terminate(REASON_EXIT_FAILED)
        };
        frame.set_gpr(Gpr::Rax, eax & 0xffff_ffff);
        frame.set_gpr(Gpr::Rdx, edx & 0xffff_ffff);
    }
    Some(2)
}
