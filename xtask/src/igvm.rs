//! The image as an IGVM file (`cargo xtask build --igvm`), for QEMU >= 10.1 (native and SEV-SNP) and other IGVM
//! loaders (OpenVMM also loads TDX). One file, three platforms (compatibility masks):
//!
//! - SNP and native: the image's pages at 4 GiB - its size (all-zero pages carry no data: a loader zero-fills them).
//! - SNP: each SEV metadata section (pre-validated RAM as data-less pages, the SECRETS and CPUID pages), the guest
//!   policy, and the BSP's VMSA (the same reset state as the `-bios` launch) at the GPA KVM measures VMSAs at. An
//!   IGVM launch measures a data-less page as a NORMAL page of zeros where the `-bios` launch uses the ZERO page
//!   type (QEMU `backends/igvm.c` maps it to CGS_PAGE_TYPE_ZERO, which `target/i386/sev.c` launches as normal
//!   data), so its digest differs from the `-bios` one: `measure --igvm` reports it. The file describes one vCPU.
//! - TDX: the TDVF sections in metadata order, exactly as QEMU launches them from `-bios`: BFV pages measured,
//!   TEMP_MEM and TD_HOB pages added unmeasured. Its MRTD equals the `-bios` MRTD.
//! - native: no VP context: the CPU starts from its reset state at the reset vector, as with `-bios`.

use anyhow::{Context, Result, anyhow};
use igvm::snp_defs::SevVmsa;
use igvm::{IgvmDirectiveHeader, IgvmFile, IgvmInitializationHeader, IgvmPlatformHeader, IgvmRevision};
use igvm_defs::{IGVM_VHS_SUPPORTED_PLATFORM, IgvmPageDataFlags, IgvmPageDataType, IgvmPlatformType};
use ovmf::layout::PAGE_SIZE;
use ovmf::metadata::{Metadata, SevSectionType, TDVF_ATTRIBUTE_MR_EXTEND};
use zerocopy::FromBytes;

use crate::measure::SnpLaunch;
use crate::measure::snp::{RESET_VECTOR, VMSA_GPA};
use crate::measure::vmsa::vmsa_page;
use crate::qemu::SNP_POLICY;

/// Compatibility masks: one bit a platform.
pub const SNP_MASK: u32 = 1 << 0;
/// See [`SNP_MASK`].
pub const NATIVE_MASK: u32 = 1 << 1;
/// See [`SNP_MASK`].
pub const TDX_MASK: u32 = 1 << 2;

fn platform(mask: u32, platform_type: IgvmPlatformType) -> IgvmPlatformHeader {
    IgvmPlatformHeader::SupportedPlatform(IGVM_VHS_SUPPORTED_PLATFORM {
        compatibility_mask: mask,
        highest_vtl: 0,
        platform_type,
        platform_version: 1,
        // 0: the guest manages shared memory itself (C-bit / shared bit), as it does when launched from -bios.
        shared_gpa_boundary: 0,
    })
}

fn page(gpa: u64, mask: u32, data_type: IgvmPageDataType, unmeasured: bool, data: &[u8]) -> IgvmDirectiveHeader {
    // All-zero pages carry no data; every loader and calculator treats that as a page of zeros.
    let data = if data.iter().all(|&b| b == 0) { Vec::new() } else { data.to_vec() };
    IgvmDirectiveHeader::PageData {
        gpa,
        compatibility_mask: mask,
        flags: IgvmPageDataFlags::new().with_unmeasured(unmeasured),
        data_type,
        data,
    }
}

/// Renders `image` (with its parsed `metadata`) as an IGVM file whose SNP VMSA carries `launch`'s vCPU type and
/// guest features. `launch.vcpus` must be 1.
pub fn render(image: &[u8], metadata: &Metadata, launch: &SnpLaunch) -> Result<IgvmFile> {
    anyhow::ensure!(launch.vcpus == 1, "the IGVM rendering describes one vCPU");
    let page_size = PAGE_SIZE as usize;
    let mut directives = Vec::new();
    for (i, bytes) in image.chunks(page_size).enumerate() {
        let gpa = metadata.image_base + (i * page_size) as u64;
        directives.push(page(gpa, SNP_MASK | NATIVE_MASK, IgvmPageDataType::NORMAL, false, bytes));
    }
    for section in metadata.sev_sections.as_slice() {
        let data_type = match section.kind {
            SevSectionType::SnpSecMem => IgvmPageDataType::NORMAL,
            SevSectionType::SnpSecrets => IgvmPageDataType::SECRETS,
            SevSectionType::Cpuid => IgvmPageDataType::CPUID_DATA,
            other => return Err(anyhow!("SEV section type {other:?} has no IGVM rendering")),
        };
        for offset in (0..u64::from(section.size)).step_by(page_size) {
            directives.push(page(u64::from(section.gpa) + offset, SNP_MASK, data_type, false, &[]));
        }
    }
    for section in metadata.tdvf_sections.as_slice() {
        let measured = section.attributes & TDVF_ATTRIBUTE_MR_EXTEND != 0;
        for offset in (0..section.memory_data_size).step_by(page_size) {
            let gpa = section.memory_address + offset;
            let bytes = if measured {
                let start = section.data_offset as usize + offset as usize;
                image.get(start..start + page_size).context("TDVF section data beyond the image")?
            } else {
                &[][..]
            };
            directives.push(page(gpa, TDX_MASK, IgvmPageDataType::NORMAL, !measured, bytes));
        }
    }
    let vmsa_bytes = vmsa_page(RESET_VECTOR, launch.vcpu_type.signature(), launch.guest_features);
    let vmsa = SevVmsa::read_from_prefix(&vmsa_bytes).map_err(|_| anyhow!("VMSA page smaller than SevVmsa"))?.0;
    directives.push(IgvmDirectiveHeader::SnpVpContext {
        gpa: VMSA_GPA,
        compatibility_mask: SNP_MASK,
        vp_index: 0,
        vmsa: Box::new(vmsa),
    });
    let platforms = vec![
        platform(SNP_MASK, IgvmPlatformType::SEV_SNP),
        platform(NATIVE_MASK, IgvmPlatformType::NATIVE),
        platform(TDX_MASK, IgvmPlatformType::TDX),
    ];
    let initialization =
        vec![IgvmInitializationHeader::GuestPolicy { policy: SNP_POLICY, compatibility_mask: SNP_MASK }];
    IgvmFile::new(IgvmRevision::V1, platforms, initialization, directives).map_err(|e| anyhow!("building IGVM: {e}"))
}

/// The serialized file.
pub fn to_bytes(file: &IgvmFile) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    file.serialize(&mut out).map_err(|e| anyhow!("serializing IGVM: {e}"))?;
    Ok(out)
}
