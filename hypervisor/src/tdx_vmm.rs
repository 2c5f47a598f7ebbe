//! The VMM's side of TDG.VP.VMCALL (GHCI 1.5): RCX names the registers the TD exposes, R10 = 0 the standard
//! calls, R11 the subfunction, R12..R15 the operands; the VMM answers in R10 (status), R11 and R12..R15. Performed
//! on QEMU's real devices, as the untrusted host.

use ovmf::layout::PCI_MMIO;
use ovmf::snp::ghcb_msr::PageState;
use ovmf::snp::page_state::PageStateEntry;
use ovmf::tdx::tdvmcall::subfunction;
use protocol::console::Value;
use protocol::tdx::get_quote::{HEADER_LEN, STATUS_ERROR, STATUS_IN_FLIGHT, VERSION};
use protocol::tdx::{TDREPORT_LEN, offset as tdreport};
use simulated_platform::msr_exit::{self, MsrAnswer};
use simulated_platform::tdx::module::TDX_SUCCESS;

use simulated_platform::hostile::HostileKind;

use crate::misbehaviour::Misbehaviour;
use crate::platform_memory::{PlatformMemory, StateChangeError};
use crate::td_vcpu::TdVcpu;
use crate::vcpu::RunEnd;
use crate::{log, port};

/// TDG.VP.VMCALL_SUCCESS and TDG.VP.VMCALL_INVALID_OPERAND (GHCI 1.5, table "TDG.VP.VMCALL status codes").
const VMCALL_SUCCESS: u64 = 0;
const VMCALL_INVALID_OPERAND: u64 = 0x8000_0000_0000_0000;
/// TDG.VP.VMCALL_RETRY: MapGPA stopped part way; R11 says where to resume.
const VMCALL_RETRY: u64 = 1;

/// Serves the VMCALL in the vCPU's registers; the TDCALL's own status (TDX_SUCCESS unless the module refused it).
pub fn vmcall(vcpu: &mut TdVcpu, memory: &mut PlatformMemory, hostile: &mut Misbehaviour) -> Result<u64, RunEnd> {
    let is_exit_port_write = vcpu.cpu.registers.r[3] == subfunction::IO
        && vcpu.cpu.registers.r[5] == 1
        && vcpu.cpu.registers.r[6] == u64::from(ovmf::exit::DEBUG_EXIT_PORT);
    if is_exit_port_write {
        // The TD is ending its run through the debug-exit port: the counts go out before QEMU stops.
        crate::td_main::log_counts(&vcpu.counts, memory);
    }
    let regs = &mut vcpu.cpu.registers;
    if regs.r[2] != 0 {
        // R10 != 0: a vendor-specific call; none is known.
        regs.r[2] = VMCALL_INVALID_OPERAND;
        return Ok(TDX_SUCCESS);
    }
    let (r12, r13, r14, r15) = (regs.r[4], regs.r[5], regs.r[6], regs.r[7]);
    let mut r11 = 0;
    let status = match regs.r[3] {
        subfunction::IO => match (r12, r13) {
            (1 | 2 | 4, 0) => {
                r11 = u64::from(port::read(r14 as u16, r12 as u8));
                VMCALL_SUCCESS
            }
            (1 | 2 | 4, 1) => {
                port::write(r14 as u16, r12 as u8, r15 as u32);
                VMCALL_SUCCESS
            }
            _ => VMCALL_INVALID_OPERAND,
        },
        subfunction::CPUID => {
            let mut r = core::arch::x86_64::__cpuid_count(r12 as u32, r13 as u32);
            if r12 == 7 && hostile.is(HostileKind::TdCpuidVe) {
                // The lie: no AVX2 (leaf 7 EBX bit 5), which the image is built for.
                r.ebx &= !(1 << 5);
            }
            (regs.r[4], regs.r[5], regs.r[6], regs.r[7]) = (r.eax.into(), r.ebx.into(), r.ecx.into(), r.edx.into());
            VMCALL_SUCCESS
        }
        subfunction::RDMSR | subfunction::WRMSR => {
            let write = (regs.r[3] == subfunction::WRMSR).then_some(r13);
            // SAFETY: RDTSC reads a counter.
            let tsc = unsafe { core::arch::x86_64::_rdtsc() };
            match msr_exit::answer(r12 as u32, write, tsc) {
                MsrAnswer::Value(value) => {
                    r11 = value;
                    VMCALL_SUCCESS
                }
                MsrAnswer::Written => VMCALL_SUCCESS,
                MsrAnswer::Refused => VMCALL_INVALID_OPERAND,
            }
        }
        subfunction::HLT => return Err(RunEnd::Stopped("the TD halted")),
        subfunction::REQUEST_MMIO => match mmio(r12, r13, r14 & !memory.memory.alias_mask(), r15) {
            Some(value) => {
                r11 = value;
                VMCALL_SUCCESS
            }
            None => VMCALL_INVALID_OPERAND,
        },
        subfunction::MAP_GPA if hostile.due(HostileKind::TdMapGpaFails) => VMCALL_INVALID_OPERAND,
        subfunction::MAP_GPA if hostile.due(HostileKind::TdMapGpaBackwards) => {
            // Resume one page before where the range starts.
            r11 = r12.wrapping_sub(4096);
            VMCALL_RETRY
        }
        subfunction::MAP_GPA => map_gpa(memory, r12, r13)?,
        subfunction::GET_QUOTE => get_quote(memory, r12 & !memory.memory.alias_mask(), r13, hostile),
        subfunction::REPORT_FATAL_ERROR => return Err(RunEnd::TdFatal(r12 & 0xffff_ffff)),
        other => {
            log::error("unknown TDG.VP.VMCALL", &[("subfunction", Value::Hex(other))]);
            VMCALL_INVALID_OPERAND
        }
    };
    vcpu.cpu.registers.r[2] = status;
    vcpu.cpu.registers.r[3] = r11;
    Ok(TDX_SUCCESS)
}

