extern crate std;

use std::string::ToString;
use std::vec::Vec;

use super::*;
use crate::layout::{AP_ENTRY, GUEST_RAM_SIZE, IMAGE_END, METADATA};

/// An image of the layout's size, zero but for the metadata window.
fn image() -> Vec<u8> {
    let mut bytes = std::vec![0u8; IMAGE.size as usize];
    let at = (METADATA.base - IMAGE.base) as usize;
    bytes[at..at + ENCODED_LEN].copy_from_slice(&encode());
    bytes
}

/// The image offset of the first occurrence of `needle`.
fn find(image: &[u8], needle: &[u8]) -> usize {
    image.windows(needle.len()).position(|w| w == needle).expect("needle present")
}

fn parse_ok(image: &[u8]) -> Metadata {
    parse(image, GUEST_RAM_SIZE).unwrap_or_else(|e| panic!("{e}"))
}

fn refused(image: &[u8]) -> MetadataError {
    parse(image, GUEST_RAM_SIZE).expect_err("must be refused")
}

fn put_u32(image: &mut [u8], at: usize, value: u32) {
    image[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn put_u64(image: &mut [u8], at: usize, value: u64) {
    image[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn parses_back_exactly_what_it_encodes() {
    let metadata = parse_ok(&image());
    assert_eq!(metadata.image_base, IMAGE.base);
    assert_eq!(metadata.sev_es_ap_entry as u64, AP_ENTRY.base);
    assert_eq!(metadata.sev_sections.as_slice(), &AMPOULE_SEV_SECTIONS);
    assert_eq!(metadata.tdvf_sections.as_slice(), &AMPOULE_TDVF_SECTIONS);
}

#[test]
fn the_table_ends_at_4_gib_minus_0x20_with_the_footer_guid() {
    let img = image();
    let len = img.len();
    assert_eq!(&img[len - 0x30..len - 0x20], &FOOTER_GUID.0);
    let table_len = u16::from_le_bytes([img[len - 0x32], img[len - 0x31]]);
    assert_eq!(table_len, 3 * 22 + 18);
    assert!(img[len - 0x20..].iter().all(|&b| b == 0), "the AP entry and reset vector are the linker's");
}

#[test]
fn offsets_point_at_the_signatures() {
    let img = image();
    let len = img.len();
    let sev = find(&img, b"ASEV");
    let tdvf = find(&img, b"TDVF");
    let u32_before = |guid: Guid| {
        let at = find(&img, &guid.0);
        u32::from_le_bytes(img[at - 6..at - 2].try_into().unwrap()) as usize
    };
    assert_eq!(len - u32_before(SEV_METADATA_OFFSET_GUID), sev);
    assert_eq!(len - u32_before(TDX_METADATA_OFFSET_GUID), tdvf);
    assert_eq!(&img[tdvf - 16..tdvf], &TDVF_METADATA_GUID.0);
    assert_eq!(IMAGE_END - (IMAGE.base + tdvf as u64), u32_before(TDX_METADATA_OFFSET_GUID) as u64);
}

#[test]
fn refuses_a_missing_or_corrupt_footer() {
    let mut img = image();
    let len = img.len();
    img[len - 0x30] ^= 1;
    assert_eq!(refused(&img), MetadataError::FooterMissing);
    assert_eq!(refused(&std::vec![0u8; IMAGE.size as usize]), MetadataError::FooterMissing);
}

#[test]
fn refuses_bad_table_and_entry_lengths() {
    let mut img = image();
    let len = img.len();
    img[len - 0x32..len - 0x30].copy_from_slice(&5u16.to_le_bytes());
    assert_eq!(refused(&img), MetadataError::TableLength { length: 5 });

    let mut img = image();
    // The entry just below the footer (the SEV-ES reset block): its length field.
    let at = len - 0x32 - 18;
    img[at..at + 2].copy_from_slice(&200u16.to_le_bytes());
    assert!(matches!(refused(&img), MetadataError::EntryLength { length: 200, .. }));
    img[at..at + 2].copy_from_slice(&3u16.to_le_bytes());
    assert!(matches!(refused(&img), MetadataError::EntryLength { length: 3, .. }));

    // A table length that leaves a piece shorter than an entry header.
    let mut img = image();
    img[len - 0x32..len - 0x30].copy_from_slice(&(3 * 22 + 18 + 7u16).to_le_bytes());
    assert!(matches!(refused(&img), MetadataError::EntryLength { .. } | MetadataError::UnknownEntry(_)));
}

#[test]
fn refuses_duplicate_unknown_and_missing_entries() {
    let mut img = image();
    let tdx = find(&img, &TDX_METADATA_OFFSET_GUID.0);
    img[tdx..tdx + 16].copy_from_slice(&SEV_METADATA_OFFSET_GUID.0);
    assert_eq!(refused(&img), MetadataError::DuplicateEntry(SEV_METADATA_OFFSET_GUID));

    let mut img = image();
    let tdx = find(&img, &TDX_METADATA_OFFSET_GUID.0);
    img[tdx] ^= 0xff;
    assert!(matches!(refused(&img), MetadataError::UnknownEntry(_)));

    // Shorten the table so that the TDX entry is no longer part of it.
    let mut img = image();
    let len = img.len();
    img[len - 0x32..len - 0x30].copy_from_slice(&(2 * 22 + 18u16).to_le_bytes());
    assert_eq!(refused(&img), MetadataError::MissingEntry("TDX metadata offset"));
}

#[test]
fn refuses_offsets_outside_the_image_or_misaligned() {
    let mut img = image();
    let sev = find(&img, &SEV_METADATA_OFFSET_GUID.0);
    put_u32(&mut img, sev - 6, IMAGE.size as u32 + 4096);
    assert!(matches!(refused(&img), MetadataError::OutOfImage { what: "SEV metadata", .. }));
    put_u32(&mut img, sev - 6, 0x10);
    assert!(matches!(refused(&img), MetadataError::OutOfImage { what: "SEV metadata", .. }));

    let mut img = image();
    let len = img.len();
    let asev = find(&img, b"ASEV");
    put_u32(&mut img, sev - 6, (len - asev + 2) as u32);
    assert!(matches!(refused(&img), MetadataError::Misaligned { .. }));
}

#[test]
fn refuses_bad_signatures_versions_and_lengths() {
    let mut img = image();
    let asev = find(&img, b"ASEV");
    img[asev] = b'X';
    assert_eq!(refused(&img), MetadataError::Signature { what: "SEV metadata" });

    let mut img = image();
    put_u32(&mut img, asev + 8, 2);
    assert_eq!(refused(&img), MetadataError::Version { what: "SEV metadata", version: 2 });

    let mut img = image();
    put_u32(&mut img, asev + 12, 5);
    assert!(matches!(refused(&img), MetadataError::Length { count: 5, .. }));

    let mut img = image();
    let tdvf = find(&img, b"TDVF");
    put_u32(&mut img, tdvf + 4, 16 + 32 * 3 + 1);
    assert!(matches!(refused(&img), MetadataError::Length { what: "TDVF descriptor", .. }));
    let mut img = image();
    put_u32(&mut img, tdvf + 12, 1000);
    assert!(matches!(refused(&img), MetadataError::Length { count: 1000, .. }));
}

/// The image offset of SEV section `i`.
fn sev_section(img: &[u8], i: usize) -> usize {
    find(img, b"ASEV") + 16 + 12 * i
}

/// The image offset of TDVF section `i`.
fn tdvf_section(img: &[u8], i: usize) -> usize {
    find(img, b"TDVF") + 16 + 32 * i
}

#[test]
fn refuses_bad_sev_sections() {
    // Overlap: the boot scratch section moved onto the kernel's RAM.
    let mut img = image();
    let s1 = sev_section(&img, 1);
    put_u32(&mut img, s1, AMPOULE_SEV_SECTIONS[0].gpa + 0x1000);
    assert!(matches!(refused(&img), MetadataError::Overlap { what: "SEV", .. }));

    let mut img = image();
    put_u32(&mut img, s1, AMPOULE_SEV_SECTIONS[1].gpa + 0x10);
    assert!(matches!(refused(&img), MetadataError::BadRange { .. }));
    put_u32(&mut img, s1, AMPOULE_SEV_SECTIONS[1].gpa);
    put_u32(&mut img, s1 + 4, 0);
    assert!(matches!(refused(&img), MetadataError::BadRange { .. }));

    assert!(matches!(parse(&image(), 4 << 20), Err(MetadataError::OutOfRange { what: "SEV", .. })));

    let mut img = image();
    let secrets = sev_section(&img, 2);
    put_u32(&mut img, secrets + 4, 0x2000);
    assert_eq!(refused(&img), MetadataError::SnpPage { what: "secrets" });

    let mut img = image();
    let cpuid = sev_section(&img, 3);
    put_u32(&mut img, cpuid + 8, SevSectionType::SnpSecrets as u32);
    assert_eq!(refused(&img), MetadataError::SnpPage { what: "secrets" });
    put_u32(&mut img, cpuid + 8, 7);
    assert_eq!(refused(&img), MetadataError::UnknownSectionType { what: "SEV", value: 7 });
    put_u32(&mut img, cpuid + 8, SevSectionType::SvsmCaa as u32);
    assert_eq!(refused(&img), MetadataError::UnsupportedSectionType { what: "SEV", value: 4 });
    put_u32(&mut img, cpuid + 8, SevSectionType::SnpSecMem as u32);
    assert_eq!(refused(&img), MetadataError::SnpPage { what: "CPUID" });
}

#[test]
fn refuses_bad_tdvf_sections() {
    let mut img = image();
    let tdvf = find(&img, b"TDVF");
    img[tdvf - 1] ^= 1;
    assert_eq!(refused(&img), MetadataError::TdvfGuidMissing);

    // PAGE.AUG (bit 1) is ignored by QEMU: refused.
    let mut img = image();
    let bfv = tdvf_section(&img, 0);
    put_u32(&mut img, bfv + 28, 0b11);
    assert_eq!(refused(&img), MetadataError::Attributes { value: 0b11 });

    // MR.EXTEND on temporary memory: no image bytes to extend.
    let mut img = image();
    let temp = tdvf_section(&img, 1);
    put_u32(&mut img, temp + 28, TDVF_ATTRIBUTE_MR_EXTEND);
    assert_eq!(refused(&img), MetadataError::Attributes { value: 1 });

    // BFV: RawDataSize must equal MemoryDataSize and lie in the image.
    let mut img = image();
    put_u32(&mut img, bfv + 4, 0x1000);
    assert_eq!(refused(&img), MetadataError::RawData { what: "BFV/CFV" });
    let mut img = image();
    put_u32(&mut img, bfv, 0x1000);
    assert_eq!(refused(&img), MetadataError::RawData { what: "BFV/CFV" });

    // BFV mapped elsewhere than the image.
    let mut img = image();
    put_u64(&mut img, bfv + 8, 0x10_0000);
    assert!(matches!(refused(&img), MetadataError::OutOfRange { what: "TDVF", .. }));

    // TEMP_MEM with raw data.
    let mut img = image();
    put_u32(&mut img, temp + 4, 0x1000);
    assert_eq!(refused(&img), MetadataError::RawData { what: "TD_HOB/TEMP_MEM" });

    // No TD_HOB (QEMU requires one).
    let mut img = image();
    let hob = tdvf_section(&img, 3);
    put_u32(&mut img, hob + 24, TdvfSectionType::TempMem as u32);
    assert_eq!(refused(&img), MetadataError::TdvfShape { what: "exactly one TD_HOB section" });
    put_u32(&mut img, hob + 24, 9);
    assert_eq!(refused(&img), MetadataError::UnknownSectionType { what: "TDVF", value: 9 });

    // Overlapping TEMP_MEM and TD_HOB.
    let mut img = image();
    put_u64(&mut img, hob + 8, AMPOULE_TDVF_SECTIONS[2].memory_address);
    assert!(matches!(refused(&img), MetadataError::Overlap { what: "TDVF", .. }));
}

#[test]
fn refuses_bad_ap_entries_and_image_sizes() {
    let mut img = image();
    let ap = find(&img, &SEV_ES_RESET_BLOCK_GUID.0);
    put_u32(&mut img, ap - 6, 0x1000);
    assert!(matches!(refused(&img), MetadataError::OutOfImage { what: "SEV-ES AP entry", .. }));
    put_u32(&mut img, ap - 6, 0);
    assert!(matches!(refused(&img), MetadataError::OutOfImage { what: "SEV-ES AP entry", .. }));

    assert_eq!(parse(&[], GUEST_RAM_SIZE), Err(MetadataError::ImageSize { len: 0 }));
    let img = image();
    assert_eq!(parse(&img[100..], GUEST_RAM_SIZE), Err(MetadataError::ImageSize { len: img.len() - 100 }));
    // A truncated image that still ends with the table: its structures now lie "before" it.
    assert!(parse(&img[img.len() - 4096..], GUEST_RAM_SIZE).is_err());
}

#[test]
fn every_single_bit_flip_in_the_window_is_refused_or_changes_the_result_and_never_panics() {
    let mut img = image();
    let original = parse_ok(&img);
    let len = img.len();
    // The bytes that carry meaning: the TDVF GUID and descriptor, the SEV metadata, the footer table.
    let tdvf = find(&img, b"TDVF");
    let asev = find(&img, b"ASEV");
    let structures = [
        tdvf - 16..tdvf + 16 + 32 * AMPOULE_TDVF_SECTIONS.len(),
        asev..asev + 16 + 12 * AMPOULE_SEV_SECTIONS.len(),
        len - 0x20 - (3 * 22 + 18)..len - 0x20,
    ];
    let window = (METADATA.base - IMAGE.base) as usize..len - 0x20;
    let (mut refused, mut changed, mut ignored) = (0, 0, 0);
    for at in window {
        let meaningful = structures.iter().any(|r| r.contains(&at));
        for bit in 0..8 {
            img[at] ^= 1 << bit;
            match parse(&img, GUEST_RAM_SIZE) {
                Err(e) => {
                    assert!(meaningful, "a flip in padding at {at:#x} was refused: {e}");
                    assert!(!e.to_string().is_empty());
                    refused += 1;
                }
                Ok(m) if meaningful => {
                    assert_ne!(m, original, "a flip at {at:#x} bit {bit} was silently ignored");
                    changed += 1;
                }
                Ok(m) => {
                    assert_eq!(m, original);
                    ignored += 1;
                }
            }
            img[at] ^= 1 << bit;
        }
    }
    assert!(refused > 8 * changed, "refused {refused}, accepted with a change {changed}, padding {ignored}");
}
