//! The memory map of an Ampoule guest: one table, read by the linker script, the guest and xtask.
//!
//! The image is a flat firmware file that QEMU maps so that it ends at 4 GiB (`-bios`). Its top page holds the
//! 16- and 32-bit boot code, the firmware metadata window and the reset vector; everything below is the load image
//! of the Rust kernel, which the 32-bit stub copies to [`RAM_IMAGE`] (code at 0xFFxx_xxxx cannot reach RAM near
//! 1 MiB RIP-relatively, and the ROM is read-only under plain QEMU).
//!
//! `kernel/build.rs` turns [`LINKER_SYMBOLS`] into `layout.ld`; `linker/ampoule.ld` includes it and asserts every
//! fixed location. Host tests below check the invariants (no overlaps, alignment, sizes).

/// One KiB.
pub const KIB: u64 = 1 << 10;
/// One MiB.
pub const MIB: u64 = 1 << 20;
/// One GiB.
pub const GIB: u64 = 1 << 30;
/// The x86 base page size.
pub const PAGE_SIZE: u64 = 4 * KIB;
/// QEMU refuses `-bios` files whose size is not a multiple of this (hw/i386/x86.c, `x86_bios_rom_init`).
pub const BIOS_SIZE_GRANULE: u64 = 64 * KIB;

/// A named range of guest-physical addresses, `[base, base + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// The name used in the linker script (`<NAME>_BASE`, `<NAME>_SIZE`, `<NAME>_END`) and in messages.
    pub name: &'static str,
    /// The first address.
    pub base: u64,
    /// The length in bytes.
    pub size: u64,
}

impl Region {
    /// One past the last address.
    pub const fn end(&self) -> u64 {
        self.base + self.size
    }

    /// Whether `addr` lies in the region.
    pub const fn contains(&self, addr: u64) -> bool {
        self.base <= addr && addr < self.end()
    }

    /// Whether the two regions share at least one address.
    pub const fn overlaps(&self, other: &Region) -> bool {
        self.base < other.end() && other.base < self.end()
    }
}

/// The image ends at the 4 GiB boundary, where the CPU's reset vector points.
pub const IMAGE_END: u64 = 4 * GIB;

/// The whole firmware image as QEMU maps it: `IMAGE_END - IMAGE.size .. IMAGE_END`.
pub const IMAGE: Region = Region { name: "IMAGE", base: IMAGE_END - 4 * MIB, size: 4 * MIB };

/// The top page: 16- and 32-bit boot code and its GDT, the metadata window and the reset vector. Real-mode code
/// must sit in the top 64 KiB, where CS:IP points after reset.
pub const RESET_PAGE: Region = Region { name: "RESET_PAGE", base: IMAGE_END - PAGE_SIZE, size: PAGE_SIZE };

/// The reset vector: the CPU's first instruction fetch is at 4 GiB - 16 (Intel SDM vol. 3A §9.1.4).
pub const RESET_VECTOR: Region = Region { name: "RESET_VECTOR", base: IMAGE_END - 16, size: 16 };

/// Reserved for the OVMF-compatible metadata that VMMs and measurement tools read: the footer GUID table, which
/// must end at 4 GiB - 0x20, and the SEV and TDX metadata it points to. Filled by the measurement work; nothing else
/// may be placed here.
pub const METADATA: Region = Region { name: "METADATA", base: IMAGE_END - 0x20 - 0x600, size: 0x600 };

/// Between the metadata window and the reset vector: the AP entry (where OVMF keeps its own). Under SEV-ES/SNP the
/// VMM starts every AP here (the SEV-ES reset block in the metadata points to it) in real mode; Ampoule parks them.
pub const AP_ENTRY: Region = Region { name: "AP_ENTRY", base: IMAGE_END - 0x20, size: 0x10 };

