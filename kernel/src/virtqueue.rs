//! A split virtqueue (Virtio 1.1, 2.6) with one buffer per descriptor, polled (no interrupts). Its rings and
//! buffers are one block of zeroed shared pages (`shared`) that lives for the rest of the run; the device
//! writes the used ring and device-writable buffers, so the kernel reads them with volatile loads and copies data
//! out before looking at it.

use core::ptr::NonNull;
use core::sync::atomic::{Ordering, fence};

/// Descriptors (and buffers) per queue.
pub const QUEUE_SIZE: u16 = 16;
/// Bytes per buffer: a full Ethernet frame plus the 12-byte virtio-net header.
pub const BUFFER_SIZE: usize = 2048;

const DESC_F_WRITE: u16 = 2;
/// Used-ring flag: the device does not need to be notified of new buffers (Virtio 1.1, 2.6.8).
const VIRTQ_USED_F_NO_NOTIFY: u16 = 1;

/// Descriptor table (16 bytes each), available ring, used ring, then the buffers, each part suitably aligned.
const DESC_OFFSET: usize = 0;
const AVAIL_OFFSET: usize = 16 * QUEUE_SIZE as usize;
const USED_OFFSET: usize = 4096;
const BUFFERS_OFFSET: usize = 8192;
const TOTAL: usize = BUFFERS_OFFSET + BUFFER_SIZE * QUEUE_SIZE as usize;

/// One queue.
pub struct Virtqueue {
    base: NonNull<u8>,
    /// The next available-ring index the driver will publish.
    avail_idx: u16,
    /// The next used-ring index the driver will consume.
    used_idx: u16,
}

// SAFETY: the memory is owned by the queue alone (device aside), and the kernel serves on one CPU.
unsafe impl Send for Virtqueue {}

impl Virtqueue {
    /// Takes the queue's memory from the shared pages: zeroed (so every ring starts empty), page-aligned, never
    /// freed.
    pub fn new() -> Virtqueue {
        let base = crate::shared::pages(TOTAL.div_ceil(4096) as u64);
        Virtqueue { base: NonNull::new(base as *mut u8).expect("shared pages are not at 0"), avail_idx: 0, used_idx: 0 }
    }

    /// The guest-physical addresses of the descriptor table, available ring and used ring (identity-mapped).
    pub fn addresses(&self) -> (u64, u64, u64) {
        let base = self.base.as_ptr() as u64;
        (base + DESC_OFFSET as u64, base + AVAIL_OFFSET as u64, base + USED_OFFSET as u64)
    }

    fn at<T>(&self, offset: usize) -> *mut T {
        debug_assert!(offset + core::mem::size_of::<T>() <= TOTAL);
        self.base.as_ptr().wrapping_add(offset).cast()
    }

    fn write<T>(&self, offset: usize, value: T) {
        // SAFETY: offsets stay inside the queue's allocation and are aligned for T by the layout above.
        unsafe { self.at::<T>(offset).write_volatile(value) };
    }

    fn read<T>(&self, offset: usize) -> T {
        // SAFETY: as in `write`; the device may write concurrently, hence volatile.
        unsafe { self.at::<T>(offset).read_volatile() }
    }

    /// Buffer `id`'s memory.
    fn buffer(&self, id: u16) -> *mut u8 {
        self.at(BUFFERS_OFFSET + usize::from(id) * BUFFER_SIZE)
    }

    /// Points descriptor `id` at its buffer, `len` bytes, device-writable or not.
    fn set_descriptor(&self, id: u16, len: u32, device_writes: bool) {
        let at = DESC_OFFSET + 16 * usize::from(id);
        self.write::<u64>(at, self.buffer(id) as u64);
        self.write::<u32>(at + 8, len);
        self.write::<u16>(at + 12, if device_writes { DESC_F_WRITE } else { 0 });
        self.write::<u16>(at + 14, 0);
    }

    /// Publishes descriptor `id` in the available ring.
    fn publish(&mut self, id: u16) {
        let slot = AVAIL_OFFSET + 4 + 2 * usize::from(self.avail_idx % QUEUE_SIZE);
        self.write::<u16>(slot, id);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        // The ring entry must be visible before the index that publishes it (Virtio 1.1, 2.6.13).
        fence(Ordering::SeqCst);
        self.write::<u16>(AVAIL_OFFSET + 2, self.avail_idx);
        fence(Ordering::SeqCst);
    }

    /// Offers buffer `id` to the device to fill (receive queues).
    pub fn offer_writable(&mut self, id: u16) {
        self.set_descriptor(id, BUFFER_SIZE as u32, true);
        self.publish(id);
    }

    /// Copies `data` into buffer `id` and hands it to the device to read (transmit queues).
    pub fn offer_readable(&mut self, id: u16, data: impl FnOnce(&mut [u8]) -> usize) {
        // SAFETY: buffer `id` is inside the allocation, not in use by the device (the caller got it back from
        // `take_used` or never offered it), and BUFFER_SIZE long.
        let buffer = unsafe { core::slice::from_raw_parts_mut(self.buffer(id), BUFFER_SIZE) };
        let len = data(buffer).min(BUFFER_SIZE);
        self.set_descriptor(id, len as u32, false);
        self.publish(id);
    }

    /// Whether the device asks to be notified of the buffers just published: a device that is already working
    /// through the ring says it does not (each notification is an exit to the host). Read after the available
    /// index is published (Virtio 1.1, 2.6.13.6: with a barrier between, which `publish` ends with).
    pub fn device_wants_notification(&self) -> bool {
        fence(Ordering::SeqCst);
        self.read::<u16>(USED_OFFSET) & VIRTQ_USED_F_NO_NOTIFY == 0
    }

    /// The next buffer the device has finished with: its id and, for writable buffers, a copy of what it wrote
    /// (at most `out.len()` bytes; the length the device claims is clamped to the buffer).
    pub fn take_used(&mut self, out: &mut [u8]) -> Option<(u16, usize)> {
        fence(Ordering::SeqCst);
        let device_idx: u16 = self.read(USED_OFFSET + 2);
        if device_idx == self.used_idx {
            return None;
        }
        fence(Ordering::SeqCst);
        let element = USED_OFFSET + 4 + 8 * usize::from(self.used_idx % QUEUE_SIZE);
        let id: u32 = self.read(element);
        let len: u32 = self.read(element + 4);
        self.used_idx = self.used_idx.wrapping_add(1);
        // The id comes from the device: a bad one is dropped, never used to index.
        let id = u16::try_from(id).ok().filter(|&id| id < QUEUE_SIZE)?;
        let len = (len as usize).min(BUFFER_SIZE).min(out.len());
        for (i, byte) in out[..len].iter_mut().enumerate() {
            // SAFETY: i < len <= BUFFER_SIZE, inside buffer `id`.
            *byte = unsafe { self.buffer(id).wrapping_add(i).read_volatile() };
        }
        Some((id, len))
    }
}
