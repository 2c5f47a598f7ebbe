//! AMD SVM as the hypervisor uses it (AMD64 APM vol. 2, chapter 15 and appendix B): turning it on, the VMCB's
//! fields by offset, and the world switch (`world_switch.s`).

use crate::msr;

/// EFER.SVME (APM vol. 2, 15.4).
const EFER_SVME: u64 = 1 << 12;
/// The host save area's address (VM_HSAVE_PA, APM vol. 2, 15.30.4).
const MSR_VM_HSAVE_PA: u32 = 0xc001_0117;
/// CPUID Fn8000_0001 ECX bit 2: SVM. Fn8000_000A EDX bit 0: nested paging.
const CPUID_SVM: u32 = 1 << 2;
const CPUID_NESTED_PAGING: u32 = 1 << 0;

/// VMCB control-area offsets (APM vol. 2, table B-1).
pub mod control {
    /// Exception intercepts, one bit per vector.
    pub const INTERCEPT_EXCEPTIONS: usize = 0x008;
    /// Intercepts of instructions and events, first word.
    pub const INTERCEPT_MISC1: usize = 0x00c;
    /// Intercepts, second word.
    pub const INTERCEPT_MISC2: usize = 0x010;
    /// IOPM_BASE_PA.
    pub const IOPM_BASE_PA: usize = 0x040;
    /// MSRPM_BASE_PA.
    pub const MSRPM_BASE_PA: usize = 0x048;
    /// Guest ASID.
    pub const GUEST_ASID: usize = 0x058;
    /// TLB_CONTROL.
    pub const TLB_CONTROL: usize = 0x05c;
    /// EXITCODE.
    pub const EXITCODE: usize = 0x070;
    /// EXITINFO1.
    pub const EXITINFO1: usize = 0x078;
    /// EXITINFO2.
    pub const EXITINFO2: usize = 0x080;
    /// NP_ENABLE.
    pub const NP_ENABLE: usize = 0x090;
    /// EVENTINJ.
    pub const EVENTINJ: usize = 0x0a8;
    /// N_CR3: the nested page tables.
    pub const N_CR3: usize = 0x0b0;
}

/// The save area starts here; its fields sit at the VMSA's offsets (`simulated_platform::vmsa::offset`).
pub const SAVE_AREA: usize = 0x400;

/// INTERCEPT_MISC1 bits (APM vol. 2, table B-1).
pub mod misc1 {
    /// CPUID.
    pub const CPUID: u32 = 1 << 18;
    /// PAUSE.
    pub const PAUSE: u32 = 1 << 23;
    /// HLT.
    pub const HLT: u32 = 1 << 24;
    /// IN/OUT, through the I/O permission map.
    pub const IOIO_PROT: u32 = 1 << 27;
    /// RDMSR/WRMSR, through the MSR permission map.
    pub const MSR_PROT: u32 = 1 << 28;
    /// Shutdown (a triple fault).
    pub const SHUTDOWN: u32 = 1 << 31;
}

/// INTERCEPT_MISC2 bits.
pub mod misc2 {
    /// VMRUN: the hardware requires it.
    pub const VMRUN: u32 = 1 << 0;
    /// VMMCALL (and VMGEXIT, which QEMU reports as VMMCALL: DESIGN.md §10).
    pub const VMMCALL: u32 = 1 << 1;
}

/// Exit codes (APM vol. 2, appendix C).
pub mod exit {
    /// #UD: PVALIDATE and TDCALL are undefined opcodes to QEMU.
    pub const UD: u64 = 0x46;
    /// CPUID.
    pub const CPUID: u64 = 0x72;
    /// PAUSE.
    pub const PAUSE: u64 = 0x77;
    /// HLT.
    pub const HLT: u64 = 0x78;
    /// IN/OUT.
    pub const IOIO: u64 = 0x7b;
    /// RDMSR/WRMSR.
    pub const MSR: u64 = 0x7c;
    /// Shutdown.
    pub const SHUTDOWN: u64 = 0x7f;
    /// VMMCALL (also VMGEXIT under QEMU).
    pub const VMMCALL: u64 = 0x81;
    /// Nested page fault.
    pub const NPF: u64 = 0x400;
    /// VMRUN refused the VMCB.
    pub const INVALID: u64 = u64::MAX;
}

/// One VMCB: a page the hardware reads at VMRUN and writes at #VMEXIT.
#[repr(C, align(4096))]
pub struct Vmcb(pub [u8; 4096]);

