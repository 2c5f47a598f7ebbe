//! The SNP CPUID page (`ovmf::layout::SNP_CPUID`), read in place: the VMM filled it and the PSP checked it before
//! launch, so under SNP it, not the hypervisor, answers CPUID.

use ovmf::layout::SNP_CPUID;
use ovmf::snp::cpuid_page::CpuidPage;
use ovmf::snp::ghcb_msr::REASON_BAD_CPUID_PAGE;

use super::ghcb;

/// The checked page. Mapped by the boot page tables and, under SNP, by `paging::init` (read-only, private).
pub fn page() -> CpuidPage<'static> {
    // SAFETY: the page is private memory the PSP validated at launch; nothing in the guest writes it, and both the
    // boot tables and the kernel's tables map it under SNP.
    let bytes = unsafe { core::slice::from_raw_parts(SNP_CPUID.base as *const u8, SNP_CPUID.size as usize) };
    CpuidPage::new(bytes).unwrap_or_else(|_| ghcb::terminate(REASON_BAD_CPUID_PAGE))
}
