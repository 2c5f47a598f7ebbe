//! Memory in a TD: what is private must be accepted before use, exactly once; what is shared is mapped with the
//! shared bit and converted with MapGPA; the TD HOB that describes RAM is checked before anything relies on it.
//!
//! - The TDVF metadata has the VMM add the image, RAM_IMAGE and BOOT_SCRATCH (and the TD HOB) before launch: those
//!   are private and accepted already.
//! - The heap lies outside them. It is as much of `HEAP` as the TD HOB declares unaccepted RAM (at least
//!   `ovmf::memory_map::MIN_HEAP_SIZE`); then each 2 MiB of it is accepted
//!   (each 4 KiB page if the VMM backs the range with small pages), recorded in [`heap::PRIVATE_PAGES`], which refuses a
//!   second acceptance of any page.
//! - `SHARED` lies outside them too and is never accepted: MapGPA converts it to shared before first use.

use ovmf::layout::{IMAGE, Region, SHARED, TD_HOB};
use ovmf::memory_map;
use ovmf::tdx::hob::{EFI_RESOURCE_MEMORY_UNACCEPTED, TdHob};
use ovmf::tdx::memory::{accept_range, share_range};
use ovmf::tdx::tdcall::{PageLevel, TDX_SUCCESS, accept_operand, leaf};
use ovmf::tdx::tdvmcall::fatal;

use super::tdcall::{tdcall, tdvmcall};
use super::terminate;
use crate::{heap, paging};

/// Checks the TD HOB (bounds, no RAM inside the image) and returns the heap its unaccepted RAM gives
/// (`ovmf::memory_map::heap`); ends the TD if the HOB is malformed or gives too little.
pub fn check_td_hob() -> Region {
    // SAFETY: paging::init maps the TD HOB read-only under TDX; the VMM wrote it before launch (TDH.MEM.PAGE.ADD)
    // and nothing writes it since. Its contents are untrusted bytes, checked by TdHob::parse.
    let bytes = unsafe { core::slice::from_raw_parts(TD_HOB.base as *const u8, TD_HOB.size as usize) };
    let Ok(hob) = TdHob::parse(bytes, IMAGE) else { terminate(fatal::BAD_TD_HOB) };
    let unaccepted = hob
        .resources()
        .filter(|r| r.kind == EFI_RESOURCE_MEMORY_UNACCEPTED)
        .filter_map(|r| Some((r.start, r.start.checked_add(r.length)?)));
    match memory_map::heap(unaccepted) {
        Ok(heap) if hob.unaccepted_covers(heap) => heap,
        _ => terminate(fatal::BAD_TD_HOB),
    }
}

/// Converts the whole `SHARED` range to shared with MapGPA (`ovmf::tdx::memory::share_range`); ends the TD if
/// the VMM does not.
pub fn share_shared_pages() {
    if share_range(SHARED, paging::shared_mask(), tdvmcall).is_err() {
        terminate(fatal::VMCALL_FAILED);
    }
}

/// TDG.MEM.PAGE.ACCEPT of the page at `gpa`; true on success.
fn accept(gpa: u64, level: PageLevel) -> bool {
    let Some(operand) = accept_operand(gpa, level) else { return false };
    // SAFETY: the page is heap memory the allocator does not own yet; accepting it zeroes it and touches nothing
    // else.
    unsafe { tdcall(leaf::TDG_MEM_PAGE_ACCEPT, operand, 0, 0) }.rax == TDX_SUCCESS
}

/// Accepts every page of `heap`, once (`ovmf::tdx::memory::accept_range`). Ends the TD on any failure.
pub fn accept_heap(heap: Region) {
    if accept_range(heap, &mut heap::PRIVATE_PAGES.lock(), accept).is_err() {
        terminate(fatal::ACCEPT_FAILED);
    }
}
