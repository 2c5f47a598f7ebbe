//! Memory under SNP: what is private must be validated before use, exactly once; what is shared must never be.
//!
//! - `SHARED` (the GHCB, guest-message pages, virtio rings and buffers) lies outside every pre-validated range, so
//!   it is never validated: each page is changed to shared and mapped without the C-bit (`paging`).
//! - The heap lies outside the pre-validated ranges too: each page is changed to private, then PVALIDATEd, and
//!   recorded in [`heap::PRIVATE_PAGES`], which refuses a second validation of any page (AMD64 APM vol. 2, 15.36.9).

use ovmf::layout::{HEAP, PAGE_SIZE, SHARED};
use ovmf::snp::ghcb_msr::{PageState, REASON_VALIDATION_FAILED};

use super::ghcb::{self, GHCB_GPA};
use crate::heap;

/// PVALIDATE's page-size operand (ECX): 4 KiB.
const PVALIDATE_4K: u32 = 0;
/// PVALIDATE's results in EAX (AMD64 APM vol. 3, PVALIDATE): success.
const PVALIDATE_SUCCESS: u32 = 0;

/// PVALIDATE of the 4 KiB page at `address` (identity-mapped, private). Succeeds only if the RMP entry changed:
/// CF = 1 means the page already was in the requested state, which a hypervisor replaying pages could cause.
fn pvalidate(address: u64, validate: bool) -> bool {
    let result: u64;
    let unchanged: u8;
    // SAFETY: PVALIDATE changes only the RMP entry of the page at `address`, which the caller owns and does not
    // use until this returns (heap pages before the allocator exists). EAX takes the result, CF is read by SETC.
    unsafe {
        core::arch::asm!(
            "pvalidate",
            "setc {unchanged}",
            inout("rax") address => result,
            in("ecx") PVALIDATE_4K,
            in("edx") u32::from(validate),
            unchanged = out(reg_byte) unchanged,
            options(nostack),
        )
    };
    result as u32 == PVALIDATE_SUCCESS && unchanged == 0
}

/// Changes every `SHARED` page but the GHCB (already shared by `ghcb::init`) to shared.
pub fn share_shared_pages() {
    for gpa in (SHARED.base..SHARED.end()).step_by(PAGE_SIZE as usize).filter(|&gpa| gpa != GHCB_GPA) {
        ghcb::page_state_change(gpa, PageState::Shared);
    }
}

/// Changes every heap page to private and validates it, once. Ends the guest on any failure.
pub fn validate_heap() {
    let mut validated = heap::PRIVATE_PAGES.lock();
    for gpa in (HEAP.base..HEAP.end()).step_by(PAGE_SIZE as usize) {
        if validated.mark(gpa / PAGE_SIZE).is_err() {
            ghcb::terminate(REASON_VALIDATION_FAILED);
        }
        ghcb::page_state_change(gpa, PageState::Private);
        if !pvalidate(gpa, true) {
            ghcb::terminate(REASON_VALIDATION_FAILED);
        }
    }
}
