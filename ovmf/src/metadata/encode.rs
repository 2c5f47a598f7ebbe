//! Lays out the metadata window at compile time. From the top of the window (4 GiB - 0x20) down:
//!
//! ```text
//! footer entry        u16 table length, FOOTER_GUID                       <- ends at 4 GiB - 0x20
//! SEV-ES reset block  u32 AP entry, u16 22, SEV_ES_RESET_BLOCK_GUID
//! SEV metadata entry  u32 offset from image end to "ASEV", u16 22, SEV_METADATA_OFFSET_GUID
//! TDX metadata entry  u32 offset from image end to "TDVF", u16 22, TDX_METADATA_OFFSET_GUID
//! SEV metadata        "ASEV", u32 length, u32 version, u32 count, count x {u32 gpa, u32 size, u32 type}
//! TDVF descriptor     "TDVF", u32 length, u32 version, u32 count, count x 32-byte section
//! TDVF_METADATA_GUID  (right before the descriptor)
//! zeros               down to the start of the window
//! ```

use super::{
    AMPOULE_SEV_SECTIONS, AMPOULE_TDVF_SECTIONS, FOOTER_GUID, Guid, METADATA_VERSION, SEV_ES_RESET_BLOCK_GUID,
    SEV_METADATA_OFFSET_GUID, SEV_METADATA_SIGNATURE, TDVF_METADATA_GUID, TDVF_SIGNATURE, TDX_METADATA_OFFSET_GUID,
};
use crate::layout::{AP_ENTRY, IMAGE_END, METADATA};

/// The size of the encoded window: all of `layout::METADATA`.
pub const ENCODED_LEN: usize = METADATA.size as usize;

/// A table entry's header: u16 length + GUID.
pub(super) const ENTRY_HEADER_LEN: usize = 18;
/// A table entry carrying one u32.
const U32_ENTRY_LEN: usize = 4 + ENTRY_HEADER_LEN;
/// Three u32 entries and the footer.
const TABLE_LEN: usize = 3 * U32_ENTRY_LEN + ENTRY_HEADER_LEN;
/// SEV metadata: 16-byte header, 12 bytes a section.
pub(super) const SEV_HEADER_LEN: usize = 16;
pub(super) const SEV_SECTION_LEN: usize = 12;
const SEV_LEN: usize = SEV_HEADER_LEN + SEV_SECTION_LEN * AMPOULE_SEV_SECTIONS.len();
/// TDVF descriptor: 16-byte header, 32 bytes a section.
pub(super) const TDVF_HEADER_LEN: usize = 16;
pub(super) const TDVF_SECTION_LEN: usize = 32;
const TDVF_LEN: usize = TDVF_HEADER_LEN + TDVF_SECTION_LEN * AMPOULE_TDVF_SECTIONS.len();

/// Window offsets of each part; the descriptors start 16-byte aligned.
const TABLE_START: usize = ENCODED_LEN - TABLE_LEN;
const SEV_START: usize = (TABLE_START - SEV_LEN) & !0xf;
const TDVF_START: usize = (SEV_START - TDVF_LEN) & !0xf;
const TDVF_GUID_START: usize = TDVF_START - 16;
const _: () = assert!(TDVF_GUID_START < ENCODED_LEN, "the metadata does not fit its window");

/// How far from the end of the image (4 GiB) a window offset lies: what the offset entries store.
const fn offset_from_image_end(window_offset: usize) -> u32 {
    (IMAGE_END - (METADATA.base + window_offset as u64)) as u32
}

struct Writer {
    bytes: [u8; ENCODED_LEN],
}

impl Writer {
    const fn put(mut self, at: usize, value: &[u8]) -> Self {
        let mut i = 0;
        while i < value.len() {
            self.bytes[at + i] = value[i];
            i += 1;
        }
        self
    }

    const fn u16(self, at: usize, value: u16) -> Self {
        self.put(at, &value.to_le_bytes())
    }

    const fn u32(self, at: usize, value: u32) -> Self {
        self.put(at, &value.to_le_bytes())
    }

    const fn u64(self, at: usize, value: u64) -> Self {
        self.put(at, &value.to_le_bytes())
    }

    const fn guid(self, at: usize, guid: Guid) -> Self {
        self.put(at, &guid.0)
    }

    /// A table entry with one u32 of data, starting at `at`.
    const fn u32_entry(self, at: usize, value: u32, guid: Guid) -> Self {
        self.u32(at, value).u16(at + 4, U32_ENTRY_LEN as u16).guid(at + 6, guid)
    }
}

/// The metadata window's bytes.
pub const fn encode() -> [u8; ENCODED_LEN] {
    let mut w = Writer { bytes: [0; ENCODED_LEN] };
    // The footer GUID table, from its start up to the footer entry at its end.
    let mut at = TABLE_START;
    w = w.u32_entry(at, offset_from_image_end(TDVF_START), TDX_METADATA_OFFSET_GUID);
    at += U32_ENTRY_LEN;
    w = w.u32_entry(at, offset_from_image_end(SEV_START), SEV_METADATA_OFFSET_GUID);
    at += U32_ENTRY_LEN;
    w = w.u32_entry(at, AP_ENTRY.base as u32, SEV_ES_RESET_BLOCK_GUID);
    at += U32_ENTRY_LEN;
    w = w.u16(at, TABLE_LEN as u16).guid(at + 2, FOOTER_GUID);

    // SEV metadata.
    w = w.put(SEV_START, &SEV_METADATA_SIGNATURE).u32(SEV_START + 4, SEV_LEN as u32);
    w = w.u32(SEV_START + 8, METADATA_VERSION).u32(SEV_START + 12, AMPOULE_SEV_SECTIONS.len() as u32);
    let mut i = 0;
    while i < AMPOULE_SEV_SECTIONS.len() {
        let s = AMPOULE_SEV_SECTIONS[i];
        let at = SEV_START + SEV_HEADER_LEN + i * SEV_SECTION_LEN;
        w = w.u32(at, s.gpa).u32(at + 4, s.size).u32(at + 8, s.kind as u32);
        i += 1;
    }

    // TDVF descriptor, with its GUID right before it.
    w = w.guid(TDVF_GUID_START, TDVF_METADATA_GUID);
    w = w.put(TDVF_START, &TDVF_SIGNATURE).u32(TDVF_START + 4, TDVF_LEN as u32);
    w = w.u32(TDVF_START + 8, METADATA_VERSION).u32(TDVF_START + 12, AMPOULE_TDVF_SECTIONS.len() as u32);
    let mut i = 0;
    while i < AMPOULE_TDVF_SECTIONS.len() {
        let s = AMPOULE_TDVF_SECTIONS[i];
        let at = TDVF_START + TDVF_HEADER_LEN + i * TDVF_SECTION_LEN;
        w = w.u32(at, s.data_offset).u32(at + 4, s.raw_data_size);
        w = w.u64(at + 8, s.memory_address).u64(at + 16, s.memory_data_size);
        w = w.u32(at + 24, s.kind as u32).u32(at + 28, s.attributes);
        i += 1;
    }
    w.bytes
}
