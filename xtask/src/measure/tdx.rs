//! MRTD, the TD's build-time measurement, for an image launched by QEMU + KVM from its TDVF metadata (Intel TDX
//! module base specification: TDH.MEM.PAGE.ADD and TDH.MR.EXTEND; DESIGN.md §9):
//!
//! - each section in metadata order, each 4 KiB page in address order: one PAGE.ADD record, a 128-byte buffer with
//!   "MEM.PAGE.ADD" at offset 0 and the GPA (little-endian) at 16..24;
//! - if the section has MR.EXTEND, right after its PAGE.ADD the page's 16 chunks of 256 bytes: for each, a
//!   128-byte buffer with "MR.EXTEND" at offset 0 and the chunk's GPA at 16..24, then the 256 data bytes.
//!
//! MRTD is the SHA-384 of all those buffers in order. TD_HOB and TEMP_MEM pages are added (their GPAs enter MRTD)
//! but not extended (their contents do not).

use ovmf::layout::PAGE_SIZE;
use ovmf::metadata::{Metadata, TDVF_ATTRIBUTE_MR_EXTEND};
use sha2::{Digest, Sha384};

use super::snp::Digest384;

const RECORD_LEN: usize = 128;
const EXTEND_CHUNK: usize = 256;

fn record(operation: &[u8], gpa: u64) -> [u8; RECORD_LEN] {
    let mut r = [0u8; RECORD_LEN];
    r[..operation.len()].copy_from_slice(operation);
    r[16..24].copy_from_slice(&gpa.to_le_bytes());
    r
}

/// MRTD being extended, TDH.MEM.PAGE.ADD by TDH.MEM.PAGE.ADD.
pub(crate) struct Mrtd(Sha384);

impl Mrtd {
    pub(crate) fn new() -> Self {
        Self(Sha384::new())
    }

    /// One PAGE.ADD of the page at `gpa`, then, if `contents` is given, its 16 MR.EXTENDs.
    pub(crate) fn add_page(&mut self, gpa: u64, contents: Option<&[u8]>) {
        self.0.update(record(b"MEM.PAGE.ADD", gpa));
        if let Some(page) = contents {
            debug_assert_eq!(page.len(), PAGE_SIZE as usize);
            for (i, chunk) in page.chunks(EXTEND_CHUNK).enumerate() {
                self.0.update(record(b"MR.EXTEND", gpa + (i * EXTEND_CHUNK) as u64));
                self.0.update(chunk);
            }
        }
    }

    pub(crate) fn finish(self) -> Digest384 {
        self.0.finalize().into()
    }
}

/// MRTD of `image` with its parsed `metadata`.
pub fn mrtd(image: &[u8], metadata: &Metadata) -> Digest384 {
    let mut mrtd = Mrtd::new();
    for section in metadata.tdvf_sections.as_slice() {
        let extend = section.attributes & TDVF_ATTRIBUTE_MR_EXTEND != 0;
        for offset in (0..section.memory_data_size).step_by(PAGE_SIZE as usize) {
            // The parser checked data_offset + raw_data_size (= memory_data_size) lies in the image.
            let start = section.data_offset as usize + offset as usize;
            let contents = extend.then(|| &image[start..start + PAGE_SIZE as usize]);
            mrtd.add_page(section.memory_address + offset, contents);
        }
    }
    mrtd.finish()
}
