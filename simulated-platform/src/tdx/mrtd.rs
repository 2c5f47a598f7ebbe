//! MRTD as the TDX module extends it (Intel TDX module base specification, TDH.MEM.PAGE.ADD and TDH.MR.EXTEND):
//! one SHA-384 over 128-byte records, "MEM.PAGE.ADD" with the page's GPA for every page added, and "MR.EXTEND"
//! with a 256-byte chunk's GPA followed by the chunk for every chunk extended. Written apart from `xtask measure`'s,
//! as the SNP digest is: the hypervisor builds the TD with this, and the two are compared.

use ovmf::metadata::{Metadata, TDVF_ATTRIBUTE_MR_EXTEND, TdvfSectionType};
use sha2::{Digest, Sha384};

use crate::launch::Sha384Digest;

/// The bytes MR.EXTEND takes at a time.
pub const EXTEND_CHUNK: usize = 256;
const PAGE: u64 = 4096;

/// A record: the operation's name, NUL-padded, and the GPA at bytes 16..24.
fn record(operation: &str, gpa: u64) -> [u8; 128] {
    let mut bytes = [0u8; 128];
    bytes[..operation.len()].copy_from_slice(operation.as_bytes());
    bytes[16..24].copy_from_slice(&gpa.to_le_bytes());
    bytes
}

/// The running MRTD.
#[derive(Clone, Default)]
pub struct MrtdBuilder {
    hash: Sha384,
    pages: u32,
}

impl MrtdBuilder {
    /// TDH.MEM.PAGE.ADD of the page at `gpa`.
    pub fn page_add(&mut self, gpa: u64) {
        self.hash.update(record("MEM.PAGE.ADD", gpa));
        self.pages += 1;
    }

    /// TDH.MR.EXTEND of every 256-byte chunk of the page at `gpa`.
    pub fn extend_page(&mut self, gpa: u64, page: &[u8]) {
        for (i, chunk) in page.chunks(EXTEND_CHUNK).enumerate() {
            self.hash.update(record("MR.EXTEND", gpa + (i * EXTEND_CHUNK) as u64));
            self.hash.update(chunk);
        }
    }

    /// Pages added so far.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// TDH.MR.FINALIZE: the MRTD.
    pub fn finish(self) -> Sha384Digest {
        self.hash.finalize().into()
    }
}

/// One page the TD build adds, in order: its GPA, and whether its contents are extended into MRTD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddedPage {
    /// The GPA.
    pub gpa: u64,
    /// The section it belongs to.
    pub kind: TdvfSectionType,
    /// Offset of its bytes in the image, for BFV/CFV sections.
    pub image_offset: Option<u64>,
    /// MR.EXTEND follows the add.
    pub extended: bool,
}

/// The pages of the image's TDVF sections in metadata order, each section's pages in address order.
pub fn added_pages(metadata: &Metadata) -> impl Iterator<Item = AddedPage> + '_ {
    metadata.tdvf_sections.as_slice().iter().flat_map(|section| {
        let from_image = matches!(section.kind, TdvfSectionType::Bfv | TdvfSectionType::Cfv);
        let extended = section.attributes & TDVF_ATTRIBUTE_MR_EXTEND != 0;
        (0..section.memory_data_size / PAGE).map(move |i| AddedPage {
            gpa: section.memory_address + i * PAGE,
            kind: section.kind,
            image_offset: from_image.then(|| u64::from(section.data_offset) + i * PAGE),
            extended,
        })
    })
}

/// MRTD of a TD built from `image` (TD HOB and temporary memory add no contents).
pub fn measure(image: &[u8], metadata: &Metadata) -> Option<Sha384Digest> {
    let mut mrtd = MrtdBuilder::default();
    for page in added_pages(metadata) {
        mrtd.page_add(page.gpa);
        if page.extended {
            let offset = page.image_offset? as usize;
            mrtd.extend_page(page.gpa, image.get(offset..offset + PAGE as usize)?);
        }
    }
    Some(mrtd.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_the_operation_and_the_gpa() {
        let add = record("MEM.PAGE.ADD", 0xffe0_0000);
        assert_eq!(&add[..12], b"MEM.PAGE.ADD");
        assert_eq!(&add[12..16], &[0; 4]);
        assert_eq!(add[16..24], 0xffe0_0000u64.to_le_bytes());
        assert!(add[24..].iter().all(|&b| b == 0));
    }

    #[test]
    fn an_extended_page_hashes_sixteen_records_with_their_chunks() {
        let page: Vec<u8> = (0..4096).map(|i| i as u8).collect();
        let mut built = MrtdBuilder::default();
        built.page_add(0x1000);
        built.extend_page(0x1000, &page);
        let mut by_hand = Sha384::new();
        by_hand.update(record("MEM.PAGE.ADD", 0x1000));
        for i in 0..16u64 {
            by_hand.update(record("MR.EXTEND", 0x1000 + i * 256));
            by_hand.update(&page[(i * 256) as usize..((i + 1) * 256) as usize]);
        }
        assert_eq!(built.finish(), <[u8; 48]>::from(by_hand.finalize()));
    }
}
