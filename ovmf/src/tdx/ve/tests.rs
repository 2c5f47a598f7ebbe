//! The #VE service against a simulated VMM that records each call and answers as GHCI 1.5 describes.

extern crate std;
use std::vec::Vec;

use super::*;
use crate::emulation::port_mask;
use crate::tdx::tdvmcall::subfunction;

/// A VMM with one port (0x3f8, reads 0xA5A5_A5A5), one MSR (0x1b) and CPUID leaf 0x4000_0000.
#[derive(Default)]
struct SimulatedVmm {
    calls: Vec<TdVmCall>,
    msr_1b: u64,
    fail: bool,
}

impl SimulatedVmm {
    fn answer(&mut self, call: TdVmCall) -> TdVmCallResult {
        self.calls.push(call);
        if self.fail {
            return TdVmCallResult { status: 0x8000_0000_0000_0000, r11: 0x1234, out: [1, 2, 3, 4] };
        }
        let [a, b, _, d] = call.args;
        let mut result = TdVmCallResult::default();
        match call.subfunction {
            subfunction::CPUID if a == 0x4000_0000 => {
                result.out = [0xffff_ffff_4000_0001, 0x4b4d564b, 0x564b4d56, 0x4d]
            }
            subfunction::IO if b == 0 => result.r11 = 0xffff_ffff_a5a5_a5a5,
            subfunction::IO => assert!(d <= port_mask(a as u8), "OUT carries only the accessed bytes"),
            subfunction::RDMSR => result.r11 = self.msr_1b,
            subfunction::WRMSR => self.msr_1b = b,
            _ => {}
        }
        result
    }
}

/// Interrupts enabled (RFLAGS.IF) or not.
const RFLAGS_IF_SET: u64 = 0x202;
const RFLAGS_IF_CLEAR: u64 = 0x2;

fn serve_with(vmm: &mut SimulatedVmm, info: VeInfo, regs: &mut InstructionRegisters) -> Result<u64, VeError> {
    serve(&info, regs, RFLAGS_IF_SET, |call| vmm.answer(call))
}

fn info(exit_reason: u32, exit_qualification: u64, instruction_length: u32) -> VeInfo {
    VeInfo { exit_reason, exit_qualification, gpa: 0, instruction_length }
}

/// An IN or OUT qualification: size code, direction, port.
fn io(size_code: u64, is_in: bool, port: u16) -> u64 {
    size_code | (u64::from(is_in) << 3) | (u64::from(port) << 16)
}

#[test]
fn cpuid_takes_the_vmm_answer_zero_extended_and_steps_over_the_instruction() {
    let mut vmm = SimulatedVmm::default();
    let mut regs = InstructionRegisters { rax: 0xdead_0000_4000_0000, rcx: 0, rbx: 7, rdx: 9 };
    assert_eq!(serve_with(&mut vmm, info(exit_reason::CPUID, 0, 2), &mut regs), Ok(2));
    assert_eq!(vmm.calls, [TdVmCall::cpuid(0x4000_0000, 0)]);
    assert_eq!((regs.rax, regs.rbx, regs.rcx, regs.rdx), (0x4000_0001, 0x4b4d564b, 0x564b4d56, 0x4d));
}

#[test]
fn in_merges_into_rax_by_size_and_in_eax_zero_extends() {
    let cases = [(0, 0xffff_ffff_ffff_ff00 | 0xa5), (1, 0xffff_ffff_ffff_0000 | 0xa5a5), (3, 0xa5a5_a5a5)];
    for (size_code, expected) in cases {
        let mut vmm = SimulatedVmm::default();
        let mut regs = InstructionRegisters { rax: u64::MAX, ..Default::default() };
        let served = serve_with(&mut vmm, info(exit_reason::IO_INSTRUCTION, io(size_code, true, 0x3f8), 1), &mut regs);
        assert_eq!(served, Ok(1));
        assert_eq!(regs.rax, expected, "size code {size_code}");
    }
}

