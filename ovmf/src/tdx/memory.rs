//! The TD's memory plans, with the TDCALL and TDG.VP.VMCALL left to the kernel so that the host tests them against
//! a simulated TDX module and VMM:
//!
//! - [`accept_range`]: accept every page of a range exactly once (TDG.MEM.PAGE.ACCEPT), 2 MiB at a time where the
//!   VMM backs the range with large pages and 4 KiB at a time where it does not.
//! - [`share_range`]: convert a range to shared with MapGPA, resuming where the VMM asks, forward only and a bounded
//!   number of times (GHCI 1.5, "TDG.VP.VMCALL<MapGPA>").

use super::tdcall::PageLevel;
use super::tdvmcall::{TDG_VP_VMCALL_RETRY, TDG_VP_VMCALL_SUCCESS, TdVmCall, TdVmCallResult};
use crate::layout::{PAGE_SIZE, Region};
use crate::validated_pages::ValidatedPages;

/// Why a range was not accepted; the kernel ends the TD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptError {
    /// The range is not made of whole 2 MiB pages.
    Misaligned,
    /// This page was accepted before, or lies outside the record: it is not accepted again.
    AlreadyAccepted(u64),
    /// The TDX module refused this 4 KiB page.
    Refused(u64),
}

/// Accepts every page of `range` (2 MiB-aligned) once, through `accept(gpa, level)` (true on success), recording
/// each 4 KiB page in `accepted` before it is accepted. A 2 MiB page the module refuses is accepted as 512 small
/// pages instead.
pub fn accept_range<const WORDS: usize>(
    range: Region,
    accepted: &mut ValidatedPages<WORDS>,
    mut accept: impl FnMut(u64, PageLevel) -> bool,
) -> Result<(), AcceptError> {
    let huge = PageLevel::Size2M.bytes();
    if !range.base.is_multiple_of(huge) || !range.size.is_multiple_of(huge) {
        return Err(AcceptError::Misaligned);
    }
    for chunk in (range.base..range.end()).step_by(huge as usize) {
        let pages = (chunk..chunk + huge).step_by(PAGE_SIZE as usize);
        for gpa in pages.clone() {
            accepted.mark(gpa / PAGE_SIZE).map_err(|_| AcceptError::AlreadyAccepted(gpa))?;
        }
        if accept(chunk, PageLevel::Size2M) {
            continue;
        }
        for gpa in pages {
            if !accept(gpa, PageLevel::Size4K) {
                return Err(AcceptError::Refused(gpa));
            }
        }
    }
    Ok(())
}

/// Why a range was not converted to shared; the kernel ends the TD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareError {
    /// The VMM answered this status.
    Refused(u64),
    /// The VMM asked to resume at this GPA, which is not a later page of the range.
    BadResume(u64),
    /// The VMM asked to resume more often than the range has pages.
    TooManyResumes,
}

/// Converts `range` (whole pages) to shared through `vmcall` (MapGPA with `shared_bit` set in the GPA). The VMM
/// may ask to resume at a later page; a resume point that does not move forward inside the range, or more resumes
/// than the range has pages, is a failure, as is any other status.
pub fn share_range(
    range: Region,
    shared_bit: u64,
    mut vmcall: impl FnMut(TdVmCall) -> TdVmCallResult,
) -> Result<(), ShareError> {
    let mut from = range.base;
    for _ in 0..=range.size / PAGE_SIZE {
        let answer = vmcall(TdVmCall::map_gpa(from | shared_bit, range.end() - from));
        match answer.status {
            TDG_VP_VMCALL_SUCCESS => return Ok(()),
            TDG_VP_VMCALL_RETRY => {
                let resume = answer.r11 & !shared_bit;
                if resume <= from || resume >= range.end() || !resume.is_multiple_of(PAGE_SIZE) {
                    return Err(ShareError::BadResume(resume));
                }
                from = resume;
            }
            status => return Err(ShareError::Refused(status)),
        }
    }
    Err(ShareError::TooManyResumes)
}

#[cfg(test)]
mod tests;
