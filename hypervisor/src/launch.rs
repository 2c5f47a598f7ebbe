//! The launch, as QEMU + KVM + the PSP perform it for `-bios` (DESIGN.md §9, §10): the image's pages, then the SEV
//! metadata's sections, then the boot vCPU's VMSA, each one SNP_LAUNCH_UPDATE that assigns and validates the page
//! and extends the launch digest (`simulated_platform::launch`). The CPUID page is filled from the CPU the
//! platform runs on and checked as the firmware checks it; the secrets page gets fresh keys.

use core::arch::x86_64::__cpuid_count;

use ovmf::metadata::Metadata;
use ovmf::snp::cpuid_page::CpuidResult;
use simulated_platform::cpuid_page::{self, CpuidFunction, CpuidRefusal, GUEST_XCR0};
use simulated_platform::hostile::HostileKind;
use simulated_platform::launch::{LaunchDigest, PageType, Sha384Digest, VMSA_PAGE_INFO_GPA, section_pages};
use simulated_platform::vmsa::{self, VMSA_LEN};

use crate::config::Config;
use crate::guest_memory::C_BIT;
use crate::platform_memory::PlatformMemory;
use crate::rdrand;

/// What the launch produced.
pub struct Launched {
    /// MEASUREMENT.
    pub digest: Sha384Digest,
    /// The boot vCPU's initial state.
    pub vmsa: [u8; VMSA_LEN],
    /// VMPCK0..3, as written into the secrets page (the PSP's copy goes over the firmware channel).
    pub vmpck: [[u8; 32]; 4],
    /// Pages launched.
    pub pages: u32,
}

/// Why the launch did not happen.
#[derive(Clone, Copy, Debug)]
pub enum LaunchError {
    /// The image has no usable SEV metadata.
    Metadata,
    /// A page the launch names is not guest memory.
    Memory(u64),
    /// The firmware refused the CPUID page.
    CpuidPage(CpuidRefusal),
    /// No entropy for the keys.
    Entropy,
}

/// The platform's Fn8000_001F: SEV, SEV-ES and SNP; the C-bit; one physical address bit lost to encryption.
pub fn sev_features_leaf() -> CpuidResult {
    let c_bit = C_BIT.trailing_zeros();
    CpuidResult {
        eax: cpuid_page::SEV_FEATURES_SEV | cpuid_page::SEV_FEATURES_SEV_ES | cpuid_page::SEV_FEATURES_SNP,
        ebx: c_bit | (1 << 6),
        ecx: 1,
        edx: 1,
    }
}

fn hardware(leaf: u32, subleaf: u32) -> CpuidResult {
    let r = __cpuid_count(leaf, subleaf);
    CpuidResult { eax: r.eax, ebx: r.ebx, ecx: r.ecx, edx: r.edx }
}

/// The functions the VMM proposes: the CPU's own answers (the hypervisor runs with XCR0 = 7, as the guest will),
/// the vCPU model's signature in leaf 1, and the platform's SEV features (in range of leaf 0x8000_0000).
fn proposed_functions(config: &Config) -> [CpuidFunction; cpuid_page::FUNCTIONS.len()] {
    cpuid_page::FUNCTIONS.map(|(leaf, subleaf)| {
        let mut result = hardware(leaf, subleaf);
        if leaf == 1 {
            result.eax = config.vcpu.signature;
        }
        // The platform answers up to its SEV features leaf, whatever the CPU model's own extended range.
        if leaf == 0x8000_0000 {
            result.eax = result.eax.max(ovmf::snp::cpuid_page::LEAF_SEV_FEATURES);
        }
        if leaf == ovmf::snp::cpuid_page::LEAF_SEV_FEATURES {
            result = sev_features_leaf();
        }
        // Hostile: claim every structured extended feature, AVX-512 among them, which QEMU's TCG does not offer.
        if leaf == 7 && subleaf == 0 && config.hostile == Some(HostileKind::CpuidPage) {
            result.ebx = u32::MAX;
        }
        let xcr0_in = if leaf == 0xd && subleaf <= 1 { GUEST_XCR0 } else { 0 };
        CpuidFunction { leaf, subleaf, xcr0_in, result }
    })
}

fn launch_page(memory: &mut PlatformMemory, gpa: u64) -> Result<(), LaunchError> {
    let rmp = memory.rmp(gpa).ok_or(LaunchError::Memory(gpa))?;
    rmp.launch_page(gpa).map_err(|_| LaunchError::Memory(gpa))
}

/// Launches `image` (placed to end at 4 GiB) into `memory`.
pub fn launch(
    image: &[u8],
    metadata: &Metadata,
    config: &Config,
    memory: &mut PlatformMemory,
) -> Result<Launched, LaunchError> {
    let mut digest = LaunchDigest::default();
    for (i, bytes) in image.chunks(4096).enumerate() {
        let gpa = metadata.image_base + i as u64 * 4096;
        let page = memory.memory.page_mut(gpa).ok_or(LaunchError::Memory(gpa))?;
        page[..bytes.len()].copy_from_slice(bytes);
        launch_page(memory, gpa)?;
        digest.update(PageType::Normal, gpa, bytes);
    }
    let mut vmpck = [[0u8; 32]; 4];
    for key in &mut vmpck {
        rdrand::fill(key).ok_or(LaunchError::Entropy)?;
    }
    let functions = proposed_functions(config);
    cpuid_page::check(&functions, hardware, sev_features_leaf()).map_err(LaunchError::CpuidPage)?;
    for page in section_pages(metadata).ok_or(LaunchError::Metadata)? {
        let contents = match page.page_type {
            PageType::Secrets => simulated_platform::secrets_page::encode(&vmpck, config.vcpu.signature),
            PageType::Cpuid => cpuid_page::encode(&functions).ok_or(LaunchError::Metadata)?,
            _ => [0u8; 4096],
        };
        *memory.memory.page_mut(page.gpa).ok_or(LaunchError::Memory(page.gpa))? = contents;
        launch_page(memory, page.gpa)?;
        digest.update(page.page_type, page.gpa, &[]);
    }
    let vmsa = vmsa::boot_vcpu(config.vcpu);
    digest.update(PageType::Vmsa, VMSA_PAGE_INFO_GPA, &vmsa);
    Ok(Launched { digest: digest.measurement(), vmsa, vmpck, pages: digest.pages() })
}
