//! The built image, checked as bytes and as an ELF: size, reset vector, reserved metadata window, no paths of this
//! machine inside, and the linker's placement of the fixed symbols.

mod common;

use common::image;
use object::{Object, ObjectSymbol};
use ovmf::layout::{AP_ENTRY, IMAGE, IMAGE_END, METADATA, RAM_IMAGE, RESET_VECTOR};
use xtask::image::Variant;

fn release_bytes() -> Vec<u8> {
    std::fs::read(image(Variant::Release)).unwrap()
}

fn offset(addr: u64) -> usize {
    (addr - IMAGE.base) as usize
}

#[test]
fn image_has_the_layout_size_and_a_reset_jump() {
    let bytes = release_bytes();
    assert_eq!(bytes.len() as u64, IMAGE.size);
    assert_eq!(bytes.len() % (64 * 1024), 0);
    xtask::image::validate(&bytes).unwrap();
    // reset16.s: a near jump (E9 rel16) whose target lies in the reset page.
    let at = offset(RESET_VECTOR.base);
    assert_eq!(bytes[at], 0xe9);
    let rel = i16::from_le_bytes([bytes[at + 1], bytes[at + 2]]) as i64;
    let target = (RESET_VECTOR.base as i64 + 3 + rel) as u64;
    assert!((IMAGE_END - 4096..METADATA.base).contains(&target), "reset jump to {target:#x}");
}

#[test]
fn metadata_window_holds_exactly_the_encoded_metadata_and_parses() {
    let bytes = release_bytes();
    assert_eq!(&bytes[offset(METADATA.base)..offset(METADATA.end())], &ovmf::metadata::encode()[..]);
    let metadata = ovmf::metadata::parse(&bytes, ovmf::layout::GUEST_RAM_SIZE).unwrap();
    assert_eq!(u64::from(metadata.sev_es_ap_entry), AP_ENTRY.base);
    // The AP entry parks APs: cli; hlt; jmp back to the hlt.
    assert_eq!(&bytes[offset(AP_ENTRY.base)..offset(AP_ENTRY.base) + 4], &[0xfa, 0xf4, 0xeb, 0xfd]);
}

#[test]
fn image_embeds_no_path_of_this_machine() {
    let bytes = release_bytes();
    let root = xtask::paths::repo_root();
    let mut needles = vec![root.display().to_string(), xtask::image::cargo_home().unwrap().display().to_string()];
    needles.extend(std::env::var("HOME").ok());
    needles.push("/home/".into());
    for needle in needles.iter().filter(|n| n.len() > 1) {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "the image contains the path {needle}");
    }
}

#[test]
fn linker_placed_the_fixed_symbols_where_the_layout_says() {
    let root = xtask::paths::repo_root();
    let _ = image(Variant::Release);
    let elf_path = xtask::paths::target_dir(&root).join("kernel/x86_64-unknown-linux-gnu/release/ampoule");
    let elf = std::fs::read(elf_path).unwrap();
    let file = object::File::parse(&*elf).unwrap();
    let symbol = |name: &str| file.symbols().find(|s| s.name() == Ok(name)).map(|s| s.address());
    assert_eq!(symbol("reset_vector"), Some(RESET_VECTOR.base));
    assert_eq!(symbol("ap_entry"), Some(AP_ENTRY.base));
    assert_eq!(symbol("AMPOULE_METADATA"), Some(METADATA.base));
    assert_eq!(symbol("long_mode_start"), Some(RAM_IMAGE.base));
    let cpuid_table = symbol("AMPOULE_REQUIRED_CPUID").unwrap();
    assert!((IMAGE_END - 4096..METADATA.base).contains(&cpuid_table), "CPUID table must be in the reset page (ROM)");
    assert_eq!(file.entry(), RESET_VECTOR.base);
}