/// The part of the image that holds the Rust kernel's load image (text, rodata, data), copied to [`RAM_IMAGE`].
/// The image is code only: the sealed model is a deploy artifact the host hands over at run time (DESIGN.md §11),
/// so the measurement changes with the code alone.
pub const PAYLOAD: Region = Region { name: "PAYLOAD", base: IMAGE.base, size: RESET_PAGE.base - IMAGE.base };

/// Where the kernel runs: linked here, copied from [`PAYLOAD`] by the 32-bit stub, `.bss` after it.
pub const RAM_IMAGE: Region = Region { name: "RAM_IMAGE", base: MIB, size: 7 * MIB };

/// Early scratch RAM for the assembly stub: the boot page tables and the boot-info block below.
pub const BOOT_SCRATCH: Region = Region { name: "BOOT_SCRATCH", base: 8 * MIB, size: 64 * KIB };

/// The SNP secrets page (SEV metadata section SNP_SECRETS): filled by the PSP at launch. Exactly 4 KiB (DESIGN §9).
pub const SNP_SECRETS: Region = Region { name: "SNP_SECRETS", base: 8 * MIB + 64 * KIB, size: PAGE_SIZE };

/// The SNP CPUID page (SEV metadata section CPUID): the VMM fills it, the PSP checks it. Exactly 4 KiB.
pub const SNP_CPUID: Region = Region { name: "SNP_CPUID", base: SNP_SECRETS.end(), size: PAGE_SIZE };

/// The TD HOB (TDVF section TD_HOB): QEMU writes the hand-off block list describing RAM here. Untrusted input.
pub const TD_HOB: Region = Region { name: "TD_HOB", base: SNP_CPUID.end(), size: 2 * PAGE_SIZE };

/// Pages shared with the VMM: the GHCB, the SNP guest-message pages, the virtio rings and buffers and the fw_cfg
/// DMA window. Outside
/// every pre-validated range, so under SNP they are never validated: the kernel changes them to shared and maps
/// them without the C-bit before first use (DESIGN.md §4: data is copied out of them before it is decoded).
pub const SHARED: Region = Region { name: "SHARED", base: 9 * MIB, size: 256 * KIB };

/// The most the heap (`linked_list_allocator`) may span: from 16 MiB to the end of [`GUEST_RAM_SIZE`]. How much
/// of it a boot uses is what the platform's memory map declares (`memory_map::heap`).
pub const HEAP: Region = Region { name: "HEAP", base: 16 * MIB, size: GUEST_RAM_SIZE - 16 * MIB };

/// Where the kernel places device BARs (no firmware assigns them): inside q35's 32-bit PCI hole, above guest RAM
/// and below the image, the IOAPIC and the LAPIC.
pub const PCI_MMIO: Region = Region { name: "PCI_MMIO", base: 0xc000_0000, size: 16 * MIB };

/// The guest RAM that run-qemu gives the guest (`-m`); every RAM region above lies below it.
pub const GUEST_RAM_SIZE: u64 = 256 * MIB;

/// Offsets inside [`BOOT_SCRATCH`]: the boot page tables identity-map the low 4 GiB with 2 MiB pages
/// (one PML4, one PDPT, four page directories), and the boot-info block carries values from the stub to Rust.
pub mod boot_scratch {
    use super::PAGE_SIZE;

    /// The boot PML4.
    pub const PML4: u64 = 0;
    /// The boot PDPT.
    pub const PDPT: u64 = PAGE_SIZE;
    /// The first of four consecutive page directories, one per GiB.
    pub const PD: u64 = 2 * PAGE_SIZE;
    /// The number of boot page directories (4 GiB identity map).
    pub const PD_COUNT: u64 = 4;
    /// The boot-info block ([`BootInfo`]): what the stub learnt, for the kernel.
    pub const BOOT_INFO: u64 = PD + PD_COUNT * PAGE_SIZE;
    /// The stub's 32-bit IDT (32 gates of 8 bytes; only #VC is present), in the boot-info page.
    pub const IDT32: u64 = BOOT_INFO + 0x100;

