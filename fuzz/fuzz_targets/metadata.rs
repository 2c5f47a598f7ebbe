//! Fuzzes `ovmf::metadata::parse`, the reader `cargo xtask measure` trusts: the input replaces the top of an
//! image of the real size (the metadata window, the AP entry and the reset vector). Whatever the parser accepts
//! must satisfy what the measurement code relies on.
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use ovmf::layout::{GUEST_RAM_SIZE, IMAGE, IMAGE_END, METADATA, PAGE_SIZE};
use ovmf::metadata::{SevSectionType, TDVF_ATTRIBUTE_MR_EXTEND, TdvfSectionType, parse};

/// The bytes the input controls: from the metadata window to the end of the image.
const TAIL: usize = (IMAGE_END - METADATA.base) as usize;

static IMAGE_BYTES: Mutex<Vec<u8>> = Mutex::new(Vec::new());

fuzz_target!(|data: &[u8]| {
    let mut image = IMAGE_BYTES.lock().unwrap();
    if image.is_empty() {
        image.resize(IMAGE.size as usize, 0);
    }
    let len = image.len();
    let tail = &mut image[len - TAIL..];
    tail.fill(0);
    let n = data.len().min(TAIL);
    tail[..n].copy_from_slice(&data[..n]);

    let Ok(metadata) = parse(&image, GUEST_RAM_SIZE) else { return };
    assert!(u64::from(metadata.sev_es_ap_entry) >= metadata.image_base);
    for s in metadata.sev_sections.as_slice() {
        assert!(s.size > 0 && u64::from(s.size) % PAGE_SIZE == 0 && u64::from(s.gpa) % PAGE_SIZE == 0);
        assert!(u64::from(s.gpa) + u64::from(s.size) <= GUEST_RAM_SIZE);
        if matches!(s.kind, SevSectionType::SnpSecrets | SevSectionType::Cpuid) {
            assert_eq!(u64::from(s.size), PAGE_SIZE);
        }
    }
    for s in metadata.tdvf_sections.as_slice() {
        assert!(s.memory_data_size > 0 && s.memory_data_size % PAGE_SIZE == 0 && s.memory_address % PAGE_SIZE == 0);
        match s.kind {
            TdvfSectionType::Bfv | TdvfSectionType::Cfv => {
                // tdx::mrtd slices image[data_offset .. data_offset + memory_data_size].
                assert!(u64::from(s.data_offset) + s.memory_data_size <= len as u64);
            }
            TdvfSectionType::TdHob | TdvfSectionType::TempMem => {
                assert_eq!(s.attributes & TDVF_ATTRIBUTE_MR_EXTEND, 0);
                assert!(s.memory_address + s.memory_data_size <= GUEST_RAM_SIZE);
            }
        }
    }
});
