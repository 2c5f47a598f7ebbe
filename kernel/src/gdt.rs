//! The kernel's GDT and TSS, in RAM: a 64-bit code segment, a data segment, and the TSS whose interrupt stack
//! table gives every exception a known-good stack (Intel SDM vol. 3A, 7.7 and 6.14.5).

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

use crate::sections;

/// The IST slots, as numbered in IDT gates (1-based; 0 means "no IST").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum IstSlot {
    /// #DF: may follow any fault, including a stack fault on the exception stack.
    DoubleFault = 1,
    /// NMI: can arrive anywhere, also inside another handler.
    Nmi = 2,
    /// #MC: can arrive anywhere.
    MachineCheck = 3,
    /// Every other exception.
    Exception = 4,
    /// #VC (SEV-SNP): raised by port I/O and CPUID, so also inside the handlers of other exceptions, which would
    /// otherwise have their frame overwritten by it (DESIGN.md §9). The #VC handler itself raises none.
    VmmCommunication = 5,
}

struct Gdt {
    table: GlobalDescriptorTable,
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

static TSS: Once<TaskStateSegment> = Once::new();
static GDT: Once<Gdt> = Once::new();

/// Builds and loads the GDT and TSS, and reloads every segment register.
pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        let slots =
            [IstSlot::DoubleFault, IstSlot::Nmi, IstSlot::MachineCheck, IstSlot::Exception, IstSlot::VmmCommunication];
        for (slot, stack) in slots.into_iter().zip(sections::exception_stacks()) {
            tss.interrupt_stack_table[usize::from(slot as u8 - 1)] = VirtAddr::new(stack.top);
        }
        tss
    });
    let gdt = GDT.call_once(|| {
        let mut table = GlobalDescriptorTable::new();
        let code = table.append(Descriptor::kernel_code_segment());
        let data = table.append(Descriptor::kernel_data_segment());
        let tss = table.append(Descriptor::tss_segment(tss));
        Gdt { table, code, data, tss }
    });
    gdt.table.load();
    // SAFETY: the selectors index the GDT just loaded, which lives in a static for the rest of the run.
    unsafe { CS::set_reg(gdt.code) };
    // SAFETY: as above; a flat data segment.
    unsafe { SS::set_reg(gdt.data) };
    // SAFETY: as above.
    unsafe { DS::set_reg(gdt.data) };
    // SAFETY: as above.
    unsafe { ES::set_reg(gdt.data) };
    // SAFETY: the selector indexes a valid, not-yet-busy TSS descriptor in the loaded GDT.
    unsafe { load_tss(gdt.tss) };
}

/// The kernel code selector, for IDT gates.
pub fn code_selector() -> SegmentSelector {
    GDT.get().expect("gdt::init runs before the IDT is built").code
}
