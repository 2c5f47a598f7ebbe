//! How much heap the guest has: as much RAM as the platform's memory map declares from [`HEAP`]'s base on, up to
//! [`HEAP`]'s end (the layout's bound), in whole 2 MiB pages, and never less than [`MIN_HEAP_SIZE`].
//!
//! The map is the host's word: QEMU's fw_cfg file `etc/e820` (plain and SEV-SNP, as OVMF reads it) or the TD HOB's
//! unaccepted-RAM descriptors (TDX, checked by [`crate::tdx::hob`]). A host that declares RAM it does not back gets
//! a guest that stops when it validates or accepts the missing pages; one that declares less gets a smaller heap or
//! a refusal. Either way the heap never leaves the bound the layout reserves for it.

use crate::layout::{HEAP, MIB, Region};

/// The smallest heap the guest runs with: the MLP main job needs a few MiB; below this the map is not believed.
pub const MIN_HEAP_SIZE: u64 = 64 * MIB;
/// Heap ranges are validated and accepted as 2 MiB pages.
const LARGE_PAGE: u64 = 2 * MIB;
/// `etc/e820` entries: address u64, length u64, type u32, all little-endian (QEMU's hw/i386/e820_memory_layout.h).
pub const E820_ENTRY_LEN: usize = 20;
/// E820_RAM.
const E820_RAM: u32 = 1;
/// More entries than this are not read (QEMU writes a handful).
pub const MAX_E820_ENTRIES: usize = 128;

/// Why the map gives no heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryMapError {
    /// `etc/e820` is not a whole number of entries, or has too many.
    Malformed,
    /// No RAM range holds the heap's base, or it holds less than [`MIN_HEAP_SIZE`] from there.
    TooLittleRam,
}

/// The RAM ranges (start, end) of an `etc/e820` file.
pub fn e820_ram(bytes: &[u8]) -> Result<impl Iterator<Item = (u64, u64)> + Clone + '_, MemoryMapError> {
    if !bytes.len().is_multiple_of(E820_ENTRY_LEN) || bytes.len() / E820_ENTRY_LEN > MAX_E820_ENTRIES {
        return Err(MemoryMapError::Malformed);
    }
    let field = |entry: &[u8], at: usize| u64::from_le_bytes(entry[at..at + 8].try_into().expect("8 bytes"));
    Ok(bytes
        .chunks_exact(E820_ENTRY_LEN)
        .filter(|entry| u32::from_le_bytes(entry[16..20].try_into().expect("4 bytes")) == E820_RAM)
        .filter_map(move |entry| Some((field(entry, 0), field(entry, 0).checked_add(field(entry, 8))?))))
}

/// The heap for RAM `ranges` (start, end): from [`HEAP`]'s base to the end of the RAM that holds it, or of
/// adjoining RAM after it, capped at [`HEAP`]'s end and rounded down to 2 MiB.
pub fn heap(ranges: impl Iterator<Item = (u64, u64)> + Clone) -> Result<Region, MemoryMapError> {
    let mut end = HEAP.base;
    // Each pass extends `end` through one more range that holds it; at most one pass per range.
    while let Some(next) = ranges.clone().filter(|&(start, stop)| start <= end && end < stop).map(|(_, s)| s).max() {
        end = next;
        if end >= HEAP.end() {
            break;
        }
    }
    let end = end.min(HEAP.end()) / LARGE_PAGE * LARGE_PAGE;
    let size = end.saturating_sub(HEAP.base);
    if size < MIN_HEAP_SIZE {
        return Err(MemoryMapError::TooLittleRam);
    }
    Ok(Region { name: "HEAP", base: HEAP.base, size })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    fn e820(entries: &[(u64, u64, u32)]) -> Vec<u8> {
        let field = |&(address, length, kind): &(u64, u64, u32)| {
            [&address.to_le_bytes()[..], &length.to_le_bytes(), &kind.to_le_bytes()].concat()
        };
        entries.iter().flat_map(field).collect()
    }

    fn heap_of(entries: &[(u64, u64, u32)]) -> Result<Region, MemoryMapError> {
        let bytes = e820(entries);
        heap(e820_ram(&bytes)?)
    }

    #[test]
    fn qemu_q35_maps_give_the_heap_up_to_ram_or_the_bound() {
        // QEMU q35 with -m 256M: RAM below 640 KiB is its own entry in some versions; the rest one entry.
        let map = [(0, 0x9fc00, 1), (0x9fc00, 0x400, 2), (0x100000, 255 * MIB, 1), (0xfeffc000, 0x4000, 2)];
        assert_eq!(heap_of(&map), Ok(Region { name: "HEAP", base: HEAP.base, size: 256 * MIB - HEAP.base }));
        // 100 MiB of RAM: the heap ends there (rounded down to 2 MiB).
        let small = heap_of(&[(0, 101 * MIB, 1)]).unwrap();
        assert_eq!(small.end(), 100 * MIB);
        // 2 GiB below 4 GiB: capped at the layout's bound.
        assert_eq!(heap_of(&[(0, 2048 * MIB, 1)]).unwrap(), HEAP);
        // Adjoining ranges count as one.
        assert_eq!(heap_of(&[(0, 40 * MIB, 1), (40 * MIB, 60 * MIB, 1)]).unwrap().end(), 100 * MIB);
    }

    #[test]
    fn too_little_or_no_ram_at_the_heap_and_malformed_maps_are_refused() {
        assert_eq!(heap_of(&[(0, 64 * MIB, 1)]), Err(MemoryMapError::TooLittleRam));
        assert_eq!(heap_of(&[(0, 8 * MIB, 1), (20 * MIB, 200 * MIB, 1)]), Err(MemoryMapError::TooLittleRam));
        assert_eq!(heap_of(&[(0, 256 * MIB, 2)]), Err(MemoryMapError::TooLittleRam));
        assert_eq!(heap_of(&[(1, u64::MAX, 1)]), Err(MemoryMapError::TooLittleRam), "an overflowing entry is skipped");
        assert_eq!(heap_of(&[]), Err(MemoryMapError::TooLittleRam));
        assert!(e820_ram(&[0; 21]).is_err());
        assert!(e820_ram(&[0; E820_ENTRY_LEN * (MAX_E820_ENTRIES + 1)]).is_err());
    }
}
