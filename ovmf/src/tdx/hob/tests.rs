//! The TD HOB check against lists built as QEMU's `tdvf-hob.c` writes them, and against broken ones.

extern crate std;
use std::vec::Vec;

use super::*;
use crate::layout::{HEAP, IMAGE, MIB};

/// A HOB list: PHIT, the given (type, start, length) resource descriptors, end marker.
fn hob_list(resources: &[(u32, u64, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    let header = |out: &mut Vec<u8>, kind: u16, len: u16| {
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
    };
    header(&mut out, EFI_HOB_TYPE_HANDOFF, HANDOFF_LEN as u16);
    out.extend_from_slice(&EFI_HOB_HANDOFF_TABLE_VERSION.to_le_bytes());
    out.resize(HANDOFF_LEN, 0);
    for &(kind, start, length) in resources {
        header(&mut out, EFI_HOB_TYPE_RESOURCE_DESCRIPTOR, RESOURCE_DESCRIPTOR_LEN as u16);
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&7u32.to_le_bytes());
        out.extend_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&length.to_le_bytes());
    }
    header(&mut out, EFI_HOB_TYPE_END_OF_HOB_LIST, HEADER_LEN as u16);
    out
}

/// QEMU's list for a 256 MiB TD with Ampoule's TDVF sections (RAM_IMAGE and BOOT_SCRATCH as TEMP_MEM, the TD HOB):
/// the added ranges as system memory, the rest unaccepted.
fn qemu_like() -> Vec<u8> {
    hob_list(&[
        (EFI_RESOURCE_MEMORY_UNACCEPTED, 0, MIB),
        (EFI_RESOURCE_SYSTEM_MEMORY, MIB, 7 * MIB),
        (EFI_RESOURCE_SYSTEM_MEMORY, 8 * MIB, 64 << 10),
        (EFI_RESOURCE_MEMORY_UNACCEPTED, 8 * MIB + (64 << 10), 8 << 10),
        (EFI_RESOURCE_SYSTEM_MEMORY, 8 * MIB + (72 << 10), 8 << 10),
        (EFI_RESOURCE_MEMORY_UNACCEPTED, 8 * MIB + (80 << 10), 16 * MIB - (8 * MIB + (80 << 10))),
        (EFI_RESOURCE_MEMORY_UNACCEPTED, 16 * MIB, 240 * MIB),
    ])
}

#[test]
fn a_qemu_like_list_parses_and_covers_the_heap_across_adjoining_descriptors() {
    let bytes = qemu_like();
    let hob = TdHob::parse(&bytes, IMAGE).unwrap();
    assert_eq!(hob.resources().count(), 7);
    assert!(hob.unaccepted_covers(HEAP));
    // Straddling two unaccepted descriptors is covered too.
    assert!(hob.unaccepted_covers(Region { name: "t", base: 15 * MIB, size: 2 * MIB }));
}

#[test]
fn ranges_declared_added_or_beyond_ram_are_not_covered() {
    let bytes = qemu_like();
    let hob = TdHob::parse(&bytes, IMAGE).unwrap();
    assert!(!hob.unaccepted_covers(Region { name: "kernel", base: MIB, size: 4096 }));
    assert!(!hob.unaccepted_covers(Region { name: "past RAM", base: 255 * MIB, size: 2 * MIB }));
    let small = hob_list(&[(EFI_RESOURCE_MEMORY_UNACCEPTED, 16 * MIB, 32 * MIB)]);
    assert!(!TdHob::parse(&small, IMAGE).unwrap().unaccepted_covers(HEAP), "a TD with too little RAM");
    let mmio = hob_list(&[(1, HEAP.base, HEAP.size)]);
    assert!(!TdHob::parse(&mmio, IMAGE).unwrap().unaccepted_covers(HEAP), "MMIO is not RAM");
}

#[test]
fn trailing_bytes_after_the_end_marker_are_ignored() {
    let mut bytes = qemu_like();
    let len = bytes.len();
    bytes.resize(8192, 0xff);
    let hob = TdHob::parse(&bytes, IMAGE).unwrap();
    assert_eq!(hob.list.len(), len);
}

#[test]
fn ram_inside_the_image_is_refused_mmio_there_is_not() {
    for kind in [EFI_RESOURCE_SYSTEM_MEMORY, EFI_RESOURCE_MEMORY_UNACCEPTED] {
        let bytes = hob_list(&[(kind, IMAGE.base - MIB, 2 * MIB)]);
        assert_eq!(TdHob::parse(&bytes, IMAGE).unwrap_err(), HobError::RamOverlapsImage(HANDOFF_LEN));
    }
    let bytes = hob_list(&[(1, IMAGE.base, IMAGE.size)]);
    assert!(TdHob::parse(&bytes, IMAGE).is_ok());
}

#[test]
fn wrapping_descriptors_are_refused() {
    let bytes = hob_list(&[(EFI_RESOURCE_MEMORY_UNACCEPTED, u64::MAX - 4095, 8192)]);
    assert_eq!(TdHob::parse(&bytes, IMAGE).unwrap_err(), HobError::Overflow(HANDOFF_LEN));
}

#[test]
fn a_list_without_phit_or_end_or_with_bad_lengths_is_refused() {
    let good = qemu_like();
    let end = good.len() - HEADER_LEN;
    assert_eq!(TdHob::parse(&good[..end], IMAGE).unwrap_err(), HobError::NoEnd);
    assert_eq!(TdHob::parse(&good[HANDOFF_LEN..], IMAGE).unwrap_err(), HobError::NoHandoffTable);
    assert_eq!(TdHob::parse(&[], IMAGE).unwrap_err(), HobError::NoHandoffTable);
    let mut old_version = good.clone();
    old_version[8] = 8;
    assert_eq!(TdHob::parse(&old_version, IMAGE).unwrap_err(), HobError::NoHandoffTable);
    // A resource descriptor claiming 40 bytes, 44 bytes, or more than is left.
    for length in [40u16, 44, 0xfff8] {
        let mut bad = good.clone();
        bad[HANDOFF_LEN + 2..HANDOFF_LEN + 4].copy_from_slice(&length.to_le_bytes());
        assert_eq!(TdHob::parse(&bad, IMAGE).unwrap_err(), HobError::BadLength(HANDOFF_LEN), "length {length}");
    }
    // A zero-length HOB would loop forever if it were accepted.
    let mut zero = good.clone();
    zero[end + 2..end + 4].copy_from_slice(&0u16.to_le_bytes());
    assert_eq!(TdHob::parse(&zero, IMAGE).unwrap_err(), HobError::BadLength(end));
    assert_eq!(TdHob::parse(&good[..HANDOFF_LEN + 4], IMAGE).unwrap_err(), HobError::BadLength(HANDOFF_LEN));
}

#[test]
fn every_truncation_and_every_single_byte_change_is_refused_or_stays_consistent() {
    let good = qemu_like();
    for len in 0..good.len() {
        assert!(TdHob::parse(&good[..len], IMAGE).is_err(), "truncated to {len}");
    }
    // Whatever a VMM writes, parse terminates and a parsed list never declares RAM in the image.
    for at in 0..good.len() {
        for value in [0x00, 0x01, 0x07, 0x80, 0xff] {
            let mut bytes = good.clone();
            bytes[at] = value;
            if let Ok(hob) = TdHob::parse(&bytes, IMAGE) {
                for r in hob.resources().filter(|r| matches!(r.kind, 0 | 7)) {
                    assert!(r.start + r.length <= IMAGE.base || r.start >= IMAGE.end());
                }
            }
        }
    }
}
