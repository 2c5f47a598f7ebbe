use super::*;

const BASE: u64 = 16 << 20;

fn table(entries: &mut [RmpEntry]) -> Rmp<'_> {
    Rmp::new(BASE, entries)
}

#[test]
fn pages_start_hypervisor_owned_and_reach_only_the_shared_alias() {
    let mut storage = [RmpEntry::default(); 8];
    let rmp = table(&mut storage);
    assert!(rmp.shared_access(BASE) && !rmp.private_access(BASE));
    assert!(!rmp.covers(BASE - PAGE) && !rmp.covers(BASE + 8 * PAGE));
}

#[test]
fn a_page_made_private_needs_pvalidate_before_private_use() {
    let mut storage = [RmpEntry::default(); 8];
    let mut rmp = table(&mut storage);
    rmp.update(BASE, true).unwrap();
    assert!(!rmp.private_access(BASE) && !rmp.shared_access(BASE));
    assert_eq!(rmp.pvalidate(BASE, PageSize::Small, true), PvalidateOutcome::Done { changed: true });
    assert!(rmp.private_access(BASE));
    assert_eq!(rmp.validated_pages(), 1);
}

#[test]
fn validating_twice_reports_no_change_through_cf() {
    let mut storage = [RmpEntry::default(); 8];
    let mut rmp = table(&mut storage);
    rmp.update(BASE, true).unwrap();
    rmp.pvalidate(BASE, PageSize::Small, true);
    let again = rmp.pvalidate(BASE, PageSize::Small, true);
    assert_eq!(again, PvalidateOutcome::Done { changed: false });
    assert_eq!(again.registers(), Some((pvalidate_result::SUCCESS, true)));
}

#[test]
fn rescinding_clears_validation_and_rescinding_again_changes_nothing() {
    let mut storage = [RmpEntry::default(); 8];
    let mut rmp = table(&mut storage);
    rmp.launch_page(BASE).unwrap();
    assert_eq!(rmp.pvalidate(BASE, PageSize::Small, false), PvalidateOutcome::Done { changed: true });
    assert!(!rmp.private_access(BASE));
    assert_eq!(rmp.pvalidate(BASE, PageSize::Small, false).registers(), Some((0, true)));
}

#[test]
fn pvalidate_of_a_hypervisor_owned_page_is_an_rmp_violation() {
    let mut storage = [RmpEntry::default(); 8];
    let mut rmp = table(&mut storage);
    assert_eq!(rmp.pvalidate(BASE, PageSize::Small, true), PvalidateOutcome::RmpViolation);
    assert_eq!(rmp.pvalidate(BASE - PAGE, PageSize::Small, true), PvalidateOutcome::RmpViolation);
    assert_eq!(PvalidateOutcome::RmpViolation.registers(), None);
}

#[test]
fn size_mismatch_and_misaligned_large_requests_fail_with_their_codes() {
    let mut storage = [RmpEntry::default(); 1024];
    let mut rmp = table(&mut storage);
    for i in 0..512 {
        rmp.update(BASE + i * PAGE, true).unwrap();
    }
    // 2 MiB request over 4 KiB entries.
    let mismatch = rmp.pvalidate(BASE, PageSize::Large, true);
    assert_eq!(mismatch.registers(), Some((pvalidate_result::FAIL_SIZEMISMATCH, false)));
    // 4 KiB request on a 2 MiB entry.
    rmp.force(BASE + PAGE, RmpEntry { assigned: true, validated: false, large: true }).unwrap();
    assert_eq!(rmp.pvalidate(BASE + PAGE, PageSize::Small, true), PvalidateOutcome::FailSizeMismatch);
    // A 2 MiB request must be 2 MiB aligned.
    assert_eq!(rmp.pvalidate(BASE + PAGE, PageSize::Large, true).registers(), Some((1, false)));
    assert_eq!(rmp.validated_pages(), 0, "a failed PVALIDATE changes nothing");
}

#[test]
fn a_large_page_validates_as_one() {
    let mut storage = [RmpEntry::default(); 512];
    let mut rmp = table(&mut storage);
    for i in 0..512 {
        rmp.force(BASE + i * PAGE, RmpEntry { assigned: true, validated: false, large: true }).unwrap();
    }
    assert_eq!(rmp.pvalidate(BASE, PageSize::Large, true), PvalidateOutcome::Done { changed: true });
    assert_eq!(rmp.validated_pages(), 512);
}

#[test]
fn rmpupdate_clears_validation_so_a_host_remap_cannot_keep_a_page_usable() {
    let mut storage = [RmpEntry::default(); 8];
    let mut rmp = table(&mut storage);
    rmp.launch_page(BASE).unwrap();
    rmp.update(BASE, true).unwrap();
    assert!(!rmp.private_access(BASE), "re-assigned by the host: the guest must validate again");
    rmp.update(BASE, false).unwrap();
    assert!(rmp.shared_access(BASE) && !rmp.private_access(BASE));
    assert_eq!(rmp.update(BASE + 8 * PAGE, true), Err(RmpError::OutOfRange));
}

#[test]
fn page_sizes_decode_from_ecx() {
    assert_eq!(PageSize::from_ecx(0), Some(PageSize::Small));
    assert_eq!(PageSize::from_ecx(1), Some(PageSize::Large));
    assert_eq!(PageSize::from_ecx(2), None);
}

#[test]
fn a_range_assigned_as_one_large_page_validates_only_as_one() {
    let mut storage = [RmpEntry::default(); 1024];
    let mut rmp = table(&mut storage);
    rmp.update_large(BASE, true).unwrap();
    assert_eq!(rmp.pvalidate(BASE + PAGE, PageSize::Small, true), PvalidateOutcome::FailSizeMismatch);
    assert_eq!(rmp.pvalidate(BASE, PageSize::Large, true), PvalidateOutcome::Done { changed: true });
    assert!(rmp.private_access(BASE + 511 * PAGE));
    // Taken back: 512 small shared pages again, none validated.
    rmp.update_large(BASE, false).unwrap();
    assert!(rmp.shared_access(BASE + 100 * PAGE) && rmp.validated_pages() == 0);
    assert_eq!(rmp.update_large(BASE + PAGE, true), Err(RmpError::OutOfRange), "not 2 MiB aligned");
    assert_eq!(rmp.update_large(BASE + 1024 * PAGE, true), Err(RmpError::OutOfRange), "beyond the table");
}
