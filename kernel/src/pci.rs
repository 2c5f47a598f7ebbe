//! PCI configuration space through the legacy I/O ports (0xCF8/0xCFC), and BAR assignment: no firmware runs
//! before Ampoule, so it places the BARs it uses itself, inside `layout::PCI_MMIO`.

use core::sync::atomic::{AtomicU64, Ordering};

use ovmf::layout::PCI_MMIO;
use x86_64::instructions::port::Port;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;
/// Configuration header offsets (PCI Local Bus spec 3.0, 6.1).
const VENDOR_ID: u8 = 0x00;
const COMMAND: u8 = 0x04;
const STATUS: u8 = 0x06;
const BAR0: u8 = 0x10;
const CAPABILITIES_POINTER: u8 = 0x34;
const COMMAND_MEMORY: u16 = 1 << 1;
const COMMAND_BUS_MASTER: u16 = 1 << 2;
const STATUS_CAPABILITIES: u16 = 1 << 4;
const BAR_IO: u32 = 1 << 0;
const BAR_TYPE_64: u32 = 0b10 << 1;

/// The next free address in the PCI window.
static NEXT_BAR_ADDRESS: AtomicU64 = AtomicU64::new(PCI_MMIO.base);

/// One function on bus 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciFunction {
    device: u8,
    function: u8,
}

impl PciFunction {
    fn address(&self, offset: u8) -> u32 {
        1 << 31 | u32::from(self.device) << 11 | u32::from(self.function) << 8 | u32::from(offset & 0xfc)
    }

    /// Reads the dword at `offset` (dword-aligned).
    pub fn read32(&self, offset: u8) -> u32 {
        // SAFETY: CONFIG_ADDRESS/CONFIG_DATA access configuration space only; bus 0 always exists.
        unsafe { Port::<u32>::new(CONFIG_ADDRESS).write(self.address(offset)) };
        // SAFETY: as above.
        unsafe { Port::<u32>::new(CONFIG_DATA).read() }
    }

    /// Writes the dword at `offset`.
    pub fn write32(&self, offset: u8, value: u32) {
        // SAFETY: as in `read32`; the caller writes only registers of a device it drives.
        unsafe { Port::<u32>::new(CONFIG_ADDRESS).write(self.address(offset)) };
        // SAFETY: as above.
        unsafe { Port::<u32>::new(CONFIG_DATA).write(value) };
    }

    /// Reads the byte at `offset`.
    pub fn read8(&self, offset: u8) -> u8 {
        (self.read32(offset) >> ((offset & 3) * 8)) as u8
    }

    fn read16(&self, offset: u8) -> u16 {
        (self.read32(offset) >> ((offset & 2) * 8)) as u16
    }

    /// Vendor and device id.
    pub fn ids(&self) -> (u16, u16) {
        let v = self.read32(VENDOR_ID);
        (v as u16, (v >> 16) as u16)
    }

    /// The capability list: (id, offset) pairs, at most 48 (a malformed list cannot loop forever).
    pub fn capabilities(&self) -> impl Iterator<Item = (u8, u8)> + '_ {
        let mut next =
            if self.read16(STATUS) & STATUS_CAPABILITIES != 0 { self.read8(CAPABILITIES_POINTER) } else { 0 };
        core::iter::from_fn(move || {
            if next < 0x40 {
                return None;
            }
            let at = next & 0xfc;
            next = self.read8(at + 1);
            Some((self.read8(at), at))
        })
        .take(48)
    }

    /// Sizes memory BAR `index`, places it in the PCI window, enables memory decoding and bus mastering, and
    /// returns its address range. `None` for I/O BARs, absent BARs or a full window.
    pub fn assign_memory_bar(&self, index: u8) -> Option<core::ops::Range<u64>> {
        let offset = BAR0 + 4 * index;
        let command = self.read32(COMMAND) as u16;
        self.write32(COMMAND, u32::from(command & !COMMAND_MEMORY));
        let original = self.read32(offset);
        if original & BAR_IO != 0 {
            return None;
        }
        let is_64 = original & (0b11 << 1) == BAR_TYPE_64;
        self.write32(offset, u32::MAX);
        let mut mask = u64::from(self.read32(offset) & !0xf);
        if is_64 {
            self.write32(offset + 4, u32::MAX);
            mask |= u64::from(self.read32(offset + 4)) << 32;
        } else {
            mask |= 0xffff_ffff_0000_0000;
        }
        let size = (!mask).wrapping_add(1);
        if mask == 0 || size == 0 {
            return None;
        }
        // Naturally aligned, from the window.
        let base = NEXT_BAR_ADDRESS
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |next| {
                let base = next.div_ceil(size) * size;
                (base + size <= PCI_MMIO.end()).then_some(base + size)
            })
            .ok()
            .map(|previous| previous.div_ceil(size) * size)?;
        self.write32(offset, base as u32 | (original & 0xf));
        if is_64 {
            self.write32(offset + 4, (base >> 32) as u32);
        }
        self.write32(COMMAND, u32::from(command | COMMAND_MEMORY | COMMAND_BUS_MASTER));
        Some(base..base + size)
    }
}

/// The first function on bus 0 with `vendor` and one of `devices`.
pub fn find(vendor: u16, devices: &[u16]) -> Option<PciFunction> {
    (0..32u8).flat_map(|device| (0..8u8).map(move |function| PciFunction { device, function })).find(|f| {
        let (v, d) = f.ids();
        v == vendor && devices.contains(&d)
    })
}
