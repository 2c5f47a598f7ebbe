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

/// Decodes the reset vector's 16 bytes in `bitness`-bit mode, following the path the CPU takes: returns the target
/// of the first unconditional jump (a linear address), having checked each instruction on the way. After reset
/// CS.base is 0xFFFF_0000 in real mode (Intel SDM vol. 3A, 9.1.4); TDX starts with flat segments.
fn reset_path(bytes: &[u8], bitness: u32, pe_set: bool) -> u64 {
    use iced_x86::{Code, Decoder, DecoderOptions};
    let cs_base = if bitness == 16 { 0xffff_0000 } else { 0 };
    let code = &bytes[offset(RESET_VECTOR.base)..];
    let mut ip = RESET_VECTOR.base - cs_base;
    loop {
        let at = (ip + cs_base - RESET_VECTOR.base) as usize;
        let mut decoder = Decoder::with_ip(bitness, &code[at..], ip, DecoderOptions::NONE);
        let instruction = decoder.decode();
        assert!(!instruction.is_invalid(), "invalid instruction at {ip:#x} in {bitness}-bit mode");
        match instruction.code() {
            Code::Mov_r32_cr => {}
            Code::Test_AL_imm8 => assert_eq!(instruction.immediate8(), 1, "CR0.PE is bit 0"),
            Code::Jne_rel8_16 | Code::Jne_rel8_32 if pe_set => {
                ip = instruction.near_branch_target();
                continue;
            }
            Code::Jne_rel8_16 | Code::Jne_rel8_32 => {}
            Code::Jmp_rel16 | Code::Jmp_rel32_32 => return cs_base + instruction.near_branch_target(),
            other => panic!("unexpected {other:?} at {ip:#x} in {bitness}-bit mode"),
        }
        ip = instruction.next_ip();
    }
}

#[test]
fn image_has_the_layout_size_and_a_reset_vector_for_both_start_modes() {
    let bytes = release_bytes();
    assert_eq!(bytes.len() as u64, IMAGE.size);
    assert_eq!(bytes.len() % (64 * 1024), 0);
    xtask::image::validate(&bytes).unwrap();
    // reset16.s, decoded by an independent decoder: real mode (CR0.PE = 0) reaches the 16-bit stub, TDX's 32-bit
    // flat mode (CR0.PE = 1) the 32-bit TDX entry; both lie in the reset page, below the metadata window.
    let real_mode = reset_path(&bytes, 16, false);
    let tdx = reset_path(&bytes, 32, true);
    let reset_code = IMAGE_END - 4096..METADATA.base;
    assert!(reset_code.contains(&real_mode), "16-bit path to {real_mode:#x}");
    assert!(reset_code.contains(&tdx), "32-bit path to {tdx:#x}");
    assert_ne!(real_mode, tdx);
    // The TDX entry's first instructions: CLI; CLD; TEST ESI, ESI (VCPU_INDEX: park every vCPU but the first).
    assert_eq!(&bytes[offset(tdx)..offset(tdx) + 4], &[0xfa, 0xfc, 0x85, 0xf6]);
    // The 16-bit stub starts CLI; CLD too.
    assert_eq!(&bytes[offset(real_mode)..offset(real_mode) + 2], &[0xfa, 0xfc]);
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
