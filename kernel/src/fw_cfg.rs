//! QEMU's firmware configuration device (QEMU's docs/specs/fw_cfg.rst): how the untrusted host hands the guest its
//! sealed model, plain mode's simulated HOST_DATA, the batch limits, and the fault the test image raises.
//! Everything read here is the host's word: bounded by the caller's buffer, copied into private memory, and
//! checked there by its user.
//!
//! Reads use the DMA interface where the device offers it: a descriptor and a bounce buffer in shared pages, which
//! the device fills and the guest copies out (DESIGN.md §4: never decoded in place). Without DMA, the data port,
//! one byte per I/O instruction. The device keeps a read offset per selected item, so reading on from where the
//! last read ended needs one transfer, and any other offset a select-and-skip first.

use core::sync::atomic::{Ordering, fence};

use loader::model_load::NotDelivered;
use ovmf::layout::PAGE_SIZE;
use spin::Once;
use x86_64::instructions::port::{Port, PortWriteOnly};

/// Selector register (16-bit write) and data register (8-bit read) (fw_cfg.rst, "Selector Register", "Data
/// Register").
const PORT_SELECTOR: u16 = 0x510;
const PORT_DATA: u16 = 0x511;
/// DMA address register: the descriptor's guest-physical address, big-endian, high half then low half; writing
/// the low half starts the transfer (fw_cfg.rst, "DMA interface").
const PORT_DMA_ADDRESS_HIGH: u16 = 0x514;
const PORT_DMA_ADDRESS_LOW: u16 = 0x518;
/// Well-known selectors (fw_cfg.rst, "Selector Register"; QEMU's include/standard-headers/linux/qemu_fw_cfg.h).
const FW_CFG_SIGNATURE: u16 = 0x0000;
const FW_CFG_ID: u16 = 0x0001;
const FW_CFG_FILE_DIR: u16 = 0x0019;
/// "QEMU", the signature item's contents.
const SIGNATURE: [u8; 4] = *b"QEMU";
/// FW_CFG_ID bit 1: the DMA interface is present.
const FW_CFG_VERSION_DMA: u32 = 1 << 1;
/// FWCfgDmaAccess control bits (fw_cfg.rst, "DMA interface").
const FW_CFG_DMA_CTL_ERROR: u32 = 0x01;
const FW_CFG_DMA_CTL_READ: u32 = 0x02;
const FW_CFG_DMA_CTL_SKIP: u32 = 0x04;
const FW_CFG_DMA_CTL_SELECT: u32 = 0x08;
/// A directory entry: size (u32 BE), select (u16 BE), reserved (u16), name (56 bytes, NUL-terminated).
const FILE_ENTRY_LEN: usize = 64;
const FILE_NAME_LEN: usize = 56;
/// More directory entries than this are not read.
const MAX_FILES: u32 = 256;
/// The bounce buffer: 16 pages, so a 1 MiB chunk takes 16 transfers.
const BOUNCE_PAGES: u64 = 16;
/// QEMU completes a transfer before the port write returns; a device that never does is given up on.
const MAX_POLLS: u32 = 1 << 20;

/// The DMA descriptor's page and the bounce buffer after it, in shared pages, taken once per boot.
static DMA_WINDOW: Once<u64> = Once::new();

/// A file in the device's directory.
#[derive(Clone, Copy, Debug)]
pub struct FwCfgFile {
    /// Its selector.
    item: u16,
    /// Its size, as the host declares it.
    pub size: u32,
}

/// The device, if the host gave one.
pub struct FwCfg {
    /// The DMA window's address, if the device has the DMA interface.
    dma: Option<u64>,
    /// The selected item and the device's offset in it, when known.
    position: Option<(u16, u64)>,
}

fn select(item: u16) {
    let mut port = PortWriteOnly::<u16>::new(PORT_SELECTOR);
    // SAFETY: writing the fw_cfg selector only changes which item the data port returns.
    unsafe { port.write(item) };
}

fn read_port(buf: &mut [u8]) {
    let mut port = Port::<u8>::new(PORT_DATA);
    for byte in buf {
        // SAFETY: reading the fw_cfg data port returns the next byte of the selected item.
        *byte = unsafe { port.read() };
    }
}

impl FwCfg {
    /// The device, if its signature answers; with DMA if it offers DMA.
    pub fn probe() -> Option<FwCfg> {
        let mut signature = [0u8; 4];
        select(FW_CFG_SIGNATURE);
        read_port(&mut signature);
        if signature != SIGNATURE {
            return None;
        }
        let mut id = [0u8; 4];
        select(FW_CFG_ID);
        read_port(&mut id);
        let dma = (u32::from_le_bytes(id) & FW_CFG_VERSION_DMA != 0)
            .then(|| *DMA_WINDOW.call_once(|| crate::shared::pages(1 + BOUNCE_PAGES)));
        Some(FwCfg { dma, position: None })
    }

