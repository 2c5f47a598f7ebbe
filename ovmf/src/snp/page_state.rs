//! Page-state changes in batches through the GHCB (GHCB specification rev. 2.03, §4.1.6, "SNP Page State Change",
//! exit code 0x8000_0010): the request is a descriptor in the GHCB's shared buffer, a header and up to
//! [`MAX_ENTRIES`] entries, each a 4 KiB or 2 MiB range to make private or shared. The hypervisor may stop part
//! way: it advances CUR_ENTRY, and the guest exits again until CUR_ENTRY passes END_ENTRY.
//!
//! ```text
//! header: CUR_ENTRY u16 | END_ENTRY u16 | reserved u32
//! entry:  CUR_PAGE [11:0] | GFN [51:12] | OPERATION [55:52] | PAGE_SIZE [56] (0 = 4 KiB, 1 = 2 MiB) | reserved
//! ```
//!
//! Both sides use this module: the guest writes descriptors (`kernel/src/snp/memory.rs`), the simulated platform's
//! hypervisor reads them.

use crate::snp::ghcb::SHARED_BUFFER_LEN;
use crate::snp::ghcb_msr::PageState;

const HEADER_LEN: usize = 8;
const ENTRY_LEN: usize = 8;
/// The most entries a descriptor in the shared buffer holds.
pub const MAX_ENTRIES: usize = (SHARED_BUFFER_LEN - HEADER_LEN) / ENTRY_LEN;
const GFN_MASK: u64 = 0xff_ffff_ffff;
const OPERATION_SHIFT: u32 = 52;
const PAGE_SIZE_2M: u64 = 1 << 56;

/// One entry: a 4 KiB or 2 MiB range (by its first frame) and the state it is to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageStateEntry {
    /// The first guest frame (4 KiB units; 2 MiB aligned for a large entry).
    pub gfn: u64,
    /// The state asked for.
    pub state: PageState,
    /// A 2 MiB range rather than 4 KiB.
    pub large: bool,
}

impl PageStateEntry {
    /// The entry's encoding (CUR_PAGE 0).
    pub fn encode(&self) -> Option<u64> {
        if self.gfn & !GFN_MASK != 0 || (self.large && !self.gfn.is_multiple_of(512)) {
            return None;
        }
        let size = if self.large { PAGE_SIZE_2M } else { 0 };
        Some(size | ((self.state as u64) << OPERATION_SHIFT) | (self.gfn << 12))
    }

    /// Reads an entry; `None` for an operation other than private or shared, reserved bits set, or a large entry
    /// that is not 2 MiB aligned.
    pub fn decode(value: u64) -> Option<PageStateEntry> {
        if value >> 57 != 0 {
            return None;
        }
        let state = match (value >> OPERATION_SHIFT) & 0xf {
            1 => PageState::Private,
            2 => PageState::Shared,
            _ => return None,
        };
        let entry = PageStateEntry { gfn: (value >> 12) & GFN_MASK, state, large: value & PAGE_SIZE_2M != 0 };
        (!entry.large || entry.gfn.is_multiple_of(512)).then_some(entry)
    }

    /// The number of 4 KiB frames the entry covers.
    pub fn frames(&self) -> u64 {
        if self.large { 512 } else { 1 }
    }
}

/// Why a descriptor is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescriptorError {
    /// More entries than fit, or none.
    Count,
    /// An entry that does not encode (or decode).
    Entry(usize),
    /// The buffer is not the shared buffer's size.
    Buffer,
}

/// Writes a descriptor for `entries` into `buffer` (the GHCB's shared buffer): CUR_ENTRY 0, END_ENTRY the last.
pub fn encode(entries: &[PageStateEntry], buffer: &mut [u8]) -> Result<(), DescriptorError> {
    if buffer.len() != SHARED_BUFFER_LEN {
        return Err(DescriptorError::Buffer);
    }
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        return Err(DescriptorError::Count);
    }
    buffer.fill(0);
    buffer[2..4].copy_from_slice(&((entries.len() - 1) as u16).to_le_bytes());
    for (i, entry) in entries.iter().enumerate() {
        let value = entry.encode().ok_or(DescriptorError::Entry(i))?;
        buffer[HEADER_LEN + i * ENTRY_LEN..HEADER_LEN + (i + 1) * ENTRY_LEN].copy_from_slice(&value.to_le_bytes());
    }
    Ok(())
}

/// CUR_ENTRY and END_ENTRY of the descriptor in `buffer`.
pub fn progress(buffer: &[u8]) -> (u16, u16) {
    (u16::from_le_bytes([buffer[0], buffer[1]]), u16::from_le_bytes([buffer[2], buffer[3]]))
}

/// Sets CUR_ENTRY (the hypervisor, as it goes).
pub fn set_current(buffer: &mut [u8], current: u16) {
    buffer[..2].copy_from_slice(&current.to_le_bytes());
}

/// Entry `index` of the descriptor in `buffer`, decoded; `None` if out of range or malformed.
pub fn entry(buffer: &[u8], index: usize) -> Option<PageStateEntry> {
    if index >= MAX_ENTRIES {
        return None;
    }
    let at = HEADER_LEN + index * ENTRY_LEN;
    PageStateEntry::decode(u64::from_le_bytes(buffer.get(at..at + ENTRY_LEN)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_round_trips_and_holds_253_entries() {
        assert_eq!(MAX_ENTRIES, 253);
        let entries = [
            PageStateEntry { gfn: 0x1000, state: PageState::Private, large: true },
            PageStateEntry { gfn: 0x901, state: PageState::Shared, large: false },
        ];
        let mut buffer = [0xffu8; SHARED_BUFFER_LEN];
        encode(&entries, &mut buffer).unwrap();
        assert_eq!(progress(&buffer), (0, 1));
        assert_eq!(entry(&buffer, 0), Some(entries[0]));
        assert_eq!(entry(&buffer, 1), Some(entries[1]));
        set_current(&mut buffer, 2);
        assert_eq!(progress(&buffer), (2, 1));
        // The encoding the specification gives: GFN in 51:12, operation in 55:52, page size in 56.
        assert_eq!(entries[0].encode(), Some((1 << 56) | (1 << 52) | (0x1000 << 12)));
    }

    #[test]
    fn malformed_descriptors_and_entries_are_refused() {
        let mut buffer = [0u8; SHARED_BUFFER_LEN];
        let entry_of = |gfn, large| PageStateEntry { gfn, state: PageState::Private, large };
        assert_eq!(encode(&[], &mut buffer), Err(DescriptorError::Count));
        assert_eq!(encode(&[entry_of(0, false); MAX_ENTRIES + 1], &mut buffer), Err(DescriptorError::Count));
        assert_eq!(encode(&[entry_of(1, true)], &mut buffer), Err(DescriptorError::Entry(0)), "large, misaligned");
        assert_eq!(encode(&[entry_of(1 << 40, false)], &mut buffer), Err(DescriptorError::Entry(0)));
        assert_eq!(encode(&[entry_of(0, false)], &mut [0u8; 8]), Err(DescriptorError::Buffer));
        assert_eq!(PageStateEntry::decode(3 << 52), None, "an operation other than private or shared");
        assert_eq!(PageStateEntry::decode((1 << 52) | (1 << 60)), None, "reserved bits");
        assert_eq!(PageStateEntry::decode((1 << 56) | (1 << 52) | (1 << 12)), None, "a misaligned large entry");
        assert_eq!(entry(&buffer, MAX_ENTRIES), None);
    }
}
