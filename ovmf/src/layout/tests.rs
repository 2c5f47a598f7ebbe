use super::*;

const RAM_REGIONS: [Region; 7] = [RAM_IMAGE, BOOT_SCRATCH, SNP_SECRETS, SNP_CPUID, TD_HOB, SHARED, HEAP];
const ROM_PARTS: [Region; 2] = [PAYLOAD, RESET_PAGE];
const RESET_PAGE_PARTS: [Region; 3] = [METADATA, AP_ENTRY, RESET_VECTOR];

fn assert_disjoint(regions: &[Region]) {
    for (i, a) in regions.iter().enumerate() {
        for b in &regions[i + 1..] {
            assert!(!a.overlaps(b), "{} and {} overlap", a.name, b.name);
        }
    }
}

fn assert_within(outer: &Region, inner: &Region) {
    assert!(outer.base <= inner.base && inner.end() <= outer.end(), "{} is not inside {}", inner.name, outer.name);
}

#[test]
fn image_ends_at_4_gib_and_is_a_whole_number_of_bios_granules() {
    assert_eq!(IMAGE.end(), 4 * GIB);
    assert_eq!(IMAGE.size % BIOS_SIZE_GRANULE, 0);
    const { assert!(IMAGE.size > 0) };
}

#[test]
fn reset_vector_is_the_last_16_bytes() {
    assert_eq!(RESET_VECTOR.base, 0xFFFF_FFF0);
    assert_eq!(RESET_VECTOR.end(), IMAGE.end());
}

#[test]
fn real_mode_code_page_is_reachable_from_the_reset_cs() {
    // After reset CS.base = 0xFFFF_0000: 16-bit code must lie in the top 64 KiB.
    const { assert!(RESET_PAGE.base >= IMAGE_END - 64 * KIB) };
    assert_eq!(RESET_PAGE.end(), IMAGE_END);
}

#[test]
fn metadata_window_ends_where_the_ovmf_footer_table_must_end() {
    assert_eq!(METADATA.end(), IMAGE_END - 0x20);
    assert_eq!(AP_ENTRY.end(), RESET_VECTOR.base);
}

#[test]
fn rom_parts_tile_the_image_without_overlap() {
    assert_disjoint(&ROM_PARTS);
    for part in ROM_PARTS {
        assert_within(&IMAGE, &part);
    }
    assert_eq!(ROM_PARTS.iter().map(|r| r.size).sum::<u64>(), IMAGE.size);
    assert_eq!(PAYLOAD.end() % PAGE_SIZE, 0);
    assert_disjoint(&[METADATA, AP_ENTRY, RESET_VECTOR]);
    for part in RESET_PAGE_PARTS {
        assert_within(&RESET_PAGE, &part);
    }
}

#[test]
fn ram_regions_are_disjoint_page_aligned_and_inside_guest_ram() {
    assert_disjoint(&RAM_REGIONS);
    for r in RAM_REGIONS {
        assert_eq!(r.base % PAGE_SIZE, 0, "{} base", r.name);
        assert_eq!(r.size % PAGE_SIZE, 0, "{} size", r.name);
        assert!(r.end() <= GUEST_RAM_SIZE, "{} beyond guest RAM", r.name);
        assert!(!r.overlaps(&IMAGE), "{} overlaps the image", r.name);
    }
    // The kernel maps the heap with 2 MiB pages.
    assert_eq!(HEAP.base % (2 * MIB), 0);
    assert_eq!(HEAP.size % (2 * MIB), 0);
    // The null page is never part of any region, so a null dereference faults.
    assert!(RAM_REGIONS.iter().all(|r| r.base >= PAGE_SIZE));
}

#[test]
fn the_payload_fits_in_ram_image() {
    const { assert!(PAYLOAD.size <= RAM_IMAGE.size) };
}

#[test]
fn boot_scratch_holds_its_tables() {
    // At least a page is left for the stub's temporary stack.
    const { assert!(boot_scratch::USED + PAGE_SIZE <= BOOT_SCRATCH.size) };
    assert_eq!(boot_scratch::PD_COUNT * GIB, 4 * GIB, "boot map covers the image at the top of 4 GiB");
    // The boot info and the stub's 32-bit IDT (32 gates) share the boot-info page.
    const { assert!(size_of::<boot_scratch::BootInfo>() as u64 <= boot_scratch::IDT32 - boot_scratch::BOOT_INFO) };
    const { assert!(boot_scratch::IDT32 + 32 * 8 <= boot_scratch::USED) };
}

#[test]
fn boot_info_offsets_are_the_ones_reset32_s_writes() {
    use boot_scratch::BootInfo;
    use core::mem::offset_of;
    // reset32.s: INFO_RESET_TSC, INFO_MAX_BASIC_LEAF, INFO_MAX_EXTENDED_LEAF, INFO_SEV_STATUS, INFO_C_BIT.
    assert_eq!(
        [
            offset_of!(BootInfo, reset_tsc),
            offset_of!(BootInfo, max_basic_leaf),
            offset_of!(BootInfo, max_extended_leaf),
            offset_of!(BootInfo, sev_status),
            offset_of!(BootInfo, c_bit),
        ],
        [0, 8, 12, 16, 24]
    );
}

#[test]
fn shared_pages_are_never_pre_validated_or_added() {
    // Under SNP a pre-validated page would have to be rescinded before sharing; SHARED is simply never validated.
    for section in crate::metadata::AMPOULE_SEV_SECTIONS {
        let region = Region { name: "section", base: u64::from(section.gpa), size: u64::from(section.size) };
        assert!(!region.overlaps(&SHARED));
    }
    for section in crate::metadata::AMPOULE_TDVF_SECTIONS {
        let region = Region { name: "section", base: section.memory_address, size: section.memory_data_size };
        assert!(!region.overlaps(&SHARED));
    }
}

#[test]
fn every_region_lies_below_4_gib() {
    for r in REGIONS {
        assert!(r.end() <= 4 * GIB, "{}", r.name);
    }
}

#[test]
fn regions_have_unique_names() {
    for (i, a) in REGIONS.iter().enumerate() {
        assert!(REGIONS[i + 1..].iter().all(|b| b.name != a.name), "duplicate {}", a.name);
    }
}

#[test]
fn linker_symbols_render_every_region_and_symbol() {
    extern crate std;
    let mut text = std::string::String::new();
    write_linker_symbols(&mut text).unwrap();
    assert!(text.contains("IMAGE_BASE = 0xffc00000;"), "{text}");
    assert!(text.contains("RESET_VECTOR_BASE = 0xfffffff0;"));
    assert!(text.contains("METADATA_END = 0xffffffe0;"));
    assert!(text.contains("BOOT_PML4 = 0x800000;"));
    assert_eq!(text.lines().filter(|l| l.ends_with(';')).count(), REGIONS.len() * 3 + LINKER_SYMBOLS.len());
}

#[test]
fn the_pci_window_lies_between_guest_ram_and_the_image() {
    const { assert!(PCI_MMIO.base >= GUEST_RAM_SIZE) };
    const { assert!(PCI_MMIO.end() <= IMAGE.base) };
    // Below the IOAPIC (0xFEC0_0000) and the LAPIC (0xFEE0_0000).
    const { assert!(PCI_MMIO.end() <= 0xfec0_0000) };
    assert!(REGIONS.iter().filter(|r| r.name != "PCI_MMIO").all(|r| !r.overlaps(&PCI_MMIO)));
}
