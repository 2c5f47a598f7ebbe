//! Memory in a TD: what is private must be accepted before use, exactly once; what is shared is mapped with the
//! shared bit and converted with MapGPA; the TD HOB that describes RAM is checked before anything relies on it.
//!
//! - The TDVF metadata has the VMM add the image, RAM_IMAGE and BOOT_SCRATCH (and the TD HOB) before launch: those
//!   are private and accepted already.
//! - The heap lies outside them. The TD HOB must declare it unaccepted RAM; then each 2 MiB of it is accepted
//!   (each 4 KiB page if the VMM backs the range with small pages), recorded in [`heap::PRIVATE_PAGES`], which refuses a
//!   second acceptance of any page.
//! - `SHARED` lies outside them too and is never accepted: MapGPA converts it to shared before first use.

use ovmf::layout::{HEAP, IMAGE, SHARED, TD_HOB};
use ovmf::tdx::hob::TdHob;
use ovmf::tdx::memory::{accept_range, share_range};
use ovmf::tdx::tdcall::{PageLevel, TDX_SUCCESS, accept_operand, leaf};
use ovmf::tdx::tdvmcall::fatal;

use super::tdcall::{tdcall, tdvmcall};
use super::terminate;
use crate::{heap, paging};

/// Checks the TD HOB (bounds, no RAM inside the image) and that it declares the whole heap unaccepted RAM; ends
/// the TD otherwise.
pub fn check_td_hob() {
    // SAFETY: paging::init maps the TD HOB read-only under TDX; the VMM wrote it before launch (TDH.MEM.PAGE.ADD)
    // and nothing writes it since. Its contents are untrusted bytes, checked by TdHob::parse.
    let bytes = unsafe { core::slice::from_raw_parts(TD_HOB.base as *const u8, TD_HOB.size as usize) };
    match TdHob::parse(bytes, IMAGE) {
        Ok(hob) if hob.unaccepted_covers(HEAP) => {}
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

/// Accepts every heap page, once (`ovmf::tdx::memory::accept_range`). Ends the TD on any failure.
pub fn accept_heap() {
    if accept_range(HEAP, &mut heap::PRIVATE_PAGES.lock(), accept).is_err() {
        terminate(fatal::ACCEPT_FAILED);
    }
}