/// Device MMIO for the TD, inside the PCI window only.
fn mmio(size: u64, direction: u64, gpa: u64, value: u64) -> Option<u64> {
    if !matches!(size, 1 | 2 | 4 | 8) || !PCI_MMIO.contains(gpa) || !PCI_MMIO.contains(gpa + size - 1) {
        return None;
    }
    match direction {
        0 => Some(crate::ghcb_host::device_read(gpa, size)),
        1 => {
            crate::ghcb_host::device_write(gpa, size, value);
            Some(0)
        }
        _ => None,
    }
}

/// MapGPA: the range becomes shared (the shared bit set in `gpa`) or private and pending.
fn map_gpa(memory: &mut PlatformMemory, gpa: u64, size: u64) -> Result<u64, RunEnd> {
    let shared_bit = memory.memory.alias_mask();
    let private = gpa & shared_bit == 0;
    let start = gpa & !shared_bit;
    if !start.is_multiple_of(4096) || !size.is_multiple_of(4096) || size == 0 {
        return Ok(VMCALL_INVALID_OPERAND);
    }
    let state = if private { PageState::Private } else { PageState::Shared };
    for page in (start..start + size).step_by(4096) {
        match memory.change_state(&PageStateEntry { gfn: page >> 12, state, large: false }, false) {
            Ok(()) => {}
            Err(StateChangeError::NotGuestMemory) => return Ok(VMCALL_INVALID_OPERAND),
            Err(StateChangeError::TablesFull) => return Err(RunEnd::Stopped("nested page tables full")),
        }
    }
    Ok(VMCALL_SUCCESS)
}

/// GetQuote (GHCI 1.5; the buffer's format is `protocol::tdx::get_quote`'s): the TDREPORT in the shared buffer at `gpa` (`size` bytes) goes to the quote-generation service that
/// xtask serves; its quote comes back into the buffer with status 0, or the status says the request failed. The
/// simulated service answers at once, so the TD's first poll finds the quote.
fn get_quote(memory: &mut PlatformMemory, gpa: u64, size: u64, hostile: &mut Misbehaviour) -> u64 {
    let shared = |memory: &mut PlatformMemory, gpa: u64| memory.entry(gpa).is_some_and(|e| !e.assigned);
    if !gpa.is_multiple_of(4096) || !(4096..=0x2_0000).contains(&size) || !shared(memory, gpa) {
        return VMCALL_INVALID_OPERAND;
    }
    let mut header = [0u8; HEADER_LEN + TDREPORT_LEN];
    if !memory.memory.read(gpa, &mut header) {
        return VMCALL_INVALID_OPERAND;
    }
    let well_formed = header[..8] == VERSION.to_le_bytes() && header[16..20] == (TDREPORT_LEN as u32).to_le_bytes();
    if well_formed && hostile.due(HostileKind::TdQuoteNeverCompletes) {
        return quote_status(memory, gpa, STATUS_IN_FLIGHT, 0);
    }
    if well_formed && hostile.due(HostileKind::TdQuoteForAnotherTd) {
        // Another TD's REPORTDATA: another TD's report, another TD's quote.
        header[HEADER_LEN + tdreport::REPORT_DATA] ^= 1;
    }
    let mut answer = [0u8; simulated_platform::firmware_channel::MAX_BODY];
    let quote = if well_formed {
        crate::firmware::exchange(
            simulated_platform::firmware_channel::Kind::TdQuote,
            &header[HEADER_LEN..],
            &mut answer,
        )
        .ok()
    } else {
        None
    };
    match quote {
        Some((0, length)) if (HEADER_LEN + length) as u64 <= size => {
            if !memory.memory.write(gpa + HEADER_LEN as u64, &answer[..length]) {
                return VMCALL_INVALID_OPERAND;
            }
            // An out_len past the buffer's end, if the host misbehaves so.
            let out_len = if hostile.due(HostileKind::TdQuoteOverflows) { size as u32 } else { length as u32 };
            quote_status(memory, gpa, 0, out_len)
        }
        _ => quote_status(memory, gpa, STATUS_ERROR, 0),
    }
}

/// Writes the buffer's status, in_len (the TDREPORT's) and out_len.
fn quote_status(memory: &mut PlatformMemory, gpa: u64, status: u64, out_len: u32) -> u64 {
    let mut fields = [0u8; 16];
    fields[..8].copy_from_slice(&status.to_le_bytes());
    fields[8..12].copy_from_slice(&(TDREPORT_LEN as u32).to_le_bytes());
    fields[12..16].copy_from_slice(&out_len.to_le_bytes());
    if memory.memory.write(gpa + 8, &fields) { VMCALL_SUCCESS } else { VMCALL_INVALID_OPERAND }
}