    /// The file called `name`, if the directory lists it.
    pub fn find(&mut self, name: &str) -> Option<FwCfgFile> {
        let directory = FwCfgFile { item: FW_CFG_FILE_DIR, size: u32::MAX };
        let mut count = [0u8; 4];
        self.read(directory, 0, &mut count).ok()?;
        let mut offset = count.len() as u64;
        for _ in 0..u32::from_be_bytes(count).min(MAX_FILES) {
            let mut entry = [0u8; FILE_ENTRY_LEN];
            self.read(directory, offset, &mut entry).ok()?;
            offset += FILE_ENTRY_LEN as u64;
            let entry_name = &entry[8..8 + FILE_NAME_LEN];
            let len = entry_name.iter().position(|&b| b == 0).unwrap_or(FILE_NAME_LEN);
            if &entry_name[..len] == name.as_bytes() {
                let size = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]);
                return Some(FwCfgFile { item: u16::from_be_bytes([entry[4], entry[5]]), size });
            }
        }
        None
    }

    /// Copies `into.len()` bytes of `file` from `offset`; all of them, or an error if they lie beyond the file's
    /// declared end or the device fails.
    pub fn read(&mut self, file: FwCfgFile, offset: u64, into: &mut [u8]) -> Result<(), NotDelivered> {
        let end = offset.checked_add(into.len() as u64).ok_or(NotDelivered)?;
        if end > u64::from(file.size) {
            return Err(NotDelivered);
        }
        if self.position != Some((file.item, offset)) {
            self.seek(file.item, offset)?;
        }
        match self.dma {
            Some(window) => {
                let bounce = window + PAGE_SIZE;
                for piece in into.chunks_mut((BOUNCE_PAGES * PAGE_SIZE) as usize) {
                    transfer(window, FW_CFG_DMA_CTL_READ, piece.len() as u32, bounce)?;
                    // SAFETY: the bounce buffer is BOUNCE_PAGES mapped shared pages this module alone took, and
                    // `piece` is at most that long. The device may still write it: only plain bytes are copied.
                    unsafe { core::ptr::copy_nonoverlapping(bounce as *const u8, piece.as_mut_ptr(), piece.len()) };
                }
            }
            None => read_port(into),
        }
        self.position = Some((file.item, end));
        Ok(())
    }

    /// Selects `item` and moves the device's offset in it to `offset`.
    fn seek(&mut self, item: u16, offset: u64) -> Result<(), NotDelivered> {
        self.position = None;
        match self.dma {
            Some(window) => {
                let control = u32::from(item) << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_SKIP;
                transfer(window, control, u32::try_from(offset).map_err(|_| NotDelivered)?, 0)?;
            }
            None => {
                select(item);
                let mut skipped = [0u8; 64];
                let mut left = offset;
                while left > 0 {
                    let n = left.min(skipped.len() as u64) as usize;
                    read_port(&mut skipped[..n]);
                    left -= n as u64;
                }
            }
        }
        Ok(())
    }
}

/// FWCfgDmaAccess (fw_cfg.rst, "DMA interface"): every field big-endian.
#[repr(C)]
struct DmaAccess {
    control: u32,
    length: u32,
    address: u64,
}

/// One DMA operation: the descriptor written into the window's first page, its address given to the device, and
/// its control word polled until the device clears it.
fn transfer(window: u64, control: u32, length: u32, address: u64) -> Result<(), NotDelivered> {
    let descriptor = window as *mut DmaAccess;
    let access = DmaAccess { control: control.to_be(), length: length.to_be(), address: address.to_be() };
    // SAFETY: the window's first page is a mapped shared page this module alone took, page-aligned, so the
    // descriptor fits at its start. Volatile: the device reads and writes it.
    unsafe { descriptor.write_volatile(access) };
    fence(Ordering::SeqCst);
    let mut high = PortWriteOnly::<u32>::new(PORT_DMA_ADDRESS_HIGH);
    let mut low = PortWriteOnly::<u32>::new(PORT_DMA_ADDRESS_LOW);
    // SAFETY: the high half of the DMA address register only holds a value until the low half is written (the
    // register is big-endian, hence the swap).
    unsafe { high.write(((window >> 32) as u32).to_be()) };
    // SAFETY: this makes the device run the descriptor just written, which points into the shared window.
    unsafe { low.write((window as u32).to_be()) };
    for _ in 0..MAX_POLLS {
        fence(Ordering::SeqCst);
        // SAFETY: the descriptor's first field, as above; the device clears it when it is done.
        let control = u32::from_be(unsafe { descriptor.cast::<u32>().read_volatile() });
        if control & FW_CFG_DMA_CTL_ERROR != 0 {
            return Err(NotDelivered);
        }
        if control == 0 {
            return Ok(());
        }
        core::hint::spin_loop();
    }
    Err(NotDelivered)
}

/// Reads the fw_cfg file `name` into `buf`; the number of bytes read (the file is cut at `buf.len()`), or `None`
/// if there is no device or no such file. The host's batch limits, and the test image's fault request.
pub fn read_file(name: &str, buf: &mut [u8]) -> Option<usize> {
    let mut device = FwCfg::probe()?;
    let file = device.find(name)?;
    let n = buf.len().min(file.size as usize);
    device.read(file, 0, &mut buf[..n]).ok()?;
    Some(n)
}
