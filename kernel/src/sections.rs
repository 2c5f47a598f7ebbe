//! The kernel's own sections and stacks, as the linker script (`linker/ampoule.ld`) placed them.

use core::ops::Range;

unsafe extern "C" {
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __bss_start: u8;
    static __boot_stack_guard: u8;
    static __boot_stack_bottom: u8;
    static __boot_stack_top: u8;
    static __ist_double_fault_guard: u8;
    static __ist_double_fault_bottom: u8;
    static __ist_double_fault_top: u8;
    static __ist_nmi_guard: u8;
    static __ist_nmi_bottom: u8;
    static __ist_nmi_top: u8;
    static __ist_machine_check_guard: u8;
    static __ist_machine_check_bottom: u8;
    static __ist_machine_check_top: u8;
    static __ist_exception_guard: u8;
    static __ist_exception_bottom: u8;
    static __ist_exception_top: u8;
    static __ist_vc_guard: u8;
    static __ist_vc_bottom: u8;
    static __ist_vc_top: u8;
}

/// The address of a linker symbol. Only the address is used; the byte behind it is never read.
macro_rules! addr {
    ($symbol:ident) => {
        (&raw const $symbol) as u64
    };
}

/// Code: mapped read + execute.
pub fn text() -> Range<u64> {
    addr!(__text_start)..addr!(__text_end)
}

/// Read-only data: mapped read-only, no execute.
pub fn rodata() -> Range<u64> {
    addr!(__rodata_start)..addr!(__rodata_end)
}

/// `.data` and `.bss`, up to the first stack's guard page: mapped read + write, no execute.
pub fn data_and_bss() -> Range<u64> {
    addr!(__data_start)..addr!(__boot_stack_guard)
}

/// One stack: `[bottom, top)`, with an unmapped guard page `[guard, bottom)` below it.
#[derive(Clone, Copy, Debug)]
pub struct Stack {
    /// The guard page's address.
    pub guard: u64,
    /// The lowest address of the stack.
    pub bottom: u64,
    /// One past the highest address: the initial stack pointer.
    pub top: u64,
}

/// The stack `main` runs on (set up by `entry64.s`).
pub fn boot_stack() -> Stack {
    Stack { guard: addr!(__boot_stack_guard), bottom: addr!(__boot_stack_bottom), top: addr!(__boot_stack_top) }
}

/// The stacks of the TSS's interrupt stack table, in IST-slot order (see `gdt::IstSlot`).
pub fn exception_stacks() -> [Stack; 5] {
    [
        Stack {
            guard: addr!(__ist_double_fault_guard),
            bottom: addr!(__ist_double_fault_bottom),
            top: addr!(__ist_double_fault_top),
        },
        Stack { guard: addr!(__ist_nmi_guard), bottom: addr!(__ist_nmi_bottom), top: addr!(__ist_nmi_top) },
        Stack {
            guard: addr!(__ist_machine_check_guard),
            bottom: addr!(__ist_machine_check_bottom),
            top: addr!(__ist_machine_check_top),
        },
        Stack {
            guard: addr!(__ist_exception_guard),
            bottom: addr!(__ist_exception_bottom),
            top: addr!(__ist_exception_top),
        },
        Stack { guard: addr!(__ist_vc_guard), bottom: addr!(__ist_vc_bottom), top: addr!(__ist_vc_top) },
    ]
}
