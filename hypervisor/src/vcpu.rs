//! The guest's one vCPU and the exit loop: each #VMEXIT becomes what SEV-SNP hardware and an honest host would
//! make of it (DESIGN.md §10).
//!
//! | exit | becomes |
//! |------|---------|
//! | CPUID, IN/OUT, RDMSR/WRMSR of other MSRs | #VC with the exit code (`vc_delivery`) |
//! | RDMSR/WRMSR of the GHCB MSR or SEV_STATUS | done by the "hardware" (these never exit on SNP) |
//! | VMGEXIT (QEMU: VMMCALL with a REP prefix) | the GHCB MSR protocol or a GHCB exit (`ghcb_host`) |
//! | #UD on PVALIDATE | the RMP's rule (`simulated_platform::rmp`) |
//! | nested page fault | the paging-off view ends, or #VC PAGE_NOT_VALIDATED after the host's implicit conversion |
//! | HLT, shutdown | the end of the run |

use ovmf::snp::ghcb::Ghcb;
use ovmf::snp::ghcb_msr::PageState;
use ovmf::snp::page_state::PageStateEntry;
use protocol::console::Value;
use simulated_platform::ghcb_msr::{self, MsrRequest};
use simulated_platform::rmp::PageSize;
use simulated_platform::vmsa::offset;

use crate::guest_cpu::GuestCpu;
use crate::guest_memory::C_BIT;
use crate::misbehaviour::Misbehaviour;
use crate::platform_memory::PlatformMemory;
use crate::svm::{ExtendedState, Vmcb, control, exit};
use crate::{ghcb_host, guest_request, log, page_state, vc_delivery};

/// The GHCB MSR and SEV_STATUS (AMD64 APM vol. 2, 15.34.10, 15.35.7).
const MSR_SEV_ES_GHCB: u32 = 0xc001_0130;
const MSR_SEV_STATUS: u32 = 0xc001_0131;
/// #VC error code for an access to a private page that is not validated (APM vol. 2, 15.36.9).
const VC_PAGE_NOT_VALIDATED: u64 = 0x404;
const VMGEXIT: [u8; 4] = [0xf3, 0x0f, 0x01, 0xd9];
const PVALIDATE: [u8; 4] = [0xf2, 0x0f, 0x01, 0xff];
const GHCB_PROTOCOL_MIN: u16 = 1;
const GHCB_PROTOCOL_MAX: u16 = 2;
const RFLAGS_ARITHMETIC: u64 = 0x8d5; // CF, PF, AF, ZF, SF, OF
const RFLAGS_CF: u64 = 1;
const CR0_PG: u64 = 1 << 31;
/// Nested page fault EXITINFO1 bits (APM vol. 2, 15.25.6): an instruction fetch, a fault during the guest's own
/// page-table walk.
const NPF_INSTRUCTION_FETCH: u64 = 1 << 4;
const NPF_GUEST_TABLE_WALK: u64 = 1 << 33;

/// Exits by kind, for the `exits` record.
#[derive(Default)]
pub struct ExitCounts {
    /// All exits.
    pub total: u64,
    /// #VC delivered, by cause.
    pub vc_cpuid: u64,
    /// #VC for port I/O.
    pub vc_ioio: u64,
    /// #VC for MSRs.
    pub vc_msr: u64,
    /// #VC for other causes.
    pub vc_other: u64,
    /// Page-state change exits (MSR protocol and GHCB batches).
    pub page_state_changes: u64,
    /// PVALIDATEs.
    pub pvalidates: u64,
    /// GHCB exits.
    pub ghcb_exits: u64,
    /// SNP guest requests (among the GHCB exits).
    pub guest_requests: u64,
}

/// The guest vCPU.
pub struct Vcpu {
    /// Its state.
    pub cpu: GuestCpu,
    /// The GHCB MSR as the guest last wrote it.
    ghcb_msr: u64,
    /// The GHCB the guest registered.
    registered_ghcb: Option<u64>,
    /// SEV_STATUS as the hardware reports it.
    sev_status: u64,
    /// Exit counts.
    pub counts: ExitCounts,
    /// The host's misbehaviour of this run.
    pub hostile: Misbehaviour,
    /// Whether 2 MiB page-state changes get small RMP entries.
    pub small_rmp_pages: bool,
}