impl Vmcb {
    /// The u64 at `at`.
    pub fn get(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.0[at..at + 8].try_into().expect("8 bytes"))
    }

    /// Writes the u64 at `at`.
    pub fn set(&mut self, at: usize, value: u64) {
        self.0[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }

    /// The u32 at `at`.
    pub fn get32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.0[at..at + 4].try_into().expect("4 bytes"))
    }

    /// Writes the u32 at `at`.
    pub fn set32(&mut self, at: usize, value: u32) {
        self.0[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// A save-area u64 at a VMSA offset.
    pub fn state(&self, vmsa_offset: usize) -> u64 {
        self.get(SAVE_AREA + vmsa_offset)
    }

    /// Writes a save-area u64 at a VMSA offset.
    pub fn set_state(&mut self, vmsa_offset: usize, value: u64) {
        self.set(SAVE_AREA + vmsa_offset, value);
    }

    /// A segment register at a VMSA offset: (selector, attributes, limit, base).
    pub fn segment(&self, vmsa_offset: usize) -> Segment {
        let at = SAVE_AREA + vmsa_offset;
        Segment {
            selector: u16::from_le_bytes([self.0[at], self.0[at + 1]]),
            attributes: u16::from_le_bytes([self.0[at + 2], self.0[at + 3]]),
            limit: self.get32(at + 4),
            base: self.get(at + 8),
        }
    }

    /// Writes a segment register at a VMSA offset.
    pub fn set_segment(&mut self, vmsa_offset: usize, segment: Segment) {
        let at = SAVE_AREA + vmsa_offset;
        self.0[at..at + 2].copy_from_slice(&segment.selector.to_le_bytes());
        self.0[at + 2..at + 4].copy_from_slice(&segment.attributes.to_le_bytes());
        self.set32(at + 4, segment.limit);
        self.set(at + 8, segment.base);
    }
}

/// A segment register as the save area holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The selector.
    pub selector: u16,
    /// Descriptor bits 8..16 and 20..24, packed.
    pub attributes: u16,
    /// The limit.
    pub limit: u32,
    /// The base.
    pub base: u64,
}

impl Segment {
    /// The hidden part loaded from an 8-byte GDT descriptor (Intel SDM vol. 3A, 3.4.5).
    pub fn from_descriptor(selector: u16, descriptor: u64) -> Segment {
        let base = ((descriptor >> 16) & 0xff_ffff) | ((descriptor >> 32) & 0xff00_0000);
        let mut limit = ((descriptor & 0xffff) | ((descriptor >> 32) & 0xf_0000)) as u32;
        if descriptor & (1 << 55) != 0 {
            limit = (limit << 12) | 0xfff;
        }
        let attributes = (((descriptor >> 40) & 0xff) | ((descriptor >> 44) & 0xf00)) as u16;
        Segment { selector, attributes, limit, base }
    }

    /// The L (64-bit code) attribute.
    pub fn is_long(&self) -> bool {
        self.attributes & (1 << 9) != 0
    }
}

/// The general registers VMRUN does not load from the VMCB (all but RAX and RSP), saved across the world switch;
/// the layout is `world_switch.s`'s.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct GuestRegisters {
    /// RBX.
    pub rbx: u64,
    /// RCX.
    pub rcx: u64,
    /// RDX.
    pub rdx: u64,
    /// RSI.
    pub rsi: u64,
    /// RDI.
    pub rdi: u64,
    /// RBP.
    pub rbp: u64,
    /// R8..R15.
    pub r: [u64; 8],
}

/// The guest's x87/SSE/AVX state, saved with XSAVE across the world switch (the hypervisor's Rust uses SSE).
#[repr(C, align(64))]
pub struct ExtendedState(pub [u8; 4096]);

unsafe extern "C" {
    /// `world_switch.s`: loads the guest's registers and extended state, VMLOAD/VMRUN/VMSAVE, saves them back.
    fn world_switch(vmcb_pa: u64, registers: *mut GuestRegisters, extended: *mut ExtendedState);
}

core::arch::global_asm!(include_str!("world_switch.s"), options(att_syntax));

/// Runs the guest until its next #VMEXIT.
pub fn run(vmcb: &mut Vmcb, registers: &mut GuestRegisters, extended: &mut ExtendedState) {
    let vmcb_pa = vmcb as *mut Vmcb as u64;
    // SAFETY: the VMCB is a page-aligned, identity-mapped page (its virtual address is its physical one) that this
    // call borrows exclusively; the register and XSAVE areas are exclusively borrowed too. VMRUN changes no host
    // state the compiler relies on beyond what world_switch saves and restores.
    unsafe { world_switch(vmcb_pa, registers, extended) };
}

/// Turns SVM on with `host_save` as the host save area. `false` if the CPU has no SVM with nested paging.
pub fn enable(host_save: &mut [u8; 4096]) -> bool {
    let ext = core::arch::x86_64::__cpuid(0x8000_0001);
    let svm = core::arch::x86_64::__cpuid(0x8000_000a);
    if ext.ecx & CPUID_SVM == 0 || svm.edx & CPUID_NESTED_PAGING == 0 {
        return false;
    }
    msr::write(msr::EFER, msr::read(msr::EFER) | EFER_SVME);
    msr::write(MSR_VM_HSAVE_PA, host_save.as_ptr() as u64);
    true
}
