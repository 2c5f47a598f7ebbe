//! A TD's vCPUs and their exit loop: each #VMEXIT becomes what the TDX module and an honest VMM make of it.
//!
//! | exit | becomes |
//! |------|---------|
//! | CPUID of a leaf the module virtualizes (0..=0xD, 0x21, 0x8000_0000..=0x8000_0008) | answered directly |
//! | other CPUID, IN/OUT, RDMSR/WRMSR (but EFER), HLT | #VE with the module's VE information |
//! | #UD on TDCALL (66 0F 01 CC) | the module's leaf (`tdx_module`), TDG.VP.VMCALL the VMM's (`tdx_vmm`) |
//! | nested page fault on a private page not accepted | #VE (EPT violation) |
//! | PAUSE of the application vCPU | it is parked for good (the stub's loop) |

use ovmf::tdx::ve::exit_reason;
use protocol::console::Value;
use simulated_platform::hostile::HostileKind;
use simulated_platform::tdx::ve::{self, VeInfo};
use simulated_platform::vmsa::offset;

use crate::guest_cpu::GuestCpu;
use crate::platform_memory::PlatformMemory;
use crate::svm::{control, exit};
use crate::vcpu::RunEnd;
use crate::{log, tdx_module, vc_delivery};

const TDCALL: [u8; 4] = [0x66, 0x0f, 0x01, 0xcc];
/// The nested page fault's instruction-fetch and write bits (APM vol. 2, 15.25.6).
const NPF_WRITE: u64 = 1 << 1;
const NPF_FETCH: u64 = 1 << 4;

/// Counts by kind, for the `exits` record.
#[derive(Default)]
pub struct TdCounts {
    /// All exits.
    pub total: u64,
    /// #VE delivered, by cause.
    pub ve_cpuid: u64,
    /// #VE for port I/O.
    pub ve_io: u64,
    /// #VE for MSRs.
    pub ve_msr: u64,
    /// #VE for other causes (HLT, EPT violations).
    pub ve_other: u64,
    /// CPUID answered by the module.
    pub cpuid_virtualized: u64,
    /// TDCALLs, all leaves.
    pub tdcalls: u64,
    /// TDG.MEM.PAGE.ACCEPT of 2 MiB pages.
    pub accepts_2m: u64,
    /// TDG.MEM.PAGE.ACCEPT of 4 KiB pages.
    pub accepts_4k: u64,
    /// TDG.VP.VMCALLs.
    pub vmcalls: u64,
}

/// One TD vCPU.
pub struct TdVcpu {
    /// Its state.
    pub cpu: GuestCpu,
    /// VCPU_INDEX.
    pub index: u32,
    /// The #VE information the module holds for TDG.VP.VEINFO.GET.
    pub ve_info: Option<VeInfo>,
    /// Counts.
    pub counts: TdCounts,
}

impl TdVcpu {
    fn raise_ve(&mut self, info: VeInfo) {
        match info.exit_reason {
            exit_reason::CPUID => self.counts.ve_cpuid += 1,
            exit_reason::IO_INSTRUCTION => self.counts.ve_io += 1,
            exit_reason::MSR_READ | exit_reason::MSR_WRITE => self.counts.ve_msr += 1,
            _ => self.counts.ve_other += 1,
        }
        self.ve_info = Some(info);
        vc_delivery::inject_exception(self.cpu.vmcb, ve::VECTOR_VE, None);
    }

    fn enter(&mut self, memory: &mut PlatformMemory) {
        self.cpu.run(memory);
        self.counts.total += 1;
    }

    /// Runs an application vCPU until it parks (its first PAUSE); anything else it does ends the run.
    pub fn park(&mut self, memory: &mut PlatformMemory) -> Result<(), RunEnd> {
        // Every vCPU of the TD shares the nested tables: flush on each switch.
        memory.flush_tlb = true;
        self.enter(memory);
        match self.cpu.vmcb.get(control::EXITCODE) {
            exit::PAUSE => Ok(()),
            code => {
                log::error(
                    "application vCPU did not park",
                    &[("exit", Value::Hex(code)), ("rip", Value::Hex(self.cpu.rip()))],
                );
                Err(RunEnd::Stopped("the application vCPU ran past its parking loop"))
            }
        }
    }

