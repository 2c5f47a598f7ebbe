//! The OVMF-compatible metadata that VMMs and measurement tools read from the top of the image (DESIGN.md §9):
//!
//! - the **footer GUID table**, ending at 4 GiB - 0x20: entries `[data][u16 length][GUID]` read backwards from a
//!   footer entry (OVMF `ResetVector/Ia16/ResetVectorVtf0.asm`; QEMU `hw/i386/pc_sysfw_ovmf.c`);
//! - the **SEV-ES reset block**: the real-mode address where the VMM starts APs under SEV-ES/SNP;
//! - the **SEV metadata** ("ASEV"): the memory the VMM pre-validates (SNP_SEC_MEM, zero pages), the SNP secrets
//!   page and the CPUID page (QEMU `target/i386/sev.c`; sev-snp-measure `ovmf.py`);
//! - the **TDX metadata** ("TDVF" descriptor, Intel TDVF Design Guide §11): the image (BFV, added and extended
//!   into MRTD), temporary memory (added, not extended) and the TD HOB that QEMU requires.
//!
//! [`AMPOULE_SEV_SECTIONS`] and [`AMPOULE_TDVF_SECTIONS`] say what Ampoule declares, from `crate::layout`;
//! [`encode`] lays them out as bytes at compile time (the image carries exactly those bytes in its `.metadata`
//! section); [`parse`] reads them back from an image, strictly, for `cargo xtask measure`.

mod encode;
mod guid;
mod parse;

pub use encode::{ENCODED_LEN, encode};
pub use guid::Guid;
pub use parse::{Metadata, MetadataError, Sections, parse};

use crate::layout::{BOOT_SCRATCH, IMAGE, RAM_IMAGE, SNP_CPUID, SNP_SECRETS, TD_HOB};

/// The footer entry that ends the table (OVMF_TABLE_FOOTER_GUID).
pub const FOOTER_GUID: Guid = Guid::parse("96b582de-1fb2-45f7-baea-a366c55a082d");
/// The SEV-ES reset block: a u32 AP entry address (SEV_ES_RESET_BLOCK_GUID / QEMU's SEV_INFO_BLOCK_GUID).
pub const SEV_ES_RESET_BLOCK_GUID: Guid = Guid::parse("00f771de-1a7e-4fcb-890e-68c77e2fb44e");
/// A u32 offset from the end of the image to the SEV metadata header (OVMF_SEV_META_DATA_GUID).
pub const SEV_METADATA_OFFSET_GUID: Guid = Guid::parse("dc886566-984a-4798-a75e-5585a7bf67cc");
/// A u32 offset from the end of the image to the TDVF descriptor (TDX_METADATA_OFFSET_GUID).
pub const TDX_METADATA_OFFSET_GUID: Guid = Guid::parse("e47a6535-984a-4798-865e-4685a7bf8ec2");
/// The 16 bytes right before the TDVF descriptor (TDVF Design Guide, "TDVF metadata GUID").
pub const TDVF_METADATA_GUID: Guid = Guid::parse("e9eaf9f3-168e-44d5-a8eb-7f4d8738f6ae");

/// "ASEV": the SEV metadata signature.
pub const SEV_METADATA_SIGNATURE: [u8; 4] = *b"ASEV";
/// "TDVF": the TDX metadata signature.
pub const TDVF_SIGNATURE: [u8; 4] = *b"TDVF";
/// The only version of either structure.
pub const METADATA_VERSION: u32 = 1;

/// SEV metadata section types (OVMF `OvmfPkg/ResetVector/ResetVector.nasmb`, sev-snp-measure `SectionType`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SevSectionType {
    /// Memory the VMM pre-validates as zero pages (OVMF_SECTION_TYPE_SNP_SEC_MEM).
    #[default]
    SnpSecMem = 1,
    /// The SNP secrets page.
    SnpSecrets = 2,
    /// The SNP CPUID page.
    Cpuid = 3,
    /// The SVSM calling area (unused by Ampoule; parsed so it can be refused by name).
    SvsmCaa = 4,
    /// Kernel hashes for `-kernel` boots (unused by Ampoule).
    SnpKernelHashes = 0x10,
}

impl SevSectionType {
    /// The type for a raw value.
    pub const fn from_u32(value: u32) -> Option<Self> {
        match value {
            1 => Some(Self::SnpSecMem),
            2 => Some(Self::SnpSecrets),
            3 => Some(Self::Cpuid),
            4 => Some(Self::SvsmCaa),
            0x10 => Some(Self::SnpKernelHashes),
            _ => None,
        }
    }
}

