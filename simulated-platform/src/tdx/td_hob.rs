//! The TD HOB as QEMU writes it into the TDVF section TD_HOB (`hw/i386/tdvf-hob.c`; TDVF design guide §4.2; UEFI PI
//! vol. 3): a PHIT, one resource descriptor per RAM range (system memory for what the TD build added, unaccepted
//! memory for the rest), the end marker. The guest reads it with `ovmf::tdx::hob`, which trusts none of it.

use ovmf::tdx::hob::{
    EFI_HOB_HANDOFF_TABLE_VERSION, EFI_HOB_TYPE_END_OF_HOB_LIST, EFI_HOB_TYPE_HANDOFF,
    EFI_HOB_TYPE_RESOURCE_DESCRIPTOR, EFI_RESOURCE_MEMORY_UNACCEPTED, EFI_RESOURCE_SYSTEM_MEMORY,
};

const HANDOFF_LEN: usize = 56;
const RESOURCE_LEN: usize = 48;
const END_LEN: usize = 8;
/// EFI_RESOURCE_ATTRIBUTE_PRESENT | INITIALIZED | TESTED, as QEMU sets them for RAM.
const RAM_ATTRIBUTES: u32 = 0x7;

/// One RAM range: accepted (added by the TD build) or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamRange {
    /// The first address.
    pub start: u64,
    /// The length.
    pub length: u64,
    /// Added and accepted already (system memory), or unaccepted.
    pub accepted: bool,
}

fn header(out: &mut [u8], kind: u16, length: usize) {
    out[0..2].copy_from_slice(&kind.to_le_bytes());
    out[2..4].copy_from_slice(&(length as u16).to_le_bytes());
}

/// The HOB list for `ranges` at guest address `base`, in `out` (the section); `None` if it does not fit.
pub fn encode(ranges: &[RamRange], base: u64, out: &mut [u8]) -> Option<usize> {
    let length = HANDOFF_LEN + ranges.len() * RESOURCE_LEN + END_LEN;
    if length > out.len() {
        return None;
    }
    out.fill(0);
    header(&mut out[..HANDOFF_LEN], EFI_HOB_TYPE_HANDOFF, HANDOFF_LEN);
    out[8..12].copy_from_slice(&EFI_HOB_HANDOFF_TABLE_VERSION.to_le_bytes());
    // EfiFreeMemoryBottom/Top and EfiEndOfHobList (the PHIT's offsets 40, 32 and 48 in QEMU's layout).
    let end = base + length as u64;
    out[48..56].copy_from_slice(&end.to_le_bytes());
    for (i, range) in ranges.iter().enumerate() {
        let at = HANDOFF_LEN + i * RESOURCE_LEN;
        let hob = &mut out[at..at + RESOURCE_LEN];
        header(hob, EFI_HOB_TYPE_RESOURCE_DESCRIPTOR, RESOURCE_LEN);
        let kind = if range.accepted { EFI_RESOURCE_SYSTEM_MEMORY } else { EFI_RESOURCE_MEMORY_UNACCEPTED };
        hob[24..28].copy_from_slice(&kind.to_le_bytes());
        hob[28..32].copy_from_slice(&RAM_ATTRIBUTES.to_le_bytes());
        hob[32..40].copy_from_slice(&range.start.to_le_bytes());
        hob[40..48].copy_from_slice(&range.length.to_le_bytes());
    }
    header(&mut out[length - END_LEN..length], EFI_HOB_TYPE_END_OF_HOB_LIST, END_LEN);
    Some(length)
}

/// The RAM ranges of `[0, ram_end)`: the `added` ranges (sorted, inside it) accepted, the gaps unaccepted.
pub fn ram_ranges(ram_end: u64, added: &[(u64, u64)], out: &mut [RamRange]) -> Option<usize> {
    let mut count = 0;
    let mut push = |range: RamRange| -> Option<()> {
        *out.get_mut(count)? = range;
        count += 1;
        Some(())
    };
    let mut at = 0;
    for &(start, length) in added {
        if start < at || start + length > ram_end {
            return None;
        }
        if start > at {
            push(RamRange { start: at, length: start - at, accepted: false })?;
        }
        push(RamRange { start, length, accepted: true })?;
        at = start + length;
    }
    if at < ram_end {
        push(RamRange { start: at, length: ram_end - at, accepted: false })?;
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use ovmf::layout::{HEAP, IMAGE, TD_HOB};
    use ovmf::tdx::hob::TdHob;

    use super::*;

    #[test]
    fn the_guest_reads_the_hob_and_finds_its_heap_unaccepted() {
        let added = [(1 << 20, 7 << 20), (8 << 20, 64 << 10), (TD_HOB.base, TD_HOB.size)];
        let mut ranges = [RamRange { start: 0, length: 0, accepted: false }; 8];
        let count = ram_ranges(256 << 20, &added, &mut ranges).unwrap();
        assert_eq!(count, 6, "{ranges:?}");
        let mut section = [0u8; 8192];
        encode(&ranges[..count], TD_HOB.base, &mut section).unwrap();
        let hob = TdHob::parse(&section, IMAGE).unwrap();
        assert!(hob.unaccepted_covers(HEAP));
        assert_eq!(hob.resources().count(), count);
    }

    #[test]
    fn ranges_outside_ram_or_out_of_order_are_refused() {
        let mut ranges = [RamRange { start: 0, length: 0, accepted: false }; 4];
        assert_eq!(ram_ranges(1 << 20, &[(0, 2 << 20)], &mut ranges), None);
        assert_eq!(ram_ranges(16 << 20, &[(8 << 20, 4096), (4 << 20, 4096)], &mut ranges), None);
        assert_eq!(
            ram_ranges(16 << 20, &[(4096, 4096), (3 * 4096, 4096), (5 * 4096, 4096)], &mut ranges),
            None,
            "too many"
        );
    }
}
