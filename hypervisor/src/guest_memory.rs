//! The guest's memory as the hypervisor reaches it: guest-physical pages and their host backing, and the guest's
//! own page tables walked in software (to read an instruction, find the #VC stack, translate PVALIDATE's operand).
//!
//! Backing: guest RAM (`0 .. GUEST_RAM_SIZE`) is identity-backed, so device DMA into shared pages needs no
//! translation; the image range below 4 GiB is backed by a copy in the hypervisor's memory (`IMAGE_BACKING`).

use ovmf::layout::{GUEST_RAM_SIZE, IMAGE, PAGE_SIZE};

use crate::svm::Vmcb;
use simulated_platform::vmsa::offset;

/// The C-bit: the CPUID page says bit 47, and QEMU runs with 48 physical address bits, so the private alias of a
/// page is a distinct guest-physical address under the nested tables (DESIGN.md §10).
pub const C_BIT: u64 = 1 << 47;

/// The TDX shared bit: GPA[GPAW - 1] (GHCI 1.5, "TD shared memory"), bit 47 for GPAW 48 and bit 51 for GPAW 52.
pub const fn shared_bit(gpaw: u8) -> u64 {
    1 << (gpaw - 1)
}

/// Which way the alias bit reads in the guest's page tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AliasBit {
    /// SEV-SNP: set means private (the C-bit).
    Private,
    /// TDX: set means shared.
    Shared,
}

/// The image's backing: the launch copies the image here.
#[repr(C, align(4096))]
pub struct ImageBacking(pub [u8; IMAGE.size as usize]);

/// The guest's memory.
pub struct GuestMemory {
    image: &'static mut ImageBacking,
    alias: AliasBit,
    alias_mask: u64,
}

/// Page-table entry bits (APM vol. 2, 5.3).
const PRESENT: u64 = 1 << 0;
const LARGE: u64 = 1 << 7;
/// Physical address bits of an entry (51:12).
const ADDRESS: u64 = 0x000f_ffff_ffff_f000;
const CR0_PG: u64 = 1 << 31;
const EFER_LMA: u64 = 1 << 10;

/// A guest virtual address translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The guest-physical address, without the C-bit.
    pub gpa: u64,
    /// Whether the final entry maps private memory (SNP: C-bit set; TDX: shared bit clear); always true with
    /// paging off, where every access is private.
    pub private: bool,
}

impl GuestMemory {
    /// The guest's memory with the image backed by `image`, its alias bit `alias_mask` read as `alias` says.
    pub fn new(image: &'static mut ImageBacking, alias: AliasBit, alias_mask: u64) -> GuestMemory {
        GuestMemory { image, alias, alias_mask }
    }

    /// What the alias bit means for this guest.
    pub fn alias(&self) -> AliasBit {
        self.alias
    }

    /// The alias bit: the C-bit (SNP) or the shared bit (TDX).
    pub fn alias_mask(&self) -> u64 {
        self.alias_mask
    }

    /// The host address backing guest-physical `gpa` (without the C-bit), if it is guest memory.
    pub fn backing(&self, gpa: u64) -> Option<u64> {
        if gpa < GUEST_RAM_SIZE {
            Some(gpa)
        } else if IMAGE.contains(gpa) {
            Some(self.image.0.as_ptr() as u64 + (gpa - IMAGE.base))
        } else {
            None
        }
    }

    /// The page at `gpa` (4 KiB aligned), mutable.
    pub fn page_mut(&mut self, gpa: u64) -> Option<&mut [u8; PAGE_SIZE as usize]> {
        let host = self.backing(gpa & !(PAGE_SIZE - 1))?;
        // SAFETY: `backing` returns page-aligned host memory that belongs to the guest (identity-backed RAM below
        // the hypervisor, or the image copy), which the hypervisor reaches only through this borrow of `self`.
        Some(unsafe { &mut *(host as *mut [u8; PAGE_SIZE as usize]) })
    }

    /// Reads `out.len()` bytes at `gpa`; false if any byte is not guest memory.
    pub fn read(&mut self, gpa: u64, out: &mut [u8]) -> bool {
        for (i, byte) in out.iter_mut().enumerate() {
            let at = gpa + i as u64;
            let Some(page) = self.page_mut(at) else { return false };
            *byte = page[(at % PAGE_SIZE) as usize];
        }
        true
    }

    /// Writes `bytes` at `gpa`; false (and possibly a partial write) if any byte is not guest memory.
    pub fn write(&mut self, gpa: u64, bytes: &[u8]) -> bool {
        for (i, byte) in bytes.iter().enumerate() {
            let at = gpa + i as u64;
            let Some(page) = self.page_mut(at) else { return false };
            page[(at % PAGE_SIZE) as usize] = *byte;
        }
        true
    }

    fn read_u64(&mut self, gpa: u64) -> Option<u64> {
        let mut bytes = [0u8; 8];
        self.read(gpa, &mut bytes).then(|| u64::from_le_bytes(bytes))
    }

    /// Translates a guest linear address through the guest's page tables, as the CPU would at the guest's
    /// current CR0, CR3 and EFER. Only the two modes the guest uses: paging off, and 4-level long-mode paging.
    pub fn translate(&mut self, vmcb: &Vmcb, linear: u64) -> Option<Translation> {
        if vmcb.state(offset::CR0) & CR0_PG == 0 {
            return Some(Translation { gpa: linear & 0xffff_ffff, private: true });
        }
        if vmcb.state(offset::EFER) & EFER_LMA == 0 {
            return None;
        }
        let address_bits = ADDRESS & !self.alias_mask;
        let mut table = vmcb.state(offset::CR3) & address_bits;
        for (level, shift) in [(4, 39), (3, 30), (2, 21), (1, 12)] {
            let entry = self.read_u64(table + ((linear >> shift) & 0x1ff) * 8)?;
            if entry & PRESENT == 0 {
                return None;
            }
            let address = entry & address_bits;
            if level == 1 || (level <= 3 && entry & LARGE != 0) {
                let page_mask = (1u64 << shift) - 1;
                let gpa = (address & !page_mask) | (linear & page_mask);
                let set = entry & self.alias_mask != 0;
                return Some(Translation { gpa, private: set == (self.alias == AliasBit::Private) });
            }
            table = address;
        }
        None
    }

    /// Reads guest-virtual memory (the guest's private mappings only).
    pub fn read_virtual(&mut self, vmcb: &Vmcb, linear: u64, out: &mut [u8]) -> bool {
        for (i, byte) in out.iter_mut().enumerate() {
            match self.translate(vmcb, linear + i as u64) {
                Some(t) if t.private => {
                    if !self.read(t.gpa, core::slice::from_mut(byte)) {
                        return false;
                    }
                }
                _ => return false,
            }
        }
        true
    }

    /// Writes guest-virtual memory (the guest's private mappings only).
    pub fn write_virtual(&mut self, vmcb: &Vmcb, linear: u64, bytes: &[u8]) -> bool {
        for (i, byte) in bytes.iter().enumerate() {
            match self.translate(vmcb, linear + i as u64) {
                Some(t) if t.private => {
                    if !self.write(t.gpa, &[*byte]) {
                        return false;
                    }
                }
                _ => return false,
            }
        }
        true
    }
}