/// One SEV metadata section: `{u32 gpa, u32 size, u32 type}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SevSection {
    /// Guest-physical address.
    pub gpa: u32,
    /// Length in bytes.
    pub size: u32,
    /// What the VMM does with it.
    pub kind: SevSectionType,
}

/// TDVF section types (TDVF Design Guide, table 11-2). QEMU accepts only these four.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TdvfSectionType {
    /// Boot firmware volume: image bytes, usually measured.
    #[default]
    Bfv = 0,
    /// Configuration firmware volume.
    Cfv = 1,
    /// The TD HOB: QEMU writes the memory description here. Required by QEMU.
    TdHob = 2,
    /// Temporary memory: added (its address enters MRTD), not extended.
    TempMem = 3,
}

impl TdvfSectionType {
    /// The type for a raw value.
    pub const fn from_u32(value: u32) -> Option<Self> {
        match value {
            0 => Some(Self::Bfv),
            1 => Some(Self::Cfv),
            2 => Some(Self::TdHob),
            3 => Some(Self::TempMem),
            _ => None,
        }
    }
}

/// TDVF section attribute: extend the section's contents into MRTD (TDH.MR.EXTEND).
pub const TDVF_ATTRIBUTE_MR_EXTEND: u32 = 1 << 0;

/// One TDVF section: `{u32 data_offset, u32 raw_data_size, u64 memory_address, u64 memory_data_size, u32 type,
/// u32 attributes}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TdvfSection {
    /// Offset of the section's bytes in the image file (BFV/CFV).
    pub data_offset: u32,
    /// Bytes taken from the image (0 for TD_HOB and TEMP_MEM).
    pub raw_data_size: u32,
    /// Guest-physical address.
    pub memory_address: u64,
    /// Length in guest memory.
    pub memory_data_size: u64,
    /// The section type.
    pub kind: TdvfSectionType,
    /// [`TDVF_ATTRIBUTE_MR_EXTEND`] or 0.
    pub attributes: u32,
}

const fn sev(base: u64, size: u64, kind: SevSectionType) -> SevSection {
    SevSection { gpa: base as u32, size: size as u32, kind }
}

/// What Ampoule asks an SNP VMM to prepare: the memory the 32-bit stub writes before the guest can validate memory
/// itself (the kernel's RAM copy with .bss and stacks, the boot scratch), the secrets page and the CPUID page.
pub const AMPOULE_SEV_SECTIONS: [SevSection; 4] = [
    sev(RAM_IMAGE.base, RAM_IMAGE.size, SevSectionType::SnpSecMem),
    sev(BOOT_SCRATCH.base, BOOT_SCRATCH.size, SevSectionType::SnpSecMem),
    sev(SNP_SECRETS.base, SNP_SECRETS.size, SevSectionType::SnpSecrets),
    sev(SNP_CPUID.base, SNP_CPUID.size, SevSectionType::Cpuid),
];

const fn temp_mem(base: u64, size: u64) -> TdvfSection {
    TdvfSection {
        data_offset: 0,
        raw_data_size: 0,
        memory_address: base,
        memory_data_size: size,
        kind: TdvfSectionType::TempMem,
        attributes: 0,
    }
}

/// What Ampoule asks a TDX VMM to add: the whole image, measured (QEMU copies MemoryDataSize bytes, so
/// RawDataSize = MemoryDataSize); the same early RAM as under SNP as temporary memory; the TD HOB.
pub const AMPOULE_TDVF_SECTIONS: [TdvfSection; 4] = [
    TdvfSection {
        data_offset: 0,
        raw_data_size: IMAGE.size as u32,
        memory_address: IMAGE.base,
        memory_data_size: IMAGE.size,
        kind: TdvfSectionType::Bfv,
        attributes: TDVF_ATTRIBUTE_MR_EXTEND,
    },
    temp_mem(RAM_IMAGE.base, RAM_IMAGE.size),
    temp_mem(BOOT_SCRATCH.base, BOOT_SCRATCH.size),
    TdvfSection {
        data_offset: 0,
        raw_data_size: 0,
        memory_address: TD_HOB.base,
        memory_data_size: TD_HOB.size,
        kind: TdvfSectionType::TdHob,
        attributes: 0,
    },
];

/// The metadata bytes, as placed in the image's metadata window (guest only).
#[cfg(feature = "boot")]
#[used]
#[unsafe(no_mangle)]
#[unsafe(link_section = ".metadata")]
static AMPOULE_METADATA: [u8; ENCODED_LEN] = encode();

#[cfg(test)]
mod tests;
