//! The SEV-SNP launch digest of an image launched from `-bios` by QEMU + KVM, computed as the PSP does it: each
//! SNP_LAUNCH_UPDATE extends the digest with one PAGE_INFO structure (SEV-SNP Firmware ABI specification, 8.17.2,
//! table "PAGE_INFO"), in launch order:
//!
//! 1. the image, as NORMAL pages at 4 GiB - its size;
//! 2. the SEV metadata sections, in metadata order: SNP_SEC_MEM as ZERO pages, the SECRETS page, the CPUID page;
//! 3. one VMSA per vCPU: the BSP at the reset vector, then each AP at the SEV-ES reset block's address.

use ovmf::layout::PAGE_SIZE;
use ovmf::metadata::{Metadata, SevSectionType};
use sha2::{Digest, Sha384};

use super::vcpu::VcpuType;
use super::vmsa::vmsa_page;

/// A SHA-384 digest.
pub type Digest384 = [u8; 48];

/// PAGE_TYPE values (SEV-SNP Firmware ABI, table "Page Types").
#[repr(u8)]
#[derive(Clone, Copy)]
pub(crate) enum PageType {
    Normal = 0x1,
    Vmsa = 0x2,
    Zero = 0x3,
    Unmeasured = 0x4,
    Secrets = 0x5,
    Cpuid = 0x6,
}

/// PAGE_INFO is 0x70 bytes: DIGEST_CUR[48], CONTENTS[48], LENGTH u16, PAGE_TYPE u8, IMI_PAGE u8, VMPL3_PERMS u8,
/// VMPL2_PERMS u8, VMPL1_PERMS u8, reserved u8, GPA u64.
const PAGE_INFO_LEN: usize = 0x70;
/// The GPA the firmware uses for VMSA pages in PAGE_INFO.
pub const VMSA_GPA: u64 = 0xffff_ffff_f000;
/// The BSP's first instruction.
pub const RESET_VECTOR: u32 = 0xffff_fff0;

/// The digest being extended, LAUNCH_UPDATE by LAUNCH_UPDATE.
pub(crate) struct LaunchDigest(pub(crate) Digest384);

impl LaunchDigest {
    pub(crate) fn update(&mut self, page_type: PageType, gpa: u64, contents: &Digest384) {
        let mut info = [0u8; PAGE_INFO_LEN];
        info[..48].copy_from_slice(&self.0);
        info[48..96].copy_from_slice(contents);
        info[96..98].copy_from_slice(&(PAGE_INFO_LEN as u16).to_le_bytes());
        info[98] = page_type as u8;
        // IMI_PAGE and the VMPL1-3 permissions are 0 for a launch by the hypervisor.
        info[104..112].copy_from_slice(&gpa.to_le_bytes());
        self.0 = Sha384::digest(info).into();
    }

    pub(crate) fn normal_pages(&mut self, gpa: u64, bytes: &[u8]) {
        for (i, page) in bytes.chunks(PAGE_SIZE as usize).enumerate() {
            self.update(PageType::Normal, gpa + i as u64 * PAGE_SIZE, &Sha384::digest(page).into());
        }
    }

    /// ZERO, SECRETS and CPUID pages are measured with zero contents (the firmware fills or checks them).
    pub(crate) fn contentless_pages(&mut self, page_type: PageType, gpa: u64, size: u64) {
        for offset in (0..size).step_by(PAGE_SIZE as usize) {
            self.update(page_type, gpa + offset, &[0; 48]);
        }
    }
}

/// What the VMM configures that enters the digest besides the image.
#[derive(Clone, Copy, Debug)]
pub struct SnpLaunch {
    /// vCPUs: one VMSA each.
    pub vcpus: u32,
    /// The vCPU model: its CPUID signature is in each VMSA.
    pub vcpu_type: VcpuType,
    /// SEV_FEATURES of each VMSA (QEMU >= 9.1 on host kernels >= 6.10: 0x1, SNPActive).
    pub guest_features: u64,
}

/// How many 4 KiB pages a launch hands to the PSP with SNP_LAUNCH_UPDATE, by kind (each costs PSP time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchPages {
    /// NORMAL pages: the image, its contents hashed into the digest.
    pub normal: u64,
    /// ZERO pages (SNP_SEC_MEM): validated and measured without contents.
    pub zero: u64,
    /// The SECRETS and CPUID pages.
    pub secrets_and_cpuid: u64,
    /// VMSA pages, one per vCPU.
    pub vmsa: u64,
}

/// The pages [`launch_digest`] measures, counted the same way.
pub fn launch_pages(image: &[u8], metadata: &Metadata, launch: &SnpLaunch) -> LaunchPages {
    let mut pages = LaunchPages {
        normal: image.len().div_ceil(PAGE_SIZE as usize) as u64,
        zero: 0,
        secrets_and_cpuid: 0,
        vmsa: u64::from(launch.vcpus),
    };
    for section in metadata.sev_sections.as_slice() {
        match section.kind {
            SevSectionType::SnpSecMem => pages.zero += u64::from(section.size).div_ceil(PAGE_SIZE),
            SevSectionType::SnpSecrets | SevSectionType::Cpuid => pages.secrets_and_cpuid += 1,
            // ovmf::metadata::parse refuses the types Ampoule does not launch with.
            SevSectionType::SvsmCaa | SevSectionType::SnpKernelHashes => {}
        }
    }
    pages
}

/// The launch digest (MEASUREMENT in the attestation report) of `image` with its parsed `metadata`.
pub fn launch_digest(image: &[u8], metadata: &Metadata, launch: &SnpLaunch) -> Digest384 {
    let mut digest = LaunchDigest([0; 48]);
    digest.normal_pages(metadata.image_base, image);
    for section in metadata.sev_sections.as_slice() {
        let (gpa, size) = (u64::from(section.gpa), u64::from(section.size));
        match section.kind {
            SevSectionType::SnpSecMem => digest.contentless_pages(PageType::Zero, gpa, size),
            // Measured as one page whatever the declared size (the parser only accepts exactly one page).
            SevSectionType::SnpSecrets => digest.contentless_pages(PageType::Secrets, gpa, PAGE_SIZE),
            SevSectionType::Cpuid => digest.contentless_pages(PageType::Cpuid, gpa, PAGE_SIZE),
            SevSectionType::SvsmCaa | SevSectionType::SnpKernelHashes => {
                unreachable!("ovmf::metadata::parse refuses section types Ampoule does not launch with")
            }
        }
    }
    let signature = launch.vcpu_type.signature();
    for vcpu in 0..launch.vcpus {
        let eip = if vcpu == 0 { RESET_VECTOR } else { metadata.sev_es_ap_entry };
        let vmsa = vmsa_page(eip, signature, launch.guest_features);
        digest.update(PageType::Vmsa, VMSA_GPA, &Sha384::digest(vmsa).into());
    }
    digest.0
}
