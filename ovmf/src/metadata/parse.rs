//! A strict reader of the metadata of an image: used by `cargo xtask measure`, fuzzed, and never panics. It refuses
//! (with an error naming the problem) anything a VMM could read differently from what the measurement assumes:
//! truncated or misaligned structures, unknown or duplicate entries, overlapping or out-of-range sections.

use core::fmt;

use super::encode::{ENTRY_HEADER_LEN, SEV_HEADER_LEN, SEV_SECTION_LEN, TDVF_HEADER_LEN, TDVF_SECTION_LEN};
use super::{
    FOOTER_GUID, Guid, METADATA_VERSION, SEV_ES_RESET_BLOCK_GUID, SEV_METADATA_OFFSET_GUID, SEV_METADATA_SIGNATURE,
    SevSection, SevSectionType, TDVF_ATTRIBUTE_MR_EXTEND, TDVF_METADATA_GUID, TDVF_SIGNATURE, TDX_METADATA_OFFSET_GUID,
    TdvfSection, TdvfSectionType,
};
use crate::layout::{IMAGE_END, PAGE_SIZE};
use crate::le_bytes::{bytes_at, u16_at, u32_at, u64_at};

/// The most sections of either kind the parser accepts.
pub const MAX_SECTIONS: usize = 16;
/// The footer table ends this far below the end of the image.
const TABLE_END_FROM_IMAGE_END: usize = 0x20;

/// A bounded list of sections (no allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sections<T> {
    items: [T; MAX_SECTIONS],
    len: usize,
}

impl<T: Copy + Default> Sections<T> {
    fn new() -> Self {
        Self { items: [T::default(); MAX_SECTIONS], len: 0 }
    }

    /// The sections, in metadata order.
    pub fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }
}

/// The parsed metadata of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// Where the image is mapped: 4 GiB - its size.
    pub image_base: u64,
    /// The real-mode address where the VMM starts APs under SEV-ES/SNP.
    pub sev_es_ap_entry: u32,
    /// SEV metadata sections, in order.
    pub sev_sections: Sections<SevSection>,
    /// TDVF sections, in order.
    pub tdvf_sections: Sections<TdvfSection>,
}

