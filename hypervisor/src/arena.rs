//! A bump allocator over a fixed arena: the format crates the hypervisor shares with the guest and host
//! (`protocol`) are built with `alloc`. Nothing is ever freed; the hypervisor allocates only at launch.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

const ARENA_LEN: usize = 1 << 20;

#[repr(align(4096))]
struct Arena(core::cell::UnsafeCell<[u8; ARENA_LEN]>);

// SAFETY: the arena is handed out in disjoint pieces by the atomic cursor below.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(core::cell::UnsafeCell::new([0; ARENA_LEN]));
static NEXT: AtomicUsize = AtomicUsize::new(0);

struct Bump;

// SAFETY: every allocation is a fresh, suitably aligned, in-bounds piece of the arena, never handed out twice.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = ARENA.0.get() as usize;
        let mut start = 0;
        let taken = NEXT.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |next| {
            start = (base + next).next_multiple_of(layout.align()) - base;
            let end = start.checked_add(layout.size())?;
            (end <= ARENA_LEN).then_some(end)
        });
        match taken {
            Ok(_) => (base + start) as *mut u8,
            Err(_) => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOCATOR: Bump = Bump;
