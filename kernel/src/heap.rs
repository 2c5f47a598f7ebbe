//! The heap: `linked_list_allocator` over the `HEAP` range of `ovmf::layout`.

use linked_list_allocator::LockedHeap;
use ovmf::layout::{HEAP, PAGE_SIZE};
use ovmf::validated_pages::ValidatedPages;
use spin::Mutex;

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// One bit per heap page.
const HEAP_WORDS: usize = (HEAP.size / PAGE_SIZE).div_ceil(64) as usize;

/// The heap pages this boot made private before the allocator got them: PVALIDATEd under SNP (`snp::memory`),
/// accepted under TDX (`tdx::memory`). The record refuses a second time for any page.
pub static PRIVATE_PAGES: Mutex<ValidatedPages<HEAP_WORDS>> = Mutex::new(ValidatedPages::new(HEAP.base / PAGE_SIZE));

/// How many heap pages this boot validated or accepted (0 in plain mode), for the `booted` record.
pub fn private_pages() -> usize {
    PRIVATE_PAGES.lock().count()
}

/// Why the heap could not be set up.
#[derive(Debug)]
pub struct RamMissing {
    /// The first address that did not hold what was written.
    pub address: u64,
}

/// Checks that the heap range is backed by RAM and hands it to the allocator. Runs once, after paging.
pub fn init() -> Result<(), RamMissing> {
    // With too little guest RAM, writes above its end are dropped and reads return all-ones: probe both ends.
    for address in [HEAP.base, HEAP.end() - 8] {
        let cell = address as *mut u64;
        const PATTERN: u64 = 0xa5a5_5a5a_0f0f_f0f0;
        // SAFETY: the heap range is mapped read-write by paging::init and not yet used by anything.
        unsafe { cell.write_volatile(PATTERN) };
        // SAFETY: as above.
        if unsafe { cell.read_volatile() } != PATTERN {
            return Err(RamMissing { address });
        }
    }
    // SAFETY: the range is RAM (just probed), mapped read-write, used by nothing else (ovmf::layout's tests check it
    // overlaps no other region), and init runs once.
    unsafe { ALLOCATOR.lock().init(HEAP.base as *mut u8, HEAP.size as usize) };
    Ok(())
}

/// Bytes currently allocated.
pub fn used() -> usize {
    ALLOCATOR.lock().used()
}