/// How a run ended.
pub enum RunEnd {
    /// The guest asked to be terminated.
    Terminated {
        /// The reason set.
        set: u8,
        /// The reason code.
        code: u8,
    },
    /// A TD reported a fatal error (TDG.VP.VMCALL<ReportFatalError>) with this code.
    TdFatal(u64),
    /// The platform ended it (a failure of the guest's state the hardware would escalate, or of the platform).
    Stopped(&'static str),
}

impl Vcpu {
    /// A vCPU with SEV_FEATURES `sev_features`.
    pub fn new(
        vmcb: &'static mut Vmcb,
        extended: &'static mut ExtendedState,
        sev_features: u64,
        hostile: Misbehaviour,
    ) -> Vcpu {
        // SEV_STATUS: SEV and SEV-ES enabled, and the SEV_FEATURES bits from bit 2 (SNPActive = SNP enabled).
        let sev_status = 0b11 | (sev_features << 2);
        Vcpu {
            cpu: GuestCpu::new(vmcb, extended),
            ghcb_msr: 0,
            registered_ghcb: None,
            sev_status,
            counts: ExitCounts::default(),
            hostile,
            small_rmp_pages: false,
        }
    }

    fn deliver_vc(&mut self, memory: &mut PlatformMemory, code: u64) -> Result<(), RunEnd> {
        match code {
            exit::CPUID => self.counts.vc_cpuid += 1,
            exit::IOIO => self.counts.vc_ioio += 1,
            exit::MSR => self.counts.vc_msr += 1,
            _ => self.counts.vc_other += 1,
        }
        vc_delivery::deliver(self.cpu.vmcb, &mut memory.memory, code).map_err(|e| RunEnd::Stopped(e.0))
    }

    /// Runs the guest until it ends.
    pub fn run(&mut self, memory: &mut PlatformMemory) -> RunEnd {
        loop {
            self.cpu.run(memory);
            self.counts.total += 1;
            if let Err(end) = self.handle_exit(memory) {
                return end;
            }
        }
    }

    fn handle_exit(&mut self, memory: &mut PlatformMemory) -> Result<(), RunEnd> {
        let code = self.cpu.vmcb.get(control::EXITCODE);
        match code {
            exit::CPUID | exit::IOIO => self.deliver_vc(memory, code),
            exit::MSR => self.msr(memory),
            exit::VMMCALL if self.cpu.instruction(memory) == VMGEXIT => self.vmgexit(memory),
            exit::VMMCALL => self.deliver_vc(memory, code),
            exit::UD if self.cpu.instruction(memory) == PVALIDATE => self.pvalidate(memory),
            exit::UD => {
                vc_delivery::inject_exception(self.cpu.vmcb, 6, None);
                Ok(())
            }
            exit::NPF => self.nested_page_fault(memory),
            exit::HLT => Err(RunEnd::Stopped("the guest halted")),
            exit::SHUTDOWN => Err(RunEnd::Stopped("the guest shut down (triple fault)")),
            exit::INVALID => Err(RunEnd::Stopped("VMRUN refused the guest state")),
            _ => {
                log::error("unexpected exit", &[("code", Value::Hex(code)), ("rip", Value::Hex(self.cpu.rip()))]);
                Err(RunEnd::Stopped("unexpected exit"))
            }
        }
    }

    fn msr(&mut self, memory: &mut PlatformMemory) -> Result<(), RunEnd> {
        let msr = self.cpu.registers.rcx as u32;
        let write = self.cpu.vmcb.get(control::EXITINFO1) == 1;
        let value = (self.cpu.registers.rdx << 32) | (self.cpu.vmcb.state(offset::RAX) & 0xffff_ffff);
        match (msr, write) {
            (MSR_SEV_ES_GHCB, true) => self.ghcb_msr = value,
            (MSR_SEV_ES_GHCB, false) => self.set_edx_eax(self.ghcb_msr),
            (MSR_SEV_STATUS, false) => self.set_edx_eax(self.sev_status),
            _ => return self.deliver_vc(memory, exit::MSR),
        }
        self.cpu.advance(2);
        Ok(())
    }

    fn set_edx_eax(&mut self, value: u64) {
        self.cpu.vmcb.set_state(offset::RAX, value & 0xffff_ffff);
        self.cpu.registers.rdx = value >> 32;
    }