    /// The boot-info block as the stub writes it (offsets are named in `reset32.s` and tested below).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    #[repr(C)]
    pub struct BootInfo {
        /// The TSC read at the reset vector.
        pub reset_tsc: u64,
        /// CPUID leaf 0 EAX: the highest basic leaf.
        pub max_basic_leaf: u32,
        /// CPUID leaf 0x8000_0000 EAX: the highest extended leaf.
        pub max_extended_leaf: u32,
        /// The SEV_STATUS MSR, if CPUID Fn8000_001F offers SEV; else 0.
        pub sev_status: u64,
        /// The C-bit position the stub set in the boot page tables (SNP only; from the CPUID page); else 0.
        pub c_bit: u32,
        /// Reserved (zero).
        pub reserved: u32,
    }
    /// Bytes of the scratch area used by tables and boot info; the stub's temporary stack grows down from the end.
    pub const USED: u64 = BOOT_INFO + PAGE_SIZE;
}

/// Every region with a fixed address, in address order: the input of the invariant tests and of `layout.ld`.
pub const REGIONS: [Region; 14] = [
    RAM_IMAGE,
    BOOT_SCRATCH,
    SNP_SECRETS,
    SNP_CPUID,
    TD_HOB,
    SHARED,
    HEAP,
    PCI_MMIO,
    IMAGE,
    PAYLOAD,
    RESET_PAGE,
    METADATA,
    AP_ENTRY,
    RESET_VECTOR,
];

/// The boot stack, on which the kernel's `main` runs.
pub const BOOT_STACK_SIZE: u64 = 512 * KIB;
/// Each exception stack (one per IST slot).
pub const EXCEPTION_STACK_SIZE: u64 = 32 * KIB;

/// COM1, the serial console (one record a line, DESIGN.md §4).
pub const SERIAL_PORT: u16 = 0x3f8;

/// Extra absolute symbols for the linker script and the boot stub, beyond the `REGIONS` triples.
pub const LINKER_SYMBOLS: [(&str, u64); 13] = [
    ("BOOT_PML4", BOOT_SCRATCH.base + boot_scratch::PML4),
    ("BOOT_PDPT", BOOT_SCRATCH.base + boot_scratch::PDPT),
    ("BOOT_PD", BOOT_SCRATCH.base + boot_scratch::PD),
    ("BOOT_PD_ENTRIES", boot_scratch::PD_COUNT * 512),
    ("BOOT_INFO", BOOT_SCRATCH.base + boot_scratch::BOOT_INFO),
    ("BOOT_IDT32", BOOT_SCRATCH.base + boot_scratch::IDT32),
    ("BOOT_SCRATCH_USED_DWORDS", boot_scratch::USED / 4),
    ("BOOT_SCRATCH_STACK_TOP", BOOT_SCRATCH.end()),
    ("BOOT_STACK_SIZE", BOOT_STACK_SIZE),
    ("EXCEPTION_STACK_SIZE", EXCEPTION_STACK_SIZE),
    ("SERIAL_PORT", SERIAL_PORT as u64),
    ("DEBUG_EXIT_PORT", crate::exit::DEBUG_EXIT_PORT as u64),
    ("EXIT_CPU_UNSUPPORTED", crate::exit::ExitCode::CpuUnsupported as u64),
];

/// Writes the linker-script fragment (`NAME_BASE = 0x...;` for every region and symbol) into `out`.
pub fn write_linker_symbols(out: &mut impl core::fmt::Write) -> core::fmt::Result {
    writeln!(out, "/* Generated from ovmf::layout by kernel/build.rs. Do not edit. */")?;
    for r in REGIONS {
        writeln!(out, "{n}_BASE = {:#x};\n{n}_SIZE = {:#x};\n{n}_END = {:#x};", r.base, r.size, r.end(), n = r.name)?;
    }
    for (name, value) in LINKER_SYMBOLS {
        writeln!(out, "{name} = {value:#x};")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
