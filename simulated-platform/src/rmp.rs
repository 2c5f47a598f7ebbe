//! The reverse map table (RMP): what the hardware knows about each 4 KiB page of guest memory under SEV-SNP, and
//! the rules that change it (AMD64 APM vol. 2, 15.36.3 "Reverse Map Table", 15.36.9 "Page Validation"; instruction
//! PVALIDATE in vol. 3; the GHCB specification's page-state change, §4.1.6).
//!
//! Each page is either **hypervisor-owned** (shared: the guest reaches it only without the C-bit) or **assigned**
//! to the guest (private: reached only with the C-bit), and an assigned page is usable only once the guest has
//! **validated** it with PVALIDATE. The hypervisor changes ownership (RMPUPDATE), which always clears the
//! validated bit; only the guest sets or clears it. The hypervisor image enforces the table through the nested
//! page tables: a private access to a page not validated raises #VC, an access through the wrong alias faults.

/// One page's RMP entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RmpEntry {
    /// Assigned to the guest (private); otherwise hypervisor-owned (shared).
    pub assigned: bool,
    /// Validated by the guest (or by the firmware at launch).
    pub validated: bool,
    /// The entry describes a 2 MiB page (PVALIDATE's size must match it).
    pub large: bool,
}

/// The page size operand of PVALIDATE (ECX).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    /// 4 KiB (ECX = 0).
    Small,
    /// 2 MiB (ECX = 1).
    Large,
}

impl PageSize {
    /// From PVALIDATE's ECX; `None` for a value the instruction does not define.
    pub fn from_ecx(ecx: u32) -> Option<PageSize> {
        match ecx {
            0 => Some(PageSize::Small),
            1 => Some(PageSize::Large),
            _ => None,
        }
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Small => 4 << 10,
            PageSize::Large => 2 << 20,
        }
    }
}

/// PVALIDATE's outcome (APM vol. 3, PVALIDATE: EAX and RFLAGS.CF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PvalidateOutcome {
    /// EAX = 0. `changed` is false when the validated bit already had the requested value (CF = 1).
    Done {
        /// Whether the entry changed (CF = 0).
        changed: bool,
    },
    /// EAX = FAIL_INPUT: a 2 MiB request at an address that is not 2 MiB aligned.
    FailInput,
    /// EAX = FAIL_SIZEMISMATCH: the request's page size differs from the RMP entry's.
    FailSizeMismatch,
    /// The page is not assigned to the guest: the hardware raises a nested page fault (an RMP violation) to the
    /// hypervisor, and the guest never completes the instruction.
    RmpViolation,
}

/// PVALIDATE's result codes in EAX.
pub mod pvalidate_result {
    /// Success (including "no change", which CF reports).
    pub const SUCCESS: u32 = 0;
    /// FAIL_INPUT.
    pub const FAIL_INPUT: u32 = 1;
    /// FAIL_SIZEMISMATCH.
    pub const FAIL_SIZEMISMATCH: u32 = 6;
}

impl PvalidateOutcome {
    /// EAX and CF as the guest sees them; `None` for an RMP violation, which the guest never sees complete.
    pub fn registers(self) -> Option<(u32, bool)> {
        match self {
            PvalidateOutcome::Done { changed } => Some((pvalidate_result::SUCCESS, !changed)),
            PvalidateOutcome::FailInput => Some((pvalidate_result::FAIL_INPUT, false)),
            PvalidateOutcome::FailSizeMismatch => Some((pvalidate_result::FAIL_SIZEMISMATCH, false)),
            PvalidateOutcome::RmpViolation => None,
        }
    }
}

/// Why an RMP operation of the hypervisor was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmpError {
    /// The address is not guest memory the table covers.
    OutOfRange,
}

/// The table over one contiguous range of guest frames; entries live in storage the caller provides (the
/// hypervisor image has no heap to spare for 64 Ki entries).
pub struct Rmp<'a> {
    first_frame: u64,
    entries: &'a mut [RmpEntry],
}

const PAGE: u64 = 4 << 10;
const PAGES_PER_LARGE: u64 = 512;