/// Why an image's metadata was refused. The fields are the values found; `Display` says what is wrong with them.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataError {
    /// The image is empty, not a whole number of pages, or larger than 4 GiB.
    ImageSize { len: usize },
    /// No footer GUID at 4 GiB - 0x30.
    FooterMissing,
    /// The footer's table length is too small or reaches before the start of the image.
    TableLength { length: usize },
    /// A table entry is shorter than its header or longer than what is left of the table.
    EntryLength { at: usize, length: usize },
    /// The same GUID appears twice.
    DuplicateEntry(Guid),
    /// A GUID Ampoule does not know (its meaning to a VMM, and so to the measurement, is unknown).
    UnknownEntry(Guid),
    /// A required entry is missing.
    MissingEntry(&'static str),
    /// An entry's data is not the 4 bytes expected.
    EntryDataSize { guid: Guid, len: usize },
    /// An offset or address points outside the image or into the footer table.
    OutOfImage { what: &'static str, value: u64 },
    /// A structure does not start on a 4-byte boundary.
    Misaligned { what: &'static str, value: u64 },
    /// A bad signature.
    Signature { what: &'static str },
    /// A version other than 1.
    Version { what: &'static str, version: u32 },
    /// A length that does not match the section count, or too many sections.
    Length { what: &'static str, length: u32, count: u32 },
    /// The TDVF metadata GUID is not right before the descriptor.
    TdvfGuidMissing,
    /// A section type that is not defined.
    UnknownSectionType { what: &'static str, value: u32 },
    /// A defined section type that Ampoule's measurement does not model.
    UnsupportedSectionType { what: &'static str, value: u32 },
    /// A section that is empty, not page-aligned, or wraps around.
    BadRange { what: &'static str, address: u64, size: u64 },
    /// A RAM section beyond the guest's RAM, or a firmware section outside the image.
    OutOfRange { what: &'static str, address: u64, size: u64 },
    /// Two sections of the same kind of metadata overlap.
    Overlap { what: &'static str, first: u64, second: u64 },
    /// The SNP secrets or CPUID section is not exactly one page, or appears more than once, or not at all.
    SnpPage { what: &'static str },
    /// A TDVF section's data fields do not fit its type (see DESIGN.md §9).
    RawData { what: &'static str },
    /// Attribute bits other than MR.EXTEND, or MR.EXTEND on memory that has no image bytes.
    Attributes { value: u32 },
    /// Not exactly one TD_HOB, or no BFV.
    TdvfShape { what: &'static str },
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use MetadataError::*;
        match *self {
            ImageSize { len } => write!(f, "image size {len} is not a whole number of 4 KiB pages up to 4 GiB"),
            FooterMissing => write!(f, "no OVMF footer GUID ({FOOTER_GUID}) at 4 GiB - 0x30"),
            TableLength { length } => write!(f, "footer table length {length} is out of range"),
            EntryLength { at, length } => write!(f, "footer table entry ending at offset {at:#x} has length {length}"),
            DuplicateEntry(g) => write!(f, "footer table entry {g} appears twice"),
            UnknownEntry(g) => write!(f, "footer table entry {g} is unknown"),
            MissingEntry(what) => write!(f, "footer table has no {what} entry"),
            EntryDataSize { guid, len } => write!(f, "footer table entry {guid} has {len} data bytes, expected 4"),
            OutOfImage { what, value } => write!(f, "{what} {value:#x} lies outside the image or in the table"),
            Misaligned { what, value } => write!(f, "{what} {value:#x} is not 4-byte aligned"),
            Signature { what } => write!(f, "{what} has a bad signature"),
            Version { what, version } => write!(f, "{what} has version {version}, expected 1"),
            Length { what, length, count } => write!(f, "{what} length {length} does not fit {count} sections"),
            TdvfGuidMissing => write!(f, "the TDVF metadata GUID ({TDVF_METADATA_GUID}) is not before the descriptor"),
            UnknownSectionType { what, value } => write!(f, "{what} section type {value:#x} is not defined"),
            UnsupportedSectionType { what, value } => write!(f, "{what} section type {value:#x} is not supported"),
            BadRange { what, address, size } => {
                write!(f, "{what} section {address:#x}+{size:#x} is empty, not page-aligned, or wraps")
            }
            OutOfRange { what, address, size } => {
                write!(f, "{what} section {address:#x}+{size:#x} lies outside guest RAM or the image")
            }
            Overlap { what, first, second } => write!(f, "{what} sections at {first:#x} and {second:#x} overlap"),
            SnpPage { what } => write!(f, "the SNP {what} section must appear exactly once and be exactly 4 KiB"),
            RawData { what } => write!(f, "TDVF {what} section has data fields that do not fit its type"),
            Attributes { value } => write!(f, "TDVF section attributes {value:#x} are not supported"),
            TdvfShape { what } => write!(f, "TDVF descriptor must have {what}"),
        }
    }
}

fn guid_at(image: &[u8], at: usize) -> Option<Guid> {
    Some(Guid(bytes_at(image, at, 16)?.try_into().ok()?))
}

/// The three u32 values of the footer table, and where the table starts.
struct Table {
    start: usize,
    tdx_offset: u32,
    sev_offset: u32,
    ap_entry: u32,
}

fn parse_table(image: &[u8]) -> Result<Table, MetadataError> {
    let len = image.len();
    let footer_end = len - TABLE_END_FROM_IMAGE_END;
    let footer_start = footer_end - ENTRY_HEADER_LEN;
    if guid_at(image, footer_start + 2) != Some(FOOTER_GUID) {
        return Err(MetadataError::FooterMissing);
    }
    let length = usize::from(u16_at(image, footer_start).ok_or(MetadataError::FooterMissing)?);
    if length < ENTRY_HEADER_LEN || length > footer_end {
        return Err(MetadataError::TableLength { length });
    }
    let start = footer_end - length;
    let (mut tdx, mut sev, mut ap) = (None, None, None);
    let mut end = footer_start;
    while end > start {
        let entry_length = match (end - start >= ENTRY_HEADER_LEN).then(|| u16_at(image, end - ENTRY_HEADER_LEN)) {
            Some(Some(l)) => usize::from(l),
            _ => return Err(MetadataError::EntryLength { at: end, length: end - start }),
        };
        if entry_length < ENTRY_HEADER_LEN || entry_length > end - start {
            return Err(MetadataError::EntryLength { at: end, length: entry_length });
        }
        let guid = guid_at(image, end - 16).ok_or(MetadataError::EntryLength { at: end, length: entry_length })?;
        let data = &image[end - entry_length..end - ENTRY_HEADER_LEN];
        let slot = match guid {
            g if g == TDX_METADATA_OFFSET_GUID => &mut tdx,
            g if g == SEV_METADATA_OFFSET_GUID => &mut sev,
            g if g == SEV_ES_RESET_BLOCK_GUID => &mut ap,
            g if g == FOOTER_GUID => return Err(MetadataError::DuplicateEntry(g)),
            g => return Err(MetadataError::UnknownEntry(g)),
        };
        if slot.is_some() {
            return Err(MetadataError::DuplicateEntry(guid));
        }
        let value: [u8; 4] = data.try_into().map_err(|_| MetadataError::EntryDataSize { guid, len: data.len() })?;
        *slot = Some(u32::from_le_bytes(value));
        end -= entry_length;
    }
    Ok(Table {
        start,
        tdx_offset: tdx.ok_or(MetadataError::MissingEntry("TDX metadata offset"))?,
        sev_offset: sev.ok_or(MetadataError::MissingEntry("SEV metadata offset"))?,
        ap_entry: ap.ok_or(MetadataError::MissingEntry("SEV-ES reset block"))?,
    })
}

/// Where a structure `offset` bytes before the end of the image starts, if it and its `header_len` bytes lie in the
/// image below the footer table and start 4-byte aligned.
fn structure_start(
    image: &[u8],
    table_start: usize,
    offset: u32,
    header_len: usize,
    what: &'static str,
) -> Result<usize, MetadataError> {
    let start =
        image.len().checked_sub(offset as usize).ok_or(MetadataError::OutOfImage { what, value: offset.into() })?;
    if start.checked_add(header_len).is_none_or(|end| end > table_start) {
        return Err(MetadataError::OutOfImage { what, value: offset.into() });
    }
    if !start.is_multiple_of(4) {
        return Err(MetadataError::Misaligned { what, value: offset.into() });
    }
    Ok(start)
}

/// Checks a structure's signature, version and `length == header + count * section`; returns the count.
fn structure_header(
    image: &[u8],
    start: usize,
    table_start: usize,
    signature: [u8; 4],
    (header_len, section_len): (usize, usize),
    what: &'static str,
) -> Result<usize, MetadataError> {
    let header = (u32_at(image, start + 4), u32_at(image, start + 8), u32_at(image, start + 12));
    let (Some(length), Some(version), Some(count)) = header else {
        return Err(MetadataError::OutOfImage { what, value: start as u64 });
    };
    if bytes_at(image, start, 4) != Some(&signature[..]) {
        return Err(MetadataError::Signature { what });
    }
    if version != METADATA_VERSION {
        return Err(MetadataError::Version { what, version });
    }
    let expected = (count as usize).checked_mul(section_len).and_then(|n| n.checked_add(header_len));
    if count as usize > MAX_SECTIONS || expected != Some(length as usize) {
        return Err(MetadataError::Length { what, length, count });
    }
    if start + length as usize > table_start {
        return Err(MetadataError::OutOfImage { what, value: start as u64 });
    }
    Ok(count as usize)
}

/// Checks that `[address, address + size)` is non-empty, page-aligned and does not wrap.
fn page_range(what: &'static str, address: u64, size: u64) -> Result<u64, MetadataError> {
    let end = address.checked_add(size);
    if size == 0 || !address.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) || end.is_none() {
        return Err(MetadataError::BadRange { what, address, size });
    }
    Ok(address + size)
}

fn check_disjoint(what: &'static str, ranges: &[(u64, u64)]) -> Result<(), MetadataError> {
    for (i, &(a, a_end)) in ranges.iter().enumerate() {
        if let Some(&(b, _)) = ranges[i + 1..].iter().find(|&&(b, b_end)| a < b_end && b < a_end) {
            return Err(MetadataError::Overlap { what, first: a, second: b });
        }
    }
    Ok(())
}

fn parse_sev(image: &[u8], table: &Table, ram_end: u64) -> Result<Sections<SevSection>, MetadataError> {
    const WHAT: &str = "SEV metadata";
    let start = structure_start(image, table.start, table.sev_offset, SEV_HEADER_LEN, WHAT)?;
    let lens = (SEV_HEADER_LEN, SEV_SECTION_LEN);
    let count = structure_header(image, start, table.start, SEV_METADATA_SIGNATURE, lens, WHAT)?;
    let mut sections = Sections::new();
    let mut ranges = [(0u64, 0u64); MAX_SECTIONS];
    let (mut secrets, mut cpuid) = (0, 0);
    for (i, range) in ranges.iter_mut().enumerate().take(count) {
        let at = start + SEV_HEADER_LEN + i * SEV_SECTION_LEN;
        let field = |o| u32_at(image, at + o).ok_or(MetadataError::OutOfImage { what: WHAT, value: at as u64 });
        let (gpa, size, raw_type) = (field(0)?, field(4)?, field(8)?);
        let kind = SevSectionType::from_u32(raw_type)
            .ok_or(MetadataError::UnknownSectionType { what: "SEV", value: raw_type })?;
        let end = page_range("SEV", gpa.into(), size.into())?;
        if end > ram_end {
            return Err(MetadataError::OutOfRange { what: "SEV", address: gpa.into(), size: size.into() });
        }
        match kind {
            SevSectionType::SnpSecMem => {}
            SevSectionType::SnpSecrets | SevSectionType::Cpuid => {
                let (what, seen) =
                    if kind == SevSectionType::SnpSecrets { ("secrets", &mut secrets) } else { ("CPUID", &mut cpuid) };
                *seen += 1;
                if u64::from(size) != PAGE_SIZE || *seen > 1 {
                    return Err(MetadataError::SnpPage { what });
                }
            }
            SevSectionType::SvsmCaa | SevSectionType::SnpKernelHashes => {
                return Err(MetadataError::UnsupportedSectionType { what: "SEV", value: raw_type });
            }
        }
        *range = (gpa.into(), end);
        sections.items[i] = SevSection { gpa, size, kind };
        sections.len = i + 1;
    }
    check_disjoint("SEV", &ranges[..count])?;
    if secrets == 0 {
        return Err(MetadataError::SnpPage { what: "secrets" });
    }
    if cpuid == 0 {
        return Err(MetadataError::SnpPage { what: "CPUID" });
    }
    Ok(sections)
}

fn parse_tdvf(image: &[u8], table: &Table, ram_end: u64) -> Result<Sections<TdvfSection>, MetadataError> {
    const WHAT: &str = "TDVF descriptor";
    let start = structure_start(image, table.start, table.tdx_offset, TDVF_HEADER_LEN, WHAT)?;
    if start < 16 || guid_at(image, start - 16) != Some(TDVF_METADATA_GUID) {
        return Err(MetadataError::TdvfGuidMissing);
    }
    let lens = (TDVF_HEADER_LEN, TDVF_SECTION_LEN);
    let count = structure_header(image, start, table.start, TDVF_SIGNATURE, lens, WHAT)?;
    let image_base = IMAGE_END - image.len() as u64;
    let mut sections = Sections::new();
    let mut ranges = [(0u64, 0u64); MAX_SECTIONS];
    let (mut hobs, mut bfvs) = (0, 0);
    for (i, range) in ranges.iter_mut().enumerate().take(count) {
        let at = start + TDVF_HEADER_LEN + i * TDVF_SECTION_LEN;
        let oob = MetadataError::OutOfImage { what: WHAT, value: at as u64 };
        let (data_offset, raw_data_size) = (u32_at(image, at).ok_or(oob)?, u32_at(image, at + 4).ok_or(oob)?);
        let (memory_address, memory_data_size) =
            (u64_at(image, at + 8).ok_or(oob)?, u64_at(image, at + 16).ok_or(oob)?);
        let (raw_type, attributes) = (u32_at(image, at + 24).ok_or(oob)?, u32_at(image, at + 28).ok_or(oob)?);
        let kind = TdvfSectionType::from_u32(raw_type)
            .ok_or(MetadataError::UnknownSectionType { what: "TDVF", value: raw_type })?;
        let end = page_range("TDVF", memory_address, memory_data_size)?;
        let out_of_range = MetadataError::OutOfRange { what: "TDVF", address: memory_address, size: memory_data_size };
        if attributes & !TDVF_ATTRIBUTE_MR_EXTEND != 0 {
            return Err(MetadataError::Attributes { value: attributes });
        }
        match kind {
            TdvfSectionType::Bfv | TdvfSectionType::Cfv => {
                // QEMU copies memory_data_size bytes from data_offset: they must be the same image bytes.
                let data_end = u64::from(data_offset) + u64::from(raw_data_size);
                if raw_data_size == 0
                    || u64::from(raw_data_size) != memory_data_size
                    || !u64::from(data_offset).is_multiple_of(PAGE_SIZE)
                    || data_end > image.len() as u64
                {
                    return Err(MetadataError::RawData { what: "BFV/CFV" });
                }
                if memory_address < image_base || end > IMAGE_END {
                    return Err(out_of_range);
                }
                bfvs += u32::from(kind == TdvfSectionType::Bfv);
            }
            TdvfSectionType::TdHob | TdvfSectionType::TempMem => {
                if raw_data_size != 0 || data_offset != 0 {
                    return Err(MetadataError::RawData { what: "TD_HOB/TEMP_MEM" });
                }
                if attributes != 0 {
                    return Err(MetadataError::Attributes { value: attributes });
                }
                if end > ram_end {
                    return Err(out_of_range);
                }
                hobs += u32::from(kind == TdvfSectionType::TdHob);
            }
        }
        *range = (memory_address, end);
        sections.items[i] =
            TdvfSection { data_offset, raw_data_size, memory_address, memory_data_size, kind, attributes };
        sections.len = i + 1;
    }
    check_disjoint("TDVF", &ranges[..count])?;
    if hobs != 1 {
        return Err(MetadataError::TdvfShape { what: "exactly one TD_HOB section" });
    }
    if bfvs == 0 {
        return Err(MetadataError::TdvfShape { what: "a BFV section" });
    }
    Ok(sections)
}

/// Parses and checks the metadata of `image` (mapped so that it ends at 4 GiB) for a guest with `ram_end` bytes of
/// RAM below 4 GiB.
pub fn parse(image: &[u8], ram_end: u64) -> Result<Metadata, MetadataError> {
    let len = image.len();
    if len == 0 || !(len as u64).is_multiple_of(PAGE_SIZE) || len as u64 > IMAGE_END {
        return Err(MetadataError::ImageSize { len });
    }
    let image_base = IMAGE_END - len as u64;
    let table = parse_table(image)?;
    if table.ap_entry == 0 || u64::from(table.ap_entry) < image_base {
        return Err(MetadataError::OutOfImage { what: "SEV-ES AP entry", value: table.ap_entry.into() });
    }
    let ram_end = ram_end.min(image_base);
    let sev_sections = parse_sev(image, &table, ram_end)?;
    let tdvf_sections = parse_tdvf(image, &table, ram_end)?;
    Ok(Metadata { image_base, sev_es_ap_entry: table.ap_entry, sev_sections, tdvf_sections })
}