    /// Runs the boot vCPU until the TD ends.
    pub fn run(&mut self, memory: &mut PlatformMemory, td: &mut tdx_module::Td) -> RunEnd {
        memory.flush_tlb = true;
        loop {
            self.enter(memory);
            if self.counts.total <= td.trace_exits {
                log::info(
                    "exit",
                    &[
                        ("code", Value::Hex(self.cpu.vmcb.get(control::EXITCODE))),
                        ("rip", Value::Hex(self.cpu.rip())),
                        ("info1", Value::Hex(self.cpu.vmcb.get(control::EXITINFO1))),
                        ("info2", Value::Hex(self.cpu.vmcb.get(control::EXITINFO2))),
                        ("cs_attr", Value::Hex(self.cpu.vmcb.segment(offset::CS).attributes.into())),
                        ("cs_base", Value::Hex(self.cpu.vmcb.segment(offset::CS).base)),
                        ("cr0", Value::Hex(self.cpu.vmcb.state(offset::CR0))),
                        ("efer", Value::Hex(self.cpu.vmcb.state(offset::EFER))),
                        ("rsp", Value::Hex(self.cpu.vmcb.state(offset::RSP))),
                        ("rax", Value::Hex(self.cpu.vmcb.state(offset::RAX))),
                        ("rcx", Value::Hex(self.cpu.registers.rcx)),
                    ],
                );
            }
            if let Err(end) = self.handle_exit(memory, td) {
                return end;
            }
        }
    }

    fn handle_exit(&mut self, memory: &mut PlatformMemory, td: &mut tdx_module::Td) -> Result<(), RunEnd> {
        let code = self.cpu.vmcb.get(control::EXITCODE);
        match code {
            exit::CPUID => {
                let (leaf, subleaf) = (self.cpu.vmcb.state(offset::RAX) as u32, self.cpu.registers.rcx as u32);
                let answer = match tdx_module::virtualized_cpuid(leaf, subleaf) {
                    Some(_) if leaf == 7 && td.hostile.due(HostileKind::TdCpuidVe) => None,
                    answer => answer,
                };
                match answer {
                    Some([eax, ebx, ecx, edx]) => {
                        self.counts.cpuid_virtualized += 1;
                        self.cpu.vmcb.set_state(offset::RAX, eax.into());
                        (self.cpu.registers.rbx, self.cpu.registers.rcx, self.cpu.registers.rdx) =
                            (ebx.into(), ecx.into(), edx.into());
                        self.cpu.advance(2);
                    }
                    None => self.raise_ve(ve::cpuid()),
                }
                Ok(())
            }
            exit::IOIO => {
                let info = ve::port_io(
                    self.cpu.vmcb.get(control::EXITINFO1),
                    self.cpu.rip(),
                    self.cpu.vmcb.get(control::EXITINFO2),
                );
                let info = info.ok_or(RunEnd::Stopped("an I/O instruction the module cannot describe"))?;
                self.raise_ve(info);
                Ok(())
            }
            exit::MSR => {
                self.raise_ve(ve::msr(self.cpu.vmcb.get(control::EXITINFO1) == 1));
                Ok(())
            }
            exit::HLT => {
                self.raise_ve(ve::hlt());
                Ok(())
            }
            exit::UD if self.cpu.instruction(memory) == TDCALL => {
                self.counts.tdcalls += 1;
                tdx_module::tdcall(self, memory, td)
            }
            exit::UD => {
                vc_delivery::inject_exception(self.cpu.vmcb, 6, None);
                Ok(())
            }
            exit::NPF => {
                let address = self.cpu.vmcb.get(control::EXITINFO2);
                let error = self.cpu.vmcb.get(control::EXITINFO1);
                let shared_bit = memory.memory.alias_mask();
                let gpa = address & !shared_bit;
                let pending = memory.entry(gpa).is_some_and(|e| e.assigned && !e.validated);
                if address & shared_bit == 0 && pending {
                    self.raise_ve(ve::ept_violation(address, error & NPF_WRITE != 0, error & NPF_FETCH != 0));
                    return Ok(());
                }
                log::error("nested page fault", &[("gpa", Value::Hex(address)), ("error", Value::Hex(error))]);
                Err(RunEnd::Stopped("an access the TD's secure EPT does not allow"))
            }
            exit::SHUTDOWN => Err(RunEnd::Stopped("the TD shut down (triple fault)")),
            exit::INVALID => Err(RunEnd::Stopped("VMRUN refused the TD's state")),
            _ => {
                log::error("unexpected exit", &[("code", Value::Hex(code)), ("rip", Value::Hex(self.cpu.rip()))]);
                Err(RunEnd::Stopped("unexpected exit"))
            }
        }
    }
}