    fn vmgexit(&mut self, memory: &mut PlatformMemory) -> Result<(), RunEnd> {
        let response = match ghcb_msr::decode(self.ghcb_msr) {
            MsrRequest::SevInfo => {
                ghcb_msr::sev_info_response(GHCB_PROTOCOL_MIN, GHCB_PROTOCOL_MAX, C_BIT.trailing_zeros() as u8)
            }
            MsrRequest::Cpuid { function, register } => {
                let r = core::arch::x86_64::__cpuid(function);
                ghcb_msr::cpuid_response([r.eax, r.ebx, r.ecx, r.edx][usize::from(register)])
            }
            MsrRequest::RegisterGhcb { gfn } => {
                self.registered_ghcb = Some(gfn << 12);
                ghcb_msr::register_ghcb_response(Some(gfn))
            }
            MsrRequest::PageStateChange { gfn, private } => {
                self.counts.page_state_changes += 1;
                let answer = match self.hostile.page_state_change(memory, gfn << 12, private) {
                    Some(answer) => answer,
                    None => page_state_change(memory, gfn << 12, private),
                };
                ghcb_msr::page_state_change_response(answer)
            }
            MsrRequest::Terminate { set, code } => return Err(RunEnd::Terminated { set, code }),
            MsrRequest::Ghcb { gpa } => {
                self.ghcb_exit(memory, gpa)?;
                self.ghcb_msr
            }
            MsrRequest::Unknown(_) => return Err(RunEnd::Stopped("unknown GHCB MSR protocol request")),
        };
        self.ghcb_msr = response;
        self.cpu.advance(VMGEXIT.len() as u64);
        Ok(())
    }

    fn ghcb_exit(&mut self, memory: &mut PlatformMemory, gpa: u64) -> Result<(), RunEnd> {
        if self.registered_ghcb != Some(gpa) || memory.entry(gpa).is_none_or(|e| e.assigned) {
            return Err(RunEnd::Stopped("VMGEXIT with an unregistered or private GHCB"));
        }
        self.hostile.before_ghcb_exit(memory);
        let page = memory.memory.page_mut(gpa).ok_or(RunEnd::Stopped("GHCB outside guest memory"))?;
        // SAFETY: the page is 4 KiB, page-aligned and the guest's shared memory (RMP: hypervisor-owned); Ghcb is a
        // 4 KiB repr(C) byte array, so any bytes are a valid value; the guest does not run while this borrow lives.
        let ghcb = unsafe { &mut *(page.as_mut_ptr() as *mut Ghcb) };
        self.counts.ghcb_exits += 1;
        if ghcb.get(ovmf::snp::ghcb::offset::SW_EXITCODE) == Some(ovmf::snp::ghcb::exit_code::SNP_PAGE_STATE_CHANGE) {
            self.counts.page_state_changes += 1;
            page_state::serve(ghcb, memory, &mut self.hostile, self.small_rmp_pages);
            return Ok(());
        }
        if ghcb.get(ovmf::snp::ghcb::offset::SW_EXITCODE) == Some(ovmf::snp::ghcb::exit_code::SNP_GUEST_REQUEST) {
            self.counts.guest_requests += 1;
            guest_request::serve(ghcb, memory, &mut self.hostile);
            return Ok(());
        }
        if ghcb_host::is_exit_port_write(ghcb) {
            // The guest is ending its run through the debug-exit port: the counts go out before QEMU stops.
            log_counts(&self.counts, memory.validated_pages());
        }
        let wipe = self.hostile.wipes_reply(ghcb);
        ghcb_host::serve(ghcb);
        if wipe {
            // The reply comes back with no field marked valid.
            ghcb.reset(2);
        }
        Ok(())
    }

    fn pvalidate(&mut self, memory: &mut PlatformMemory) -> Result<(), RunEnd> {
        self.counts.pvalidates += 1;
        let rax = self.cpu.vmcb.state(offset::RAX);
        let Some(size) = PageSize::from_ecx(self.cpu.registers.rcx as u32) else {
            vc_delivery::inject_exception(self.cpu.vmcb, 13, Some(0));
            return Ok(());
        };
        let validate = self.cpu.registers.rdx as u32 == 1;
        let Some(translation) = memory.memory.translate(self.cpu.vmcb, rax) else {
            vc_delivery::inject_exception(self.cpu.vmcb, 14, Some(0));
            return Ok(());
        };
        let gpa = translation.gpa & !(size.bytes() - 1);
        let Some(rmp) = memory.rmp(gpa) else { return Err(RunEnd::Stopped("PVALIDATE outside guest memory")) };
        let outcome = rmp.pvalidate(gpa, size, validate);
        let Some((eax, cf)) = outcome.registers() else {
            return Err(RunEnd::Stopped("PVALIDATE of a page not assigned to the guest (RMP violation)"));
        };
        for page in (gpa..gpa + size.bytes()).step_by(4096) {
            memory.sync(page).map_err(|_| RunEnd::Stopped("nested page tables full"))?;
        }
        self.cpu.vmcb.set_state(offset::RAX, u64::from(eax));
        let rflags = self.cpu.vmcb.state(offset::RFLAGS) & !RFLAGS_ARITHMETIC;
        self.cpu.vmcb.set_state(offset::RFLAGS, rflags | if cf { RFLAGS_CF } else { 0 });
        self.cpu.advance(PVALIDATE.len() as u64);
        Ok(())
    }

