//! The TD HOB: the hand-off block list the VMM writes into the TDVF section TD_HOB before launch (TDVF design
//! guide §4.2; UEFI PI spec vol. 3, "HOB code definitions"). QEMU writes a PHIT, one resource descriptor per RAM
//! range (accepted or not) and the end marker (`hw/i386/tdvf-hob.c`).
//!
//! The TD HOB's contents are not measured: the VMM may write anything. [`TdHob::parse`] checks every length
//! against the bytes, the PHIT first, the end marker present, and that no RAM it describes overlaps the image;
//! [`TdHob::unaccepted_covers`] is then what the kernel asks before it accepts memory: the VMM must have declared
//! the range as unaccepted RAM. HOB types other than these three are bounds-checked and skipped.

use crate::layout::Region;
use crate::le_bytes::{u16_at, u32_at, u64_at};

/// EFI_HOB_TYPE_HANDOFF: the PHIT, first in every HOB list.
pub const EFI_HOB_TYPE_HANDOFF: u16 = 0x0001;
/// EFI_HOB_TYPE_RESOURCE_DESCRIPTOR.
pub const EFI_HOB_TYPE_RESOURCE_DESCRIPTOR: u16 = 0x0003;
/// EFI_HOB_TYPE_END_OF_HOB_LIST.
pub const EFI_HOB_TYPE_END_OF_HOB_LIST: u16 = 0xffff;
/// EFI_HOB_HANDOFF_TABLE_VERSION.
pub const EFI_HOB_HANDOFF_TABLE_VERSION: u32 = 0x0009;
/// EFI_RESOURCE_SYSTEM_MEMORY: RAM already added to the TD (TDVF sections).
pub const EFI_RESOURCE_SYSTEM_MEMORY: u32 = 0;
/// EFI_RESOURCE_MEMORY_UNACCEPTED (PI 1.8): RAM the TD must accept before use.
pub const EFI_RESOURCE_MEMORY_UNACCEPTED: u32 = 7;

/// EFI_HOB_GENERIC_HEADER: type, length, reserved.
const HEADER_LEN: usize = 8;
/// EFI_HOB_HANDOFF_INFO_TABLE.
const HANDOFF_LEN: usize = 56;
/// EFI_HOB_RESOURCE_DESCRIPTOR: header, owner GUID, type, attributes, start, length.
const RESOURCE_DESCRIPTOR_LEN: usize = 48;

/// Why the TD HOB was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HobError {
    /// A HOB at this offset runs past the TD HOB section or is shorter than its type needs.
    BadLength(usize),
    /// The list does not start with a PHIT of the known version.
    NoHandoffTable,
    /// No end marker within the section.
    NoEnd,
    /// The resource descriptor at this offset wraps around the address space.
    Overflow(usize),
    /// The resource descriptor at this offset declares RAM inside the image.
    RamOverlapsImage(usize),
}

/// One resource descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource {
    /// EFI_RESOURCE_TYPE.
    pub kind: u32,
    /// PhysicalStart.
    pub start: u64,
    /// ResourceLength.
    pub length: u64,
}

/// A TD HOB that passed [`TdHob::parse`].
#[derive(Clone, Copy, Debug)]
pub struct TdHob<'a> {
    /// The list up to and including the end marker.
    list: &'a [u8],
}

/// The HOBs of a list whose lengths were checked: (offset, type, the HOB's bytes).
#[derive(Clone)]
struct Hobs<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Hobs<'a> {
    type Item = Result<(usize, u16, &'a [u8]), HobError>;

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.at;
        if at >= self.bytes.len() {
            return None;
        }
        let (Some(kind), Some(length)) = (u16_at(self.bytes, at), u16_at(self.bytes, at + 2)) else {
            self.at = self.bytes.len();
            return Some(Err(HobError::BadLength(at)));
        };
        let length = usize::from(length);
        let needed = match kind {
            EFI_HOB_TYPE_HANDOFF => HANDOFF_LEN,
            EFI_HOB_TYPE_RESOURCE_DESCRIPTOR => RESOURCE_DESCRIPTOR_LEN,
            _ => HEADER_LEN,
        };
        // HOBs are 8-byte aligned (PI spec vol. 3, 5.2); every type's length covers at least the header.
        if length < needed || !length.is_multiple_of(8) || length > self.bytes.len() - at {
            self.at = self.bytes.len();
            return Some(Err(HobError::BadLength(at)));
        }
        self.at = at + length;
        Some(Ok((at, kind, &self.bytes[at..at + length])))
    }
}

/// The resource descriptor in `hob` (at least RESOURCE_DESCRIPTOR_LEN bytes, as `Hobs` checked).
fn resource(hob: &[u8]) -> Option<Resource> {
    Some(Resource { kind: u32_at(hob, 24)?, start: u64_at(hob, 32)?, length: u64_at(hob, 40)? })
}

impl<'a> TdHob<'a> {
    /// Checks the TD HOB section's bytes; `image` is the range no RAM may overlap.
    pub fn parse(bytes: &'a [u8], image: Region) -> Result<Self, HobError> {
        let mut hobs = Hobs { bytes, at: 0 };
        match hobs.next() {
            Some(Ok((_, EFI_HOB_TYPE_HANDOFF, phit))) if u32_at(phit, 8) == Some(EFI_HOB_HANDOFF_TABLE_VERSION) => {}
            Some(Err(e)) => return Err(e),
            _ => return Err(HobError::NoHandoffTable),
        }
        for hob in hobs {
            let (at, kind, hob) = hob?;
            match kind {
                EFI_HOB_TYPE_END_OF_HOB_LIST => return Ok(TdHob { list: &bytes[..at + hob.len()] }),
                EFI_HOB_TYPE_RESOURCE_DESCRIPTOR => {
                    let r = resource(hob).ok_or(HobError::BadLength(at))?;
                    let end = r.start.checked_add(r.length).ok_or(HobError::Overflow(at))?;
                    let ram = matches!(r.kind, EFI_RESOURCE_SYSTEM_MEMORY | EFI_RESOURCE_MEMORY_UNACCEPTED);
                    if ram && r.start < image.end() && image.base < end {
                        return Err(HobError::RamOverlapsImage(at));
                    }
                }
                _ => {}
            }
        }
        Err(HobError::NoEnd)
    }

    /// Every resource descriptor, in list order.
    pub fn resources(&self) -> impl Iterator<Item = Resource> + Clone + 'a {
        Hobs { bytes: self.list, at: 0 }
            .filter_map(Result::ok)
            .filter(|&(_, kind, _)| kind == EFI_HOB_TYPE_RESOURCE_DESCRIPTOR)
            .filter_map(|(_, _, hob)| resource(hob))
    }

    /// Whether every byte of `range` lies in RAM the VMM declared unaccepted (in one descriptor or several
    /// adjoining ones).
    pub fn unaccepted_covers(&self, range: Region) -> bool {
        let mut covered_to = range.base;
        while covered_to < range.end() {
            let next = self
                .resources()
                .filter(|r| r.kind == EFI_RESOURCE_MEMORY_UNACCEPTED)
                .filter(|r| r.start <= covered_to && covered_to < r.start + r.length)
                .map(|r| r.start + r.length)
                .max();
            match next {
                Some(end) => covered_to = end,
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests;
