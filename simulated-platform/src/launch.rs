//! The launch digest as the SNP firmware computes it: every SNP_LAUNCH_UPDATE folds one PAGE_INFO structure into
//! the running digest (SEV-SNP Firmware ABI specification, 8.17 "SNP_LAUNCH_UPDATE", table "PAGE_INFO"), and
//! LAUNCH_FINISH reports the last one as MEASUREMENT.
//!
//! Written apart from `xtask measure` on purpose: the hypervisor launches page by page with this code, and the
//! two digests are compared.

use ovmf::metadata::{Metadata, SevSectionType};
use sha2::{Digest, Sha384};

use crate::vmsa::{self, VcpuConfig};

/// A SHA-384 value.
pub type Sha384Digest = [u8; 48];

/// PAGE_TYPE (Firmware ABI, table "Page Types").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PageType {
    /// PAGE_TYPE_NORMAL: measured contents.
    Normal = 0x01,
    /// PAGE_TYPE_VMSA: a vCPU's initial state, measured.
    Vmsa = 0x02,
    /// PAGE_TYPE_ZERO: zeroed by the firmware; contents not measured.
    Zero = 0x03,
    /// PAGE_TYPE_UNMEASURED.
    Unmeasured = 0x04,
    /// PAGE_TYPE_SECRETS: filled by the firmware.
    Secrets = 0x05,
    /// PAGE_TYPE_CPUID: filled by the hypervisor, checked by the firmware.
    Cpuid = 0x06,
}

/// The guest-physical address the firmware records for VMSA pages (Firmware ABI, SNP_LAUNCH_UPDATE: "the GPA of
/// a VMSA page is ... 0xFFFF_FFFF_F000").
pub const VMSA_PAGE_INFO_GPA: u64 = 0xffff_ffff_f000;

/// PAGE_INFO, the 0x70 bytes hashed per page.
#[derive(Clone, Copy, Debug)]
pub struct PageInfo {
    /// DIGEST_CUR: the digest so far.
    pub digest_cur: Sha384Digest,
    /// CONTENTS: SHA-384 of the page for NORMAL and VMSA pages, zero otherwise.
    pub contents: Sha384Digest,
    /// PAGE_TYPE.
    pub page_type: PageType,
    /// GPA.
    pub gpa: u64,
}

impl PageInfo {
    /// LENGTH: the structure's own size.
    pub const LEN: usize = 0x70;

    /// The structure's bytes: DIGEST_CUR (0x00), CONTENTS (0x30), LENGTH u16 (0x60), PAGE_TYPE (0x62), IMI_PAGE
    /// (0x63), VMPL3/2/1_PERMS (0x64..0x67), reserved (0x67), GPA u64 (0x68). IMI_PAGE and the permissions are zero
    /// for pages the hypervisor launches.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut bytes = [0u8; Self::LEN];
        bytes[0x00..0x30].copy_from_slice(&self.digest_cur);
        bytes[0x30..0x60].copy_from_slice(&self.contents);
        bytes[0x60..0x62].copy_from_slice(&(Self::LEN as u16).to_le_bytes());
        bytes[0x62] = self.page_type as u8;
        bytes[0x68..0x70].copy_from_slice(&self.gpa.to_le_bytes());
        bytes
    }
}

/// The running launch digest (LAUNCH_START sets it to zero).
#[derive(Clone, Copy, Debug)]
pub struct LaunchDigest {
    current: Sha384Digest,
    pages: u32,
}

impl Default for LaunchDigest {
    fn default() -> Self {
        LaunchDigest { current: [0; 48], pages: 0 }
    }
}

impl LaunchDigest {
    /// One SNP_LAUNCH_UPDATE of a 4 KiB page. `bytes` is the page for NORMAL and VMSA pages and ignored for the
    /// types whose contents the firmware does not measure.
    pub fn update(&mut self, page_type: PageType, gpa: u64, bytes: &[u8]) {
        let contents = match page_type {
            PageType::Normal | PageType::Vmsa => Sha384::digest(bytes).into(),
            PageType::Zero | PageType::Unmeasured | PageType::Secrets | PageType::Cpuid => [0; 48],
        };
        let info = PageInfo { digest_cur: self.current, contents, page_type, gpa };
        self.current = Sha384::digest(info.to_bytes()).into();
        self.pages += 1;
    }

    /// MEASUREMENT, as LAUNCH_FINISH reports it.
    pub fn measurement(&self) -> Sha384Digest {
        self.current
    }

    /// How many pages were launched.
    pub fn pages(&self) -> u32 {
        self.pages
    }
}

/// One page the launch hands to the firmware, in launch order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchPage {
    /// Its guest-physical address (the private one: the firmware knows no C-bit).
    pub gpa: u64,
    /// How the firmware treats it.
    pub page_type: PageType,
}

