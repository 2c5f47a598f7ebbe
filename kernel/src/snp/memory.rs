//! Memory under SNP: what is private must be validated before use, exactly once; what is shared must never be.
//!
//! - `SHARED` (the GHCB, guest-message pages, virtio rings and buffers) lies outside every pre-validated range, so
//!   it is never validated: its pages are changed to shared, in one batch through the GHCB, and mapped without the
//!   C-bit (`paging`).
//! - The heap lies outside the pre-validated ranges too: it is changed to private in 2 MiB ranges, in one batch,
//!   then each range is PVALIDATEd as one 2 MiB page (or page by page, if the hypervisor backed it with 4 KiB RMP
//!   entries), and every 4 KiB frame is recorded in [`heap::PRIVATE_PAGES`], which refuses a second validation of
//!   any page (AMD64 APM vol. 2, 15.36.9).

use ovmf::layout::{HEAP, PAGE_SIZE, Region, SHARED};
use ovmf::snp::ghcb_msr::{PageState, REASON_VALIDATION_FAILED};
use ovmf::snp::page_state::{MAX_ENTRIES, PageStateEntry};

use super::ghcb::{self, GHCB_GPA};
use crate::heap;

/// PVALIDATE's page-size operand (ECX).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum PvalidateSize {
    Small = 0,
    Large = 1,
}
/// PVALIDATE's results in EAX (AMD64 APM vol. 3, PVALIDATE).
const PVALIDATE_SUCCESS: u32 = 0;
const PVALIDATE_FAIL_SIZEMISMATCH: u32 = 6;
/// 2 MiB.
const LARGE_PAGE: u64 = 2 << 20;
/// The largest heap's 2 MiB ranges: one batch of page-state changes must hold them all.
const HEAP_RANGES: usize = (HEAP.size / LARGE_PAGE) as usize;
const SHARED_PAGES: usize = (SHARED.size / PAGE_SIZE) as usize;
const _: () = assert!(HEAP.base.is_multiple_of(LARGE_PAGE) && HEAP.size.is_multiple_of(LARGE_PAGE));
const _: () = assert!(HEAP_RANGES <= MAX_ENTRIES && SHARED_PAGES <= MAX_ENTRIES);

/// PVALIDATE of the page at `address` (identity-mapped, private). `Ok` only if the RMP entry changed: CF = 1 means
/// the page already was in the requested state, which a hypervisor replaying pages could cause. `Err` carries EAX
/// (or `u32::MAX` for "no change").
fn pvalidate(address: u64, size: PvalidateSize, validate: bool) -> Result<(), u32> {
    let result: u64;
    let unchanged: u8;
    // SAFETY: PVALIDATE changes only the RMP entries of the page at `address`, which the caller owns and does not
    // use until this returns (heap pages before the allocator exists). EAX takes the result, CF is read by SETC.
    unsafe {
        core::arch::asm!(
            "pvalidate",
            "setc {unchanged}",
            inout("rax") address => result,
            in("ecx") size as u32,
            in("edx") u32::from(validate),
            unchanged = out(reg_byte) unchanged,
            options(nostack),
        )
    };
    match (result as u32, unchanged) {
        (PVALIDATE_SUCCESS, 0) => Ok(()),
        (PVALIDATE_SUCCESS, _) => Err(u32::MAX),
        (code, _) => Err(code),
    }
}

/// Changes every `SHARED` page but the GHCB (already shared by `ghcb::init`) to shared, in one batch.
pub fn share_shared_pages() {
    let mut entries = [PageStateEntry { gfn: 0, state: PageState::Shared, large: false }; SHARED_PAGES - 1];
    let pages = (SHARED.base..SHARED.end()).step_by(PAGE_SIZE as usize).filter(|&gpa| gpa != GHCB_GPA);
    for (entry, gpa) in entries.iter_mut().zip(pages) {
        entry.gfn = gpa / PAGE_SIZE;
    }
    ghcb::page_state_change_batch(&entries);
}

/// Changes `heap` (inside `HEAP`, 2 MiB-aligned: `ovmf::memory_map::heap`) to private and validates every page of
/// it, once. Ends the guest on any failure.
pub fn validate_heap(heap: Region) {
    if heap.base != HEAP.base || heap.end() > HEAP.end() || !heap.size.is_multiple_of(LARGE_PAGE) {
        ghcb::terminate(REASON_VALIDATION_FAILED);
    }
    let mut entries = [PageStateEntry { gfn: 0, state: PageState::Private, large: true }; HEAP_RANGES];
    let ranges = (heap.size / LARGE_PAGE) as usize;
    for (i, entry) in entries.iter_mut().enumerate() {
        entry.gfn = (HEAP.base + i as u64 * LARGE_PAGE) / PAGE_SIZE;
    }
    ghcb::page_state_change_batch(&entries[..ranges]);
    let mut validated = heap::PRIVATE_PAGES.lock();
    for range in (heap.base..heap.end()).step_by(LARGE_PAGE as usize) {
        for gpa in (range..range + LARGE_PAGE).step_by(PAGE_SIZE as usize) {
            if validated.mark(gpa / PAGE_SIZE).is_err() {
                ghcb::terminate(REASON_VALIDATION_FAILED);
            }
        }
        match pvalidate(range, PvalidateSize::Large, true) {
            Ok(()) => {}
            // The hypervisor may back a 2 MiB range with 4 KiB RMP entries: then page by page (GHCB spec §4.1.6).
            Err(PVALIDATE_FAIL_SIZEMISMATCH) => {
                for gpa in (range..range + LARGE_PAGE).step_by(PAGE_SIZE as usize) {
                    if pvalidate(gpa, PvalidateSize::Small, true).is_err() {
                        ghcb::terminate(REASON_VALIDATION_FAILED);
                    }
                }
            }
            Err(_) => ghcb::terminate(REASON_VALIDATION_FAILED),
        }
    }
}
