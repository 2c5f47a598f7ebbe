//! The #VC handler (AMD64 APM vol. 2, 15.35.5; GHCB specification §4.1): under SEV-SNP the instructions the
//! hypervisor intercepts raise #VC in the guest instead, with the exit code as error code. Served (the logic is
//! `ovmf::snp::vc`, tested on the host; this file adds the instruction bytes, the GHCB and VMGEXIT):
//!
//! - CPUID (0x72): answered from the CPUID page, never by the hypervisor;
//! - IN/OUT (0x7B), RDMSR/WRMSR (0x7C) and RDTSC/RDTSCP (0x6E, 0x87): through the GHCB.
//!
//! Anything else ends the guest. The handler runs on its own IST stack and executes nothing that raises #VC
//! (no port I/O, no CPUID, no printing), so it never nests; a #VC raised while another exit holds the GHCB ends
//! the guest (`Ghcb::take`). Device registers are not reached by faulting MMIO: the virtio driver asks the GHCB
//! directly (`ghcb::mmio_read`), which keeps an x86 instruction decoder out of the TCB.

use ovmf::snp::ghcb::exit_code::CPUID;
use ovmf::snp::ghcb_msr::{REASON_EXIT_FAILED, REASON_UNHANDLED_VC};
use ovmf::snp::vc::{VcError, serve_cpuid, serve_with_ghcb};

use super::cpuid;
use super::ghcb::{self, Ghcb};
use crate::interrupts::ExceptionFrame;
use crate::sections;

/// The longest instruction served: a prefixed IN/OUT or an imm8 one.
const MAX_INSTRUCTION_LEN: u64 = 3;

/// Serves the #VC in `frame`, stepping over the instruction; ends the guest for anything it does not serve.
pub fn handle(frame: &mut ExceptionFrame) {
    let Some(code) = instruction(frame) else { ghcb::terminate(REASON_UNHANDLED_VC) };
    let mut regs = frame.instruction_registers();
    let served = if frame.error_code == CPUID {
        // No GHCB: CPUID is served also before the GHCB exists.
        serve_cpuid(code, &mut regs, &cpuid::page())
    } else {
        let mut ghcb = Ghcb::take();
        serve_with_ghcb(frame.error_code, code, &mut regs, ghcb.page(), |_| ghcb::vmgexit_with_ghcb())
    };
    match served {
        Ok(length) => frame.complete_instruction(regs, length),
        Err(VcError::Unhandled) => ghcb::terminate(REASON_UNHANDLED_VC),
        Err(VcError::ExitFailed) => ghcb::terminate(REASON_EXIT_FAILED),
    }
}

/// The bytes at RIP, if RIP lies in the kernel's code (a #VC from anywhere else is not served).
fn instruction(frame: &ExceptionFrame) -> Option<&'static [u8]> {
    let text = sections::text();
    if !text.contains(&frame.rip) {
        return None;
    }
    let len = (text.end - frame.rip).min(MAX_INSTRUCTION_LEN) as usize;
    // SAFETY: [rip, rip + len) lies inside .text, which is mapped readable and never written.
    Some(unsafe { core::slice::from_raw_parts(frame.rip as *const u8, len) })
}
