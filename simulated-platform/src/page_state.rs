//! The host's rule for one entry of a page-state change (GHCB specification §4.1.6; the descriptor format is
//! `ovmf::snp::page_state`, shared with the guest): RMPUPDATE of a 4 KiB page, or of a 2 MiB range, which becomes
//! one large RMP page when it is made private unless the host chooses to back it with small pages (which it may:
//! the guest then gets FAIL_SIZEMISMATCH from a 2 MiB PVALIDATE and validates page by page).

use ovmf::snp::ghcb_msr::PageState;
use ovmf::snp::page_state::PageStateEntry;

use crate::rmp::{Rmp, RmpError};

/// Applies `entry` to `rmp`; the range of frames it changed (first guest-physical address, count), which the
/// caller maps or unmaps accordingly.
pub fn apply(rmp: &mut Rmp<'_>, entry: &PageStateEntry, small_pages: bool) -> Result<(u64, u64), RmpError> {
    let gpa = entry.gfn << 12;
    let private = entry.state == PageState::Private;
    // Refuse a range the table does not wholly cover before changing any of it.
    if !rmp.covers(gpa) || !rmp.covers(gpa + (entry.frames() - 1) * 4096) {
        return Err(RmpError::OutOfRange);
    }
    if entry.large && !small_pages {
        rmp.update_large(gpa, private)?;
    } else {
        for frame in 0..entry.frames() {
            rmp.update(gpa + frame * 4096, private)?;
        }
    }
    Ok((gpa, entry.frames()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rmp::{PageSize, PvalidateOutcome, RmpEntry};

    const BASE: u64 = 16 << 20;

    fn entry(state: PageState, large: bool) -> PageStateEntry {
        PageStateEntry { gfn: BASE >> 12, state, large }
    }

    #[test]
    fn a_large_private_entry_becomes_one_large_page_or_512_small_ones() {
        let mut storage = [RmpEntry::default(); 1024];
        let mut rmp = Rmp::new(BASE, &mut storage);
        assert_eq!(apply(&mut rmp, &entry(PageState::Private, true), false), Ok((BASE, 512)));
        assert_eq!(rmp.pvalidate(BASE, PageSize::Large, true), PvalidateOutcome::Done { changed: true });
        // The host's other choice: small pages, so the guest's 2 MiB PVALIDATE fails with the size mismatch.
        assert_eq!(apply(&mut rmp, &entry(PageState::Private, true), true), Ok((BASE, 512)));
        assert_eq!(rmp.validated_pages(), 0, "RMPUPDATE clears validation");
        assert_eq!(rmp.pvalidate(BASE, PageSize::Large, true), PvalidateOutcome::FailSizeMismatch);
        assert_eq!(rmp.pvalidate(BASE, PageSize::Small, true), PvalidateOutcome::Done { changed: true });
    }

    #[test]
    fn a_shared_entry_returns_the_pages_to_the_host_unvalidated() {
        let mut storage = [RmpEntry::default(); 512];
        let mut rmp = Rmp::new(BASE, &mut storage);
        rmp.launch_page(BASE).unwrap();
        assert_eq!(apply(&mut rmp, &entry(PageState::Shared, false), false), Ok((BASE, 1)));
        assert!(rmp.shared_access(BASE) && !rmp.private_access(BASE));
    }

    #[test]
    fn a_range_the_table_does_not_cover_changes_nothing() {
        let mut storage = [RmpEntry::default(); 256];
        let mut rmp = Rmp::new(BASE, &mut storage);
        assert_eq!(apply(&mut rmp, &entry(PageState::Private, true), true), Err(RmpError::OutOfRange));
        assert!(rmp.shared_access(BASE), "half a large range is not changed");
    }
}
