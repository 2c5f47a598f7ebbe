//! The shared pages (`ovmf::layout::SHARED`): memory the VMM and devices may read and write. Under SNP they are
//! shared and mapped without the C-bit (`snp::memory`, `paging`); in plain mode they are ordinary RAM. The first
//! page is the GHCB; the rest is handed out here, page by page, for the life of the boot.
//!
//! Nothing is decoded in these pages: users copy data in or out (DESIGN.md §4).

use ovmf::layout::{PAGE_SIZE, SHARED};
use spin::Mutex;

/// The next page to hand out (the GHCB, the first page, is never handed out).
static NEXT: Mutex<u64> = Mutex::new(SHARED.base + PAGE_SIZE);

/// Takes `count` zeroed, page-aligned shared pages; returns the address of the first. Panics if `SHARED` is
/// exhausted: its size is fixed by the kernel's own needs (GHCB, two guest-message pages or the TDX quote buffer, two
/// virtqueues, the fw_cfg DMA window).
pub fn pages(count: u64) -> u64 {
    let mut next = NEXT.lock();
    let base = *next;
    let end = base + count * PAGE_SIZE;
    assert!(end <= SHARED.end(), "the shared pages are exhausted");
    *next = end;
    // SAFETY: [base, end) lies in SHARED, mapped read-write by paging::init, and is handed out only now.
    unsafe { core::ptr::write_bytes(base as *mut u8, 0, (end - base) as usize) };
    base
}

/// Takes one zeroed shared page for the caller alone, as bytes. The VMM may change it at any time: copy, never
/// decode in place.
pub fn page() -> &'static mut [u8; PAGE_SIZE as usize] {
    let base = pages(1);
    // SAFETY: `pages` handed this page out just now and never will again, so this is its only reference; it is
    // mapped read-write, page-aligned and PAGE_SIZE long. Its contents are plain bytes, valid whatever the VMM
    // writes.
    unsafe { &mut *(base as *mut [u8; PAGE_SIZE as usize]) }
}
