//! The accept and share plans against a simulated TDX module and VMM.

extern crate std;
use std::collections::BTreeSet;
use std::vec::Vec;

use super::*;
use crate::layout::MIB;
use crate::tdx::tdvmcall::subfunction;

const SHARED_BIT: u64 = 1 << 47;

/// A TDX module that accepts pages once, and refuses 2 MiB pages in the chunks listed (as when the VMM maps them
/// with 4 KiB pages), or refuses one 4 KiB page.
#[derive(Default)]
struct SimulatedModule {
    accepted: BTreeSet<u64>,
    small_only: Vec<u64>,
    refuse_small: Option<u64>,
    calls: usize,
}

impl SimulatedModule {
    fn accept(&mut self, gpa: u64, level: PageLevel) -> bool {
        self.calls += 1;
        if level == PageLevel::Size2M && self.small_only.contains(&gpa) || Some(gpa) == self.refuse_small {
            return false;
        }
        let pages: Vec<u64> = (gpa..gpa + level.bytes()).step_by(PAGE_SIZE as usize).collect();
        // TDX_PAGE_ALREADY_ACCEPTED: the whole call fails, nothing changes.
        if pages.iter().any(|p| self.accepted.contains(p)) {
            return false;
        }
        self.accepted.extend(pages);
        true
    }
}

fn heap() -> Region {
    Region { name: "heap", base: 16 * MIB, size: 8 * MIB }
}

#[test]
fn large_pages_are_accepted_whole_and_refused_ones_page_by_page() {
    let mut module = SimulatedModule { small_only: [18 * MIB].into(), ..Default::default() };
    let mut record = ValidatedPages::<32>::new(16 * MIB / PAGE_SIZE);
    accept_range(heap(), &mut record, |gpa, level| module.accept(gpa, level)).unwrap();
    assert_eq!(module.accepted.len(), 2048);
    assert_eq!(record.count(), 2048);
    // Four 2 MiB calls, one of them refused and done as 512 small ones.
    assert_eq!(module.calls, 4 + 512);
}

#[test]
fn a_second_acceptance_is_refused_before_the_module_is_called() {
    let mut module = SimulatedModule::default();
    let mut record = ValidatedPages::<32>::new(16 * MIB / PAGE_SIZE);
    accept_range(heap(), &mut record, |gpa, level| module.accept(gpa, level)).unwrap();
    let calls = module.calls;
    let again = accept_range(heap(), &mut record, |gpa, level| module.accept(gpa, level));
    assert_eq!(again, Err(AcceptError::AlreadyAccepted(16 * MIB)));
    assert_eq!(module.calls, calls);
}

#[test]
fn a_refused_small_page_stops_acceptance() {
    let bad = 18 * MIB + 5 * PAGE_SIZE;
    let mut module = SimulatedModule { small_only: [18 * MIB].into(), refuse_small: Some(bad), ..Default::default() };
    let mut record = ValidatedPages::<32>::new(16 * MIB / PAGE_SIZE);
    let result = accept_range(heap(), &mut record, |gpa, level| module.accept(gpa, level));
    assert_eq!(result, Err(AcceptError::Refused(bad)));
    assert!(!module.accepted.contains(&(20 * MIB)), "nothing past the failure");
}

#[test]
fn ranges_outside_the_record_or_misaligned_are_refused() {
    let mut record = ValidatedPages::<32>::new(16 * MIB / PAGE_SIZE);
    let beyond = Region { name: "beyond", base: 24 * MIB, size: 2 * MIB };
    assert_eq!(accept_range(beyond, &mut record, |_, _| true), Err(AcceptError::AlreadyAccepted(24 * MIB)));
    let misaligned = Region { name: "m", base: 16 * MIB + PAGE_SIZE, size: 2 * MIB };
    assert_eq!(accept_range(misaligned, &mut record, |_, _| true), Err(AcceptError::Misaligned));
    assert_eq!(record.count(), 0);
}

/// A VMM that converts at most `per_call` bytes per MapGPA and asks to resume, or answers `resume_at` instead.
struct SimulatedVmm {
    per_call: u64,
    resume_at: Option<u64>,
    status: u64,
    calls: Vec<TdVmCall>,
}

impl SimulatedVmm {
    fn new(per_call: u64) -> Self {
        SimulatedVmm { per_call, resume_at: None, status: TDG_VP_VMCALL_SUCCESS, calls: Vec::new() }
    }

    fn answer(&mut self, call: TdVmCall) -> TdVmCallResult {
        assert_eq!(call.subfunction, subfunction::MAP_GPA);
        self.calls.push(call);
        let [gpa, size, _, _] = call.args;
        if self.status != TDG_VP_VMCALL_SUCCESS {
            return TdVmCallResult { status: self.status, ..Default::default() };
        }
        if size <= self.per_call {
            return TdVmCallResult::default();
        }
        let next = self.resume_at.unwrap_or(gpa + self.per_call);
        TdVmCallResult { status: TDG_VP_VMCALL_RETRY, r11: next, out: [0; 4] }
    }
}

fn shared() -> Region {
    Region { name: "shared", base: 9 * MIB, size: 16 * PAGE_SIZE }
}

#[test]
fn share_range_carries_the_shared_bit_and_resumes_where_the_vmm_asks() {
    let mut vmm = SimulatedVmm::new(4 * PAGE_SIZE);
    assert_eq!(share_range(shared(), SHARED_BIT, |call| vmm.answer(call)), Ok(()));
    let starts: Vec<u64> = vmm.calls.iter().map(|c| c.args[0]).collect();
    let expected: Vec<u64> = (0..4).map(|i| (9 * MIB + i * 4 * PAGE_SIZE) | SHARED_BIT).collect();
    assert_eq!(starts, expected);
    assert_eq!(vmm.calls[0].args[1], 16 * PAGE_SIZE);
}

#[test]
fn share_range_refuses_backward_outside_or_unaligned_resumes_and_failures() {
    for resume in [9 * MIB, 9 * MIB - PAGE_SIZE, 9 * MIB + 16 * PAGE_SIZE, 9 * MIB + 100, 0] {
        let mut vmm = SimulatedVmm { resume_at: Some(resume | SHARED_BIT), ..SimulatedVmm::new(PAGE_SIZE) };
        let result = share_range(shared(), SHARED_BIT, |call| vmm.answer(call));
        assert_eq!(result, Err(ShareError::BadResume(resume)), "resume {resume:#x}");
        assert_eq!(vmm.calls.len(), 1);
    }
    let mut vmm = SimulatedVmm { status: 0x8000_0000_0000_0000, ..SimulatedVmm::new(PAGE_SIZE) };
    let result = share_range(shared(), SHARED_BIT, |call| vmm.answer(call));
    assert_eq!(result, Err(ShareError::Refused(0x8000_0000_0000_0000)));
}

#[test]
fn share_range_ends_even_if_the_vmm_moves_one_page_at_a_time() {
    let mut vmm = SimulatedVmm::new(PAGE_SIZE);
    assert_eq!(share_range(shared(), SHARED_BIT, |call| vmm.answer(call)), Ok(()));
    assert_eq!(vmm.calls.len(), 16);
}
