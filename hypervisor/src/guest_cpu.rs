//! One vCPU's hardware state as the hypervisor holds it between world switches, whichever platform it plays: the
//! VMCB, the general registers VMRUN does not load, the extended state; reading the instruction at RIP and
//! stepping over it.

use simulated_platform::vmsa::offset;

use crate::platform_memory::PlatformMemory;
use crate::svm::{self, ExtendedState, GuestRegisters, Vmcb, control};

/// A vCPU's state.
pub struct GuestCpu {
    /// Its VMCB.
    pub vmcb: &'static mut Vmcb,
    /// Its general registers.
    pub registers: GuestRegisters,
    /// Its extended state.
    pub extended: &'static mut ExtendedState,
}

impl GuestCpu {
    /// A vCPU with these pages.
    pub fn new(vmcb: &'static mut Vmcb, extended: &'static mut ExtendedState) -> GuestCpu {
        GuestCpu { vmcb, registers: GuestRegisters::default(), extended }
    }

    /// RIP.
    pub fn rip(&self) -> u64 {
        self.vmcb.state(offset::RIP)
    }

    /// Steps RIP over `length` bytes.
    pub fn advance(&mut self, length: u64) {
        self.vmcb.set_state(offset::RIP, self.rip() + length);
    }

    /// The four instruction bytes at RIP (CS base included), through the guest's private mappings; zeros if they
    /// cannot be read.
    pub fn instruction(&self, memory: &mut PlatformMemory) -> [u8; 4] {
        let mut bytes = [0u8; 4];
        let linear = self.vmcb.segment(offset::CS).base + self.rip();
        if !memory.memory.read_virtual(self.vmcb, linear, &mut bytes) {
            bytes = [0; 4];
        }
        bytes
    }

    /// One world switch: the guest runs until its next #VMEXIT, its TLB flushed first if the nested tables
    /// changed.
    pub fn run(&mut self, memory: &mut PlatformMemory) {
        self.vmcb.0[control::TLB_CONTROL] = u8::from(memory.flush_tlb);
        memory.flush_tlb = false;
        svm::run(self.vmcb, &mut self.registers, self.extended);
        // VMRUN delivered the event it was given: never inject twice.
        self.vmcb.set(control::EVENTINJ, 0);
    }
}
