//! The SEV-SNP guest: what the kernel does differently when `platform::detect` finds SNP (DESIGN.md §4 and §9).
//!
//! - [`cpuid`]: the CPUID page the PSP checked at launch; the C-bit position comes from it, never the hypervisor.
//! - [`ghcb`]: the GHCB MSR protocol and the GHCB page; VMGEXIT; terminating the guest.
//! - [`memory`]: page-state changes and PVALIDATE: the shared pages, and every heap page validated exactly once.
//! - [`vc`]: the #VC handler: CPUID from the CPUID page, port I/O and MSR accesses through the GHCB.
//! - [`guest_request`]: guest messages to the PSP through the GHCB, for the [`loader::SnpAttester`].
//!
//! The parts that are plain data (encodings, the pages' layouts, the validation bitmap, the instruction decoder)
//! live in `ovmf::snp` and are tested on the host; the parts here execute the instructions.

pub mod cpuid;
pub mod ghcb;
pub mod guest_request;
pub mod memory;
pub mod vc;

use loader::SnpAttester;
use ovmf::layout::{Region, SNP_SECRETS};
use ovmf::snp::ghcb_msr::REASON_BAD_MEMORY_MAP;
use ovmf::snp::secrets_page::SecretsPage;

use crate::paging::Encryption;

/// Everything SNP needs before the kernel can print: runs after paging, the GDT and the IDT, before the serial
/// console and the heap; returns the heap, validated. Ends the guest (GHCB termination request) if anything is
/// wrong.
pub fn init() -> Region {
    ghcb::init();
    memory::share_shared_pages();
    // The memory map is the host's (fw_cfg, through the shared pages): a lie about RAM ends the guest at
    // validation, or gives it less heap.
    let heap = crate::heap::from_e820().unwrap_or_else(|_| ghcb::terminate(REASON_BAD_MEMORY_MAP));
    memory::validate_heap(heap);
    heap
}

/// The page-table encryption for SNP: the C-bit position from the CPUID page, which must agree with the one the
/// stub put in the boot page tables. Runs on the boot page tables, before `paging::init`.
pub fn encryption(stub_c_bit: u32) -> Encryption {
    let c_bit = cpuid::page().c_bit().unwrap_or_else(|_| ghcb::terminate(ovmf::snp::ghcb_msr::REASON_BAD_CPUID_PAGE));
    if u32::from(c_bit) != stub_c_bit {
        ghcb::terminate(ovmf::snp::ghcb_msr::REASON_BAD_CPUID_PAGE);
    }
    Encryption::CBit(c_bit)
}

/// The attester for this boot: VMPCK0 and its message counter from the secrets page, requests through the GHCB.
/// `None` if the secrets page is unusable (then the guest has no evidence to give).
pub fn attester() -> Option<SnpAttester<guest_request::GhcbGuestRequest>> {
    // SAFETY: paging::init maps the secrets page read-only under SNP; the PSP wrote it before launch and nothing
    // writes it since.
    let bytes = unsafe { core::slice::from_raw_parts(SNP_SECRETS.base as *const u8, SNP_SECRETS.size as usize) };
    let page = SecretsPage::new(bytes).ok()?;
    let vmpck0 = *page.vmpck(0).ok()?;
    let last_seqno = page.msg_seqno(0).ok()?;
    Some(SnpAttester::new(vmpck0, last_seqno, guest_request::GhcbGuestRequest::new()))
}