#[test]
fn out_sends_only_the_accessed_bytes_to_the_port() {
    let mut vmm = SimulatedVmm::default();
    let mut regs = InstructionRegisters { rax: 0x1122_3344_5566_7741, ..Default::default() };
    let served = serve_with(&mut vmm, info(exit_reason::IO_INSTRUCTION, io(0, false, 0x3f8), 1), &mut regs);
    assert_eq!(served, Ok(1));
    assert_eq!(vmm.calls, [TdVmCall::port_out(0x3f8, 1, 0x41)]);
    assert_eq!(regs.rax, 0x1122_3344_5566_7741, "OUT leaves RAX alone");
}

#[test]
fn string_rep_and_undefined_size_io_is_refused_without_calling_the_vmm() {
    for qualification in [io(0, true, 0x3f8) | 1 << 4, io(0, false, 0x3f8) | 1 << 5, io(2, true, 0x3f8)] {
        let mut vmm = SimulatedVmm::default();
        let mut regs = InstructionRegisters::default();
        let served = serve_with(&mut vmm, info(exit_reason::IO_INSTRUCTION, qualification, 1), &mut regs);
        assert_eq!(served, Err(VeError::Unhandled));
        assert!(vmm.calls.is_empty());
    }
}

#[test]
fn rdmsr_and_wrmsr_split_and_join_edx_eax() {
    let mut vmm = SimulatedVmm::default();
    let mut regs =
        InstructionRegisters { rcx: 0x1b, rdx: 0x1234_5678, rax: 0xffff_ffff_9abc_def0, ..Default::default() };
    assert_eq!(serve_with(&mut vmm, info(exit_reason::MSR_WRITE, 0, 2), &mut regs), Ok(2));
    assert_eq!(vmm.msr_1b, 0x1234_5678_9abc_def0);
    let mut regs = InstructionRegisters { rcx: 0x1b, rax: u64::MAX, rdx: u64::MAX, ..Default::default() };
    assert_eq!(serve_with(&mut vmm, info(exit_reason::MSR_READ, 0, 2), &mut regs), Ok(2));
    assert_eq!((regs.rdx, regs.rax), (0x1234_5678, 0x9abc_def0));
}

#[test]
fn hlt_tells_the_vmm_whether_interrupts_are_blocked() {
    let mut vmm = SimulatedVmm::default();
    let mut regs = InstructionRegisters::default();
    for rflags in [RFLAGS_IF_CLEAR, RFLAGS_IF_SET] {
        assert_eq!(serve(&info(exit_reason::HLT, 0, 1), &mut regs, rflags, |call| vmm.answer(call)), Ok(1));
    }
    assert_eq!(vmm.calls, [TdVmCall::hlt(true), TdVmCall::hlt(false)]);
}

#[test]
fn a_failed_vmcall_leaves_the_registers_untouched() {
    let mut vmm = SimulatedVmm { fail: true, ..Default::default() };
    let before = InstructionRegisters { rax: 1, rbx: 2, rcx: 3, rdx: 4 };
    for reason in [exit_reason::CPUID, exit_reason::MSR_READ] {
        let mut regs = before;
        assert_eq!(serve_with(&mut vmm, info(reason, 0, 2), &mut regs), Err(VeError::VmCallFailed));
        assert_eq!(regs, before);
    }
    let mut regs = before;
    let served = serve_with(&mut vmm, info(exit_reason::IO_INSTRUCTION, io(3, true, 0x3f8), 1), &mut regs);
    assert_eq!(served, Err(VeError::VmCallFailed));
    assert_eq!(regs, before);
}

#[test]
fn ept_violations_other_reasons_and_bad_lengths_are_refused() {
    for (reason, length) in [(exit_reason::EPT_VIOLATION, 3), (1, 1), (exit_reason::CPUID, 0), (exit_reason::CPUID, 16)]
    {
        let mut vmm = SimulatedVmm::default();
        let mut regs = InstructionRegisters::default();
        assert_eq!(serve_with(&mut vmm, info(reason, 0, length), &mut regs), Err(VeError::Unhandled));
        assert!(vmm.calls.is_empty(), "reason {reason}, length {length}");
    }
}
