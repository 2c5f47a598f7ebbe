//! The heap: `linked_list_allocator` over as much of `ovmf::layout::HEAP` as the platform's memory map declares
//! (`ovmf::memory_map`): fw_cfg `etc/e820` in plain mode and under SNP, the TD HOB under TDX.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use linked_list_allocator::LockedHeap;
use ovmf::layout::{HEAP, PAGE_SIZE, Region};
use ovmf::memory_map::{self, E820_ENTRY_LEN, MAX_E820_ENTRIES, MemoryMapError};
use ovmf::validated_pages::ValidatedPages;
use spin::{Mutex, Once};

use crate::fw_cfg::FwCfg;

#[global_allocator]
static ALLOCATOR: PeakTrackingHeap =
    PeakTrackingHeap { heap: LockedHeap::empty(), peak: AtomicUsize::new(0), failed: AtomicUsize::new(0) };

/// The allocator, the most it has had allocated at once (for records: what a model's load really needs), and the
/// size of the last allocation it could not satisfy (for the panic record that follows one).
struct PeakTrackingHeap {
    heap: LockedHeap,
    peak: AtomicUsize,
    failed: AtomicUsize,
}

// SAFETY: allocation and deallocation go to one `linked_list_allocator::Heap` under its lock, as `LockedHeap`'s
// own GlobalAlloc does; the peak and the failed size are bookkeeping taken under the same lock.
unsafe impl GlobalAlloc for PeakTrackingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut heap = self.heap.lock();
        match heap.allocate_first_fit(layout) {
            Ok(block) => {
                self.peak.fetch_max(heap.used(), Ordering::Relaxed);
                block.as_ptr()
            }
            Err(()) => {
                self.failed.store(layout.size(), Ordering::Relaxed);
                core::ptr::null_mut()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(block) = NonNull::new(ptr) else { return };
        // SAFETY: the caller passes a block `alloc` returned with this layout, which came from this heap.
        unsafe { self.heap.lock().deallocate(block, layout) }
    }
}

/// One bit per page of the largest heap.
const HEAP_WORDS: usize = (HEAP.size / PAGE_SIZE).div_ceil(64) as usize;

/// The heap pages this boot made private before the allocator got them: PVALIDATEd under SNP (`snp::memory`),
/// accepted under TDX (`tdx::memory`). The record refuses a second time for any page.
pub static PRIVATE_PAGES: Mutex<ValidatedPages<HEAP_WORDS>> = Mutex::new(ValidatedPages::new(HEAP.base / PAGE_SIZE));

/// This boot's heap, once `init` has it.
static HEAP_IN_USE: Once<Region> = Once::new();

/// How many heap pages this boot validated or accepted (0 in plain mode), for the `booted` record.
pub fn private_pages() -> usize {
    PRIVATE_PAGES.lock().count()
}

/// The heap as QEMU's fw_cfg `etc/e820` declares it (plain mode and SNP).
pub fn from_e820() -> Result<Region, MemoryMapError> {
    let mut device = FwCfg::probe().ok_or(MemoryMapError::Malformed)?;
    let file = device.find("etc/e820").ok_or(MemoryMapError::Malformed)?;
    let mut bytes = [0u8; E820_ENTRY_LEN * MAX_E820_ENTRIES];
    let map = bytes.get_mut(..file.size as usize).ok_or(MemoryMapError::Malformed)?;
    device.read(file, 0, map).map_err(|_| MemoryMapError::Malformed)?;
    memory_map::heap(memory_map::e820_ram(map)?)
}

/// Why the heap could not be set up.
#[derive(Debug)]
pub struct RamMissing {
    /// The first address that did not hold what was written.
    pub address: u64,
}

/// Checks that `heap` (inside `HEAP`, validated or accepted already where the platform requires it) is backed by
/// RAM and hands it to the allocator. Runs once, after paging.
pub fn init(heap: Region) -> Result<(), RamMissing> {
    assert!(HEAP.base == heap.base && heap.end() <= HEAP.end(), "the heap lies inside its bound");
    // With too little guest RAM, writes above its end are dropped and reads return all-ones: probe both ends.
    for address in [heap.base, heap.end() - 8] {
        let cell = address as *mut u64;
        const PATTERN: u64 = 0xa5a5_5a5a_0f0f_f0f0;
        // SAFETY: the heap range is mapped read-write by paging::init and not yet used by anything.
        unsafe { cell.write_volatile(PATTERN) };
        // SAFETY: as above.
        if unsafe { cell.read_volatile() } != PATTERN {
            return Err(RamMissing { address });
        }
    }
    HEAP_IN_USE.call_once(|| heap);
    // SAFETY: the range is RAM (just probed), mapped read-write, used by nothing else (ovmf::layout's tests check
    // HEAP overlaps no other region, and `heap` lies inside it), and init runs once.
    unsafe { ALLOCATOR.heap.lock().init(heap.base as *mut u8, heap.size as usize) };
    Ok(())
}

/// This boot's heap size in bytes (0 before `init`).
pub fn size() -> u64 {
    HEAP_IN_USE.get().map_or(0, |heap| heap.size)
}

/// Bytes currently allocated.
pub fn used() -> usize {
    ALLOCATOR.heap.lock().used()
}

/// The most bytes allocated at once so far.
pub fn peak() -> usize {
    ALLOCATOR.peak.load(Ordering::Relaxed)
}

/// For the panic record: the size of the last allocation that failed (0 if none), and the bytes allocated now if
/// the heap is not locked (the panic may come from inside it).
pub fn exhaustion() -> (usize, Option<usize>) {
    (ALLOCATOR.failed.load(Ordering::Relaxed), ALLOCATOR.heap.try_lock().map(|heap| heap.used()))
}