    fn nested_page_fault(&mut self, memory: &mut PlatformMemory) -> Result<(), RunEnd> {
        let address = self.cpu.vmcb.get(control::EXITINFO2);
        let private = address & C_BIT != 0;
        let gpa = address & !C_BIT & !0xfff;
        if private && memory.in_paging_off_view() && self.cpu.vmcb.state(offset::CR0) & CR0_PG != 0 {
            return memory.leave_paging_off_view().map_err(|_| RunEnd::Stopped("nested page tables full"));
        }
        let error = self.cpu.vmcb.get(control::EXITINFO1);
        if !private && error & (NPF_GUEST_TABLE_WALK | NPF_INSTRUCTION_FETCH) != 0 {
            // SNP hardware treats guest page-table walks and instruction fetches as private whatever the C-bit
            // (APM vol. 2, 15.34.5): the walk of a CR3 without the C-bit reads private memory.
            return memory.allow_implicitly_private(gpa).map_err(|_| RunEnd::Stopped("nested page tables full"));
        }
        let Some(entry) = memory.entry(gpa) else {
            // Not guest memory (MMIO): an SNP guest reaches devices through the GHCB, never by faulting.
            return self.deliver_vc(memory, exit::NPF);
        };
        match (private, entry.assigned) {
            // A private access to a page the guest has not validated (or that the host took back): the host
            // converts it to private as KVM does, and the hardware raises #VC.
            (true, _) => {
                if !entry.assigned {
                    let rmp = memory.rmp(gpa).ok_or(RunEnd::Stopped("RMP"))?;
                    let _ = rmp.update(gpa, true);
                    memory.sync(gpa).map_err(|_| RunEnd::Stopped("nested page tables full"))?;
                }
                self.deliver_vc(memory, VC_PAGE_NOT_VALIDATED)
            }
            // A shared access to a private page: the host converts it to shared, and what the guest reads there
            // is what the hardware would show it, the page's ciphertext, never its plaintext.
            (false, true) => {
                let rmp = memory.rmp(gpa).ok_or(RunEnd::Stopped("RMP"))?;
                let _ = rmp.update(gpa, false);
                if let Some(page) = memory.memory.page_mut(gpa) {
                    page.fill(0xa5);
                }
                memory.sync(gpa).map_err(|_| RunEnd::Stopped("nested page tables full"))
            }
            (false, false) => Err(RunEnd::Stopped("nested page fault on a mapped shared page")),
        }
    }
}

/// The host's answer to a page-state change: RMPUPDATE and the nested tables (0 = success).
fn page_state_change(memory: &mut PlatformMemory, gpa: u64, private: bool) -> u32 {
    let state = if private { PageState::Private } else { PageState::Shared };
    match memory.change_state(&PageStateEntry { gfn: gpa >> 12, state, large: false }, false) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// Logs the exit counts.
pub fn log_counts(counts: &ExitCounts, validated: usize) {
    log::info(
        "exits",
        &[
            ("total", Value::U64(counts.total)),
            ("vc_cpuid", Value::U64(counts.vc_cpuid)),
            ("vc_ioio", Value::U64(counts.vc_ioio)),
            ("vc_msr", Value::U64(counts.vc_msr)),
            ("vc_other", Value::U64(counts.vc_other)),
            ("page_state_changes", Value::U64(counts.page_state_changes)),
            ("pvalidates", Value::U64(counts.pvalidates)),
            ("ghcb_exits", Value::U64(counts.ghcb_exits)),
            ("guest_requests", Value::U64(counts.guest_requests)),
            ("validated_pages", Value::U64(validated as u64)),
        ],
    );
}
