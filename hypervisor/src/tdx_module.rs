//! The simulated TDX module: the TDCALL leaves a TD uses (Intel TDX module ABI specification), CPUID
//! virtualization, and TDG.VP.VMCALL handed to the VMM (`tdx_vmm`). The rules are `simulated_platform::tdx`'s.

use core::arch::x86_64::__cpuid_count;

use ovmf::tdx::tdcall::leaf;
use protocol::tdx::TDREPORT_LEN;
use simulated_platform::tdx::module::{self, TDX_NO_VE_INFO, TDX_OPERAND_INVALID, TDX_SUCCESS};
use simulated_platform::vmsa::offset;

use crate::platform_memory::PlatformMemory;
use crate::td_vcpu::TdVcpu;
use crate::tdx_vmm;
use crate::vcpu::RunEnd;

/// The TD as the module knows it.
pub struct Td {
    /// GPAW (48).
    pub gpaw: u8,
    /// ATTRIBUTES.
    pub attributes: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// How many of the boot vCPU's first exits to record (`trace_exits=N`, for debugging the platform).
    pub trace_exits: u64,
    /// The host's misbehaviour of this run.
    pub hostile: crate::misbehaviour::Misbehaviour,
}

/// "IntelTDX    " in EBX, EDX, ECX of CPUID leaf 0x21 (Intel TDX module base specification, "TDX CPUID").
const TDX_SIGNATURE: [u32; 3] = [0x6574_6e49, 0x5844_546c, 0x2020_2020];
/// The TDX leaf.
const LEAF_TDX: u32 = 0x21;

/// The CPUID leaves the module answers itself (from the CPU it runs on, with the basic range raised to include its
/// own leaf 0x21); `None` for those that raise #VE for the VMM to answer.
pub fn virtualized_cpuid(leaf: u32, subleaf: u32) -> Option<[u32; 4]> {
    let hardware = |leaf, subleaf| {
        let r = __cpuid_count(leaf, subleaf);
        [r.eax, r.ebx, r.ecx, r.edx]
    };
    match leaf {
        0 => {
            let mut r = hardware(0, 0);
            r[0] = r[0].max(LEAF_TDX);
            Some(r)
        }
        LEAF_TDX => Some([0, TDX_SIGNATURE[0], TDX_SIGNATURE[2], TDX_SIGNATURE[1]]),
        1..=0xd | 0x8000_0000..=0x8000_0008 => Some(hardware(leaf, subleaf)),
        _ => None,
    }
}

/// Serves the TDCALL the vCPU stopped at; RIP moves past it.
pub fn tdcall(vcpu: &mut TdVcpu, memory: &mut PlatformMemory, td: &mut Td) -> Result<(), RunEnd> {
    let rax = vcpu.cpu.vmcb.state(offset::RAX);
    let accepting = (rax == leaf::TDG_MEM_PAGE_ACCEPT).then_some(vcpu.cpu.registers.rcx & !0xfff);
    td.hostile.before_tdcall(memory, accepting);
    let status = match rax {
        leaf::TDG_VP_INFO => {
            let [rcx, rdx, r8, r9] = module::vp_info(td.gpaw, td.attributes, td.vcpus, vcpu.index);
            (vcpu.cpu.registers.rcx, vcpu.cpu.registers.rdx, vcpu.cpu.registers.r[0], vcpu.cpu.registers.r[1]) =
                (rcx, rdx, r8, r9);
            (vcpu.cpu.registers.r[2], vcpu.cpu.registers.r[3]) = (0, 0);
            TDX_SUCCESS
        }
        leaf::TDG_VP_VEINFO_GET => match vcpu.ve_info.take() {
            Some(info) => {
                vcpu.cpu.registers.rcx = u64::from(info.exit_reason);
                vcpu.cpu.registers.rdx = info.exit_qualification;
                vcpu.cpu.registers.r[0] = 0;
                vcpu.cpu.registers.r[1] = info.gpa;
                vcpu.cpu.registers.r[2] = u64::from(info.instruction_length);
                TDX_SUCCESS
            }
            None => TDX_NO_VE_INFO,
        },
        leaf::TDG_MEM_PAGE_ACCEPT => accept(vcpu, memory)?,
        leaf::TDG_MR_REPORT => report(vcpu, memory),
        leaf::TDG_VP_VMCALL => {
            vcpu.counts.vmcalls += 1;
            tdx_vmm::vmcall(vcpu, memory, &mut td.hostile)?
        }
        _ => TDX_OPERAND_INVALID,
    };
    vcpu.cpu.vmcb.set_state(offset::RAX, status);
    vcpu.cpu.advance(4);
    Ok(())
}

fn accept(vcpu: &mut TdVcpu, memory: &mut PlatformMemory) -> Result<u64, RunEnd> {
    let rcx = vcpu.cpu.registers.rcx;
    let gpa = rcx & !0xfff & !memory.memory.alias_mask();
    let large = rcx & 0x7 == 1;
    let Some(table) = memory.rmp(gpa) else { return Ok(TDX_OPERAND_INVALID) };
    let status = module::accept(table, rcx);
    if status == TDX_SUCCESS {
        let pages = if large { 512 } else { 1 };
        if large {
            vcpu.counts.accepts_2m += 1;
        } else {
            vcpu.counts.accepts_4k += 1;
        }
        for page in 0..pages {
            // An accepted page reads as zeros.
            if let Some(contents) = memory.memory.page_mut(gpa + page * 4096) {
                contents.fill(0);
            }
            memory.sync(gpa + page * 4096).map_err(|_| RunEnd::Stopped("nested page tables full"))?;
        }
    }
    Ok(status)
}

/// REPORTDATA's size (Intel TDX module ABI, TDG.MR.REPORT).
const REPORT_DATA_LEN: usize = 64;

/// TDG.MR.REPORT: RCX the TDREPORT's GPA (1024-aligned), RDX REPORTDATA's (64-aligned), R8 the subtype (0), both
/// in private memory. The report itself comes from the module's reporting in xtask (it holds the MAC key of the
/// simulated platform), over the firmware channel.
fn report(vcpu: &mut TdVcpu, memory: &mut PlatformMemory) -> u64 {
    let (out, data) = (vcpu.cpu.registers.rcx, vcpu.cpu.registers.rdx);
    let private = |gpa: u64, memory: &mut PlatformMemory| memory.entry(gpa).is_some_and(|e| e.assigned && e.validated);
    let aligned = out.is_multiple_of(TDREPORT_LEN as u64) && data.is_multiple_of(REPORT_DATA_LEN as u64);
    if !aligned || vcpu.cpu.registers.r[0] != 0 || !private(out, memory) || !private(data, memory) {
        return TDX_OPERAND_INVALID;
    }
    let mut report_data = [0u8; REPORT_DATA_LEN];
    if !memory.memory.read(data, &mut report_data) {
        return TDX_OPERAND_INVALID;
    }
    let mut answer = [0u8; simulated_platform::firmware_channel::MAX_BODY];
    match crate::firmware::exchange(simulated_platform::firmware_channel::Kind::TdReport, &report_data, &mut answer) {
        Ok((0, TDREPORT_LEN)) if memory.memory.write(out, &answer[..TDREPORT_LEN]) => TDX_SUCCESS,
        _ => TDX_OPERAND_INVALID,
    }
}