impl<'a> Rmp<'a> {
    /// A table for the frames starting at `first_gpa` (4 KiB aligned), all hypervisor-owned.
    pub fn new(first_gpa: u64, entries: &'a mut [RmpEntry]) -> Rmp<'a> {
        entries.fill(RmpEntry::default());
        Rmp { first_frame: first_gpa / PAGE, entries }
    }

    /// Whether `gpa` lies in the table.
    pub fn covers(&self, gpa: u64) -> bool {
        self.index(gpa).is_some()
    }

    fn index(&self, gpa: u64) -> Option<usize> {
        let frame = (gpa / PAGE).checked_sub(self.first_frame)?;
        (frame < self.entries.len() as u64).then_some(frame as usize)
    }

    /// The entry of the page holding `gpa`.
    pub fn entry(&self, gpa: u64) -> Option<RmpEntry> {
        self.index(gpa).map(|i| self.entries[i])
    }

    fn entry_mut(&mut self, gpa: u64) -> Result<&mut RmpEntry, RmpError> {
        let i = self.index(gpa).ok_or(RmpError::OutOfRange)?;
        Ok(&mut self.entries[i])
    }

    /// RMPUPDATE by the hypervisor: assigns the page to the guest (`private`) or takes it back. The validated bit
    /// is always cleared, so a page the host touched must be validated again before the guest can use it.
    pub fn update(&mut self, gpa: u64, private: bool) -> Result<(), RmpError> {
        *self.entry_mut(gpa)? = RmpEntry { assigned: private, validated: false, large: false };
        Ok(())
    }

    /// RMPUPDATE of a 2 MiB range (`gpa` 2 MiB aligned): the hypervisor assigns it to the guest as one large page
    /// (`private`), or takes it back as 512 small hypervisor-owned pages. Validation is cleared as for
    /// [`Rmp::update`].
    pub fn update_large(&mut self, gpa: u64, private: bool) -> Result<(), RmpError> {
        if !gpa.is_multiple_of(PageSize::Large.bytes()) || self.index(gpa + (PAGES_PER_LARGE - 1) * PAGE).is_none() {
            return Err(RmpError::OutOfRange);
        }
        let first = self.index(gpa).ok_or(RmpError::OutOfRange)?;
        for entry in &mut self.entries[first..first + PAGES_PER_LARGE as usize] {
            *entry = RmpEntry { assigned: private, validated: false, large: private };
        }
        Ok(())
    }

    /// SNP_LAUNCH_UPDATE by the firmware: the page is assigned and validated before the guest runs.
    pub fn launch_page(&mut self, gpa: u64) -> Result<(), RmpError> {
        *self.entry_mut(gpa)? = RmpEntry { assigned: true, validated: true, large: false };
        Ok(())
    }

    /// Overwrites an entry as a misbehaving platform would (hostile tests only): the RMP is the hardware's, and
    /// an honest hypervisor can only reach it through [`Rmp::update`].
    pub fn force(&mut self, gpa: u64, entry: RmpEntry) -> Result<(), RmpError> {
        *self.entry_mut(gpa)? = entry;
        Ok(())
    }

    /// PVALIDATE of the page at `gpa` (already translated from the guest's virtual address; the instruction
    /// ignores the low 12 bits).
    pub fn pvalidate(&mut self, gpa: u64, size: PageSize, validate: bool) -> PvalidateOutcome {
        if size == PageSize::Large && !gpa.is_multiple_of(PageSize::Large.bytes()) {
            return PvalidateOutcome::FailInput;
        }
        let frames = match size {
            PageSize::Small => 1,
            PageSize::Large => PAGES_PER_LARGE,
        };
        let base = gpa & !(PAGE - 1);
        let Some(first) = self.index(base) else { return PvalidateOutcome::RmpViolation };
        if self.index(base + (frames - 1) * PAGE).is_none() {
            return PvalidateOutcome::RmpViolation;
        }
        let range = first..first + frames as usize;
        if self.entries[range.clone()].iter().any(|e| !e.assigned) {
            return PvalidateOutcome::RmpViolation;
        }
        if self.entries[range.clone()].iter().any(|e| e.large != (size == PageSize::Large)) {
            return PvalidateOutcome::FailSizeMismatch;
        }
        let changed = self.entries[first].validated != validate;
        for entry in &mut self.entries[range] {
            entry.validated = validate;
        }
        PvalidateOutcome::Done { changed }
    }

    /// Whether the guest may access the page through its private (C-bit) alias: assigned and validated.
    pub fn private_access(&self, gpa: u64) -> bool {
        self.entry(gpa).is_some_and(|e| e.assigned && e.validated)
    }

    /// Whether the guest may access the page through its shared alias: hypervisor-owned.
    pub fn shared_access(&self, gpa: u64) -> bool {
        self.entry(gpa).is_some_and(|e| !e.assigned)
    }

    /// How many pages are validated.
    pub fn validated_pages(&self) -> usize {
        self.entries.iter().filter(|e| e.validated).count()
    }
}

#[cfg(test)]
mod tests;