const PAGE: u64 = 4096;

/// The pages of the image's SEV metadata sections, in metadata order, as QEMU hands them to the firmware:
/// SNP_SEC_MEM as ZERO pages, the SECRETS and CPUID sections as one page each. `None` for a section type this
/// platform does not launch (an SVSM calling area, kernel hashes); `ovmf::metadata::parse` refuses those already.
pub fn section_pages(metadata: &Metadata) -> Option<impl Iterator<Item = LaunchPage> + '_> {
    let known = metadata
        .sev_sections
        .as_slice()
        .iter()
        .all(|s| matches!(s.kind, SevSectionType::SnpSecMem | SevSectionType::SnpSecrets | SevSectionType::Cpuid));
    known.then(|| {
        metadata.sev_sections.as_slice().iter().flat_map(|section| {
            let (page_type, size) = match section.kind {
                SevSectionType::SnpSecMem => (PageType::Zero, u64::from(section.size)),
                SevSectionType::SnpSecrets => (PageType::Secrets, PAGE),
                _ => (PageType::Cpuid, PAGE),
            };
            let base = u64::from(section.gpa);
            (0..size.div_ceil(PAGE)).map(move |i| LaunchPage { gpa: base + i * PAGE, page_type })
        })
    })
}

/// The measurement of a one-vCPU launch of `image` (placed to end at 4 GiB), computed the way the hypervisor
/// launches it: image pages, metadata sections, the boot vCPU's VMSA.
pub fn measure(image: &[u8], metadata: &Metadata, vcpu: VcpuConfig) -> Option<Sha384Digest> {
    let mut digest = LaunchDigest::default();
    for (i, page) in image.chunks(PAGE as usize).enumerate() {
        digest.update(PageType::Normal, metadata.image_base + i as u64 * PAGE, page);
    }
    for page in section_pages(metadata)? {
        digest.update(page.page_type, page.gpa, &[]);
    }
    digest.update(PageType::Vmsa, VMSA_PAGE_INFO_GPA, &vmsa::boot_vcpu(vcpu));
    Some(digest.measurement())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_info_places_every_field_at_its_offset() {
        let info = PageInfo { digest_cur: [1; 48], contents: [2; 48], page_type: PageType::Cpuid, gpa: 0x8_1000 };
        let bytes = info.to_bytes();
        assert_eq!(&bytes[..48], &[1; 48]);
        assert_eq!(&bytes[48..96], &[2; 48]);
        assert_eq!(bytes[0x60..0x62], [0x70, 0]);
        assert_eq!(bytes[0x62], 6);
        assert_eq!(&bytes[0x63..0x68], &[0; 5]);
        assert_eq!(bytes[0x68..], 0x8_1000u64.to_le_bytes());
    }

    #[test]
    fn unmeasured_types_ignore_contents_and_measured_ones_do_not() {
        let mut zero_a = LaunchDigest::default();
        let mut zero_b = LaunchDigest::default();
        zero_a.update(PageType::Zero, 0x1000, &[0; 4096]);
        zero_b.update(PageType::Zero, 0x1000, &[7; 4096]);
        assert_eq!(zero_a.measurement(), zero_b.measurement());
        let mut normal_a = LaunchDigest::default();
        let mut normal_b = LaunchDigest::default();
        normal_a.update(PageType::Normal, 0x1000, &[0; 4096]);
        normal_b.update(PageType::Normal, 0x1000, &[7; 4096]);
        assert_ne!(normal_a.measurement(), normal_b.measurement());
        assert_ne!(zero_a.measurement(), normal_a.measurement(), "the page type enters the digest");
    }

    #[test]
    fn the_digest_chains_and_depends_on_order_and_address() {
        let mut ab = LaunchDigest::default();
        ab.update(PageType::Zero, 0x1000, &[]);
        ab.update(PageType::Zero, 0x2000, &[]);
        let mut ba = LaunchDigest::default();
        ba.update(PageType::Zero, 0x2000, &[]);
        ba.update(PageType::Zero, 0x1000, &[]);
        assert_ne!(ab.measurement(), ba.measurement());
        assert_eq!(ab.pages(), 2);
        // The first step hashes PAGE_INFO with a zero DIGEST_CUR.
        let mut one = LaunchDigest::default();
        one.update(PageType::Secrets, 0x3000, &[]);
        let info = PageInfo { digest_cur: [0; 48], contents: [0; 48], page_type: PageType::Secrets, gpa: 0x3000 };
        assert_eq!(one.measurement(), <[u8; 48]>::from(Sha384::digest(info.to_bytes())));
    }
}
