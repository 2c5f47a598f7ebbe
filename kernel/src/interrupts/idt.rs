//! The IDT: 32 interrupt gates, one per exception vector, each entered through its stub in `entry.s` and each on
//! an IST stack (Intel SDM vol. 3A, 6.14.1). Vectors above 31 are beyond the limit: interrupts stay disabled, and a
//! stray one raises #GP, which is reported like any fault.

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;

use crate::gdt::{self, IstSlot};

/// The number of exception vectors.
pub const EXCEPTION_VECTORS: usize = 32;

/// Vector numbers with their own IST stack (Intel SDM vol. 3A, table 6-1).
const NMI: usize = 2;
const DOUBLE_FAULT: usize = 8;
const MACHINE_CHECK: usize = 18;
/// #VE (Intel SDM vol. 3A, 6.15; raised inside a TD).
pub const VIRTUALIZATION_EXCEPTION: usize = 20;
/// #VC (AMD64 APM vol. 2, 8.2.21).
pub const VMM_COMMUNICATION: usize = 29;

/// A 64-bit interrupt gate (Intel SDM vol. 3A, figure 6-8).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
struct GateDescriptor {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attributes: u8,
    offset_middle: u16,
    offset_high: u32,
    reserved: u32,
}

/// Present, DPL 0, type 0xE (64-bit interrupt gate: IF is cleared on entry).
const PRESENT_INTERRUPT_GATE: u8 = 0x8E;

impl GateDescriptor {
    fn new(handler: u64, selector: u16, ist: IstSlot) -> Self {
        Self {
            offset_low: handler as u16,
            selector,
            ist: ist as u8,
            type_attributes: PRESENT_INTERRUPT_GATE,
            offset_middle: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([GateDescriptor; EXCEPTION_VECTORS]);

unsafe extern "C" {
    /// The stub addresses, in vector order (entry.s).
    static exception_stub_table: [u64; EXCEPTION_VECTORS];
}

static IDT: Once<Idt> = Once::new();

/// Which IST stack a vector uses.
fn ist_slot(vector: usize) -> IstSlot {
    match vector {
        DOUBLE_FAULT => IstSlot::DoubleFault,
        NMI => IstSlot::Nmi,
        MACHINE_CHECK => IstSlot::MachineCheck,
        // #VC (SNP) and #VE (TDX) never occur on the same platform: they share the slot of the VMM's exceptions.
        VMM_COMMUNICATION | VIRTUALIZATION_EXCEPTION => IstSlot::VmmCommunication,
        _ => IstSlot::Exception,
    }
}

/// Builds and loads the IDT. `gdt::init` must have run.
pub fn init() {
    let idt = IDT.call_once(|| {
        let selector = gdt::code_selector().0;
        // SAFETY: entry.s defines the table as 32 quadwords in .rodata; it is only read.
        let stubs = unsafe { &exception_stub_table };
        Idt(core::array::from_fn(|vector| GateDescriptor::new(stubs[vector], selector, ist_slot(vector))))
    });
    let pointer =
        DescriptorTablePointer { limit: (core::mem::size_of::<Idt>() - 1) as u16, base: VirtAddr::from_ptr(idt) };
    // SAFETY: the table lives in a static for the rest of the run, and every gate points at a stub in entry.s that
    // saves all state before calling Rust.
    unsafe { lidt(&pointer) };
}

/// Loads an IDT with limit 0, so the next exception cannot be delivered and escalates to a triple fault.
/// For the fault-injection image only.
#[cfg(feature = "fault-injection")]
pub fn load_broken() {
    let pointer = DescriptorTablePointer { limit: 0, base: VirtAddr::zero() };
    // SAFETY: deliberately unusable; the caller raises an exception right after, and the run ends in a reset.
    unsafe { lidt(&pointer) };
}

const _: () = assert!(core::mem::size_of::<GateDescriptor>() == 16);
