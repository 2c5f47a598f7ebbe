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

/// MRTD of `image` with its parsed `metadata`.
pub fn mrtd(image: &[u8], metadata: &Metadata) -> Digest384 {
    let mut hash = Sha384::new();
    for section in metadata.tdvf_sections.as_slice() {
        let extend = section.attributes & TDVF_ATTRIBUTE_MR_EXTEND != 0;
        for offset in (0..section.memory_data_size).step_by(PAGE_SIZE as usize) {
            let gpa = section.memory_address + offset;
            hash.update(record(b"MEM.PAGE.ADD", gpa));
            if !extend {
                continue;
            }
            // The parser checked data_offset + raw_data_size (= memory_data_size) lies in the image.
            let start = section.data_offset as usize + offset as usize;
            let page = &image[start..start + PAGE_SIZE as usize];
            for (i, chunk) in page.chunks(EXTEND_CHUNK).enumerate() {
                hash.update(record(b"MR.EXTEND", gpa + (i * EXTEND_CHUNK) as u64));
                hash.update(chunk);
            }
        }
    }
    hash.finalize().into()
}
