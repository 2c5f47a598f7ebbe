use super::*;
use crate::snp::cpuid_page::PAGE_LEN;

/// A CPUID page with the given (leaf, subleaf, eax, ebx, ecx, edx) entries.
fn cpuid_page(entries: &[(u32, u32, u32, u32, u32, u32)]) -> [u8; PAGE_LEN] {
    let mut page = [0u8; PAGE_LEN];
    page[..4].copy_from_slice(&(entries.len() as u32).to_le_bytes());
    for (i, &(leaf, subleaf, eax, ebx, ecx, edx)) in entries.iter().enumerate() {
        let at = 16 + i * 0x30;
        page[at..at + 4].copy_from_slice(&leaf.to_le_bytes());
        page[at + 4..at + 8].copy_from_slice(&subleaf.to_le_bytes());
        for (j, value) in [eax, ebx, ecx, edx].into_iter().enumerate() {
            page[at + 24 + 4 * j..at + 28 + 4 * j].copy_from_slice(&value.to_le_bytes());
        }
    }
    page
}

/// A hypervisor that completes the exit: SW_EXITINFO1 = 0 and the given results marked valid.
fn hypervisor(results: &'static [(usize, u64)]) -> impl FnOnce(&mut Ghcb) {
    move |ghcb: &mut Ghcb| {
        ghcb.set(offset::SW_EXITINFO1, 0);
        for &(at, value) in results {
            ghcb.set(at, value);
        }
    }
}

fn fresh_ghcb() -> Ghcb {
    let mut ghcb = Ghcb::default();
    ghcb.reset(2);
    ghcb
}

#[test]
fn cpuid_is_answered_from_the_page_and_never_needs_the_hypervisor() {
    let bytes = cpuid_page(&[(7, 0, 0, 0x2c9, 0, 0), (7, 1, 1, 2, 3, 4), (0x8000_001f, 0, 0x1b, 0x33, 0, 0)]);
    let page = CpuidPage::new(&bytes).unwrap();
    let mut regs = InstructionRegisters { rax: 0xffff_ffff_0000_0007, rbx: 9, rcx: 1, rdx: 9 };
    assert_eq!(serve_cpuid(&[0x0f, 0xa2], &mut regs, &page), Ok(2));
    assert_eq!(regs, InstructionRegisters { rax: 1, rbx: 2, rcx: 3, rdx: 4 }, "subleaf 1, upper bits of RAX ignored");
    let mut regs = InstructionRegisters { rax: 0x8000_001f, ..Default::default() };
    serve_cpuid(&[0x0f, 0xa2], &mut regs, &page).unwrap();
    assert_eq!((regs.rax, regs.rbx), (0x1b, 0x33));
    let mut regs = InstructionRegisters { rax: 0x4000_0000, rbx: 5, rcx: 6, rdx: 7 };
    serve_cpuid(&[0x0f, 0xa2], &mut regs, &page).unwrap();
    assert_eq!(regs, InstructionRegisters::default(), "a leaf the page lacks reads as zeros");
    assert_eq!(serve_cpuid(&[0x0f, 0x32], &mut regs, &page), Err(VcError::Unhandled), "not CPUID at RIP");
}

#[test]
fn out_sends_only_the_accessed_bytes() {
    let mut ghcb = fresh_ghcb();
    let mut regs = InstructionRegisters { rax: 0x1122_3344_5566_7741, rdx: 0x3f8, ..Default::default() };
    let mut seen = None;
    let exit = |ghcb: &mut Ghcb| {
        seen = Some((ghcb.get(offset::SW_EXITCODE), ghcb.get(offset::SW_EXITINFO1), ghcb.get(offset::RAX)));
        ghcb.set(offset::SW_EXITINFO1, 0);
    };
    assert_eq!(serve_with_ghcb(exit_code::IOIO, &[0xee], &mut regs, &mut ghcb, exit), Ok(1));
    assert_eq!(seen, Some((Some(0x7b), Some(0x03f8_0210), Some(0x41))));
    assert_eq!(regs.rax, 0x1122_3344_5566_7741, "OUT changes no register");
}

#[test]
fn in_merges_narrow_results_and_zero_extends_32_bit_ones() {
    let start = InstructionRegisters { rax: 0xaaaa_bbbb_cccc_dddd, rdx: 0x3fd, ..Default::default() };
    let cases: [(&[u8], u64, u64); 3] = [
        (&[0xec], 0x1_2360, 0xaaaa_bbbb_cccc_dd60),
        (&[0x66, 0xed], 0x1_2360, 0xaaaa_bbbb_cccc_2360),
        (&[0xed], 0xffff_0001_2360, 0x0001_2360),
    ];
    for (code, answer, expected) in cases {
        let mut ghcb = fresh_ghcb();
        let mut regs = start;
        let exit = move |ghcb: &mut Ghcb| {
            ghcb.set(offset::SW_EXITINFO1, 0);
            ghcb.set(offset::RAX, answer);
        };
        assert_eq!(serve_with_ghcb(exit_code::IOIO, code, &mut regs, &mut ghcb, exit), Ok(code.len() as u64));
        assert_eq!(regs.rax, expected, "{code:x?}");
    }
}

#[test]
fn rdmsr_and_wrmsr_carry_32_bit_halves() {
    let mut ghcb = fresh_ghcb();
    let mut regs =
        InstructionRegisters { rax: 0xdead_0000_0000_0000, rcx: 0xffff_ffff_c000_0103, ..Default::default() };
    let exit = hypervisor(&[(offset::RAX, 0x9999_0000_1234_5678), (offset::RDX, 0xabcd)]);
    assert_eq!(serve_with_ghcb(exit_code::MSR, &[0x0f, 0x32], &mut regs, &mut ghcb, exit), Ok(2));
    assert_eq!((regs.rax, regs.rdx), (0x1234_5678, 0xabcd));
    assert_eq!(ghcb.get(offset::RCX), Some(0xc000_0103));

    let mut ghcb = fresh_ghcb();
    let mut regs = InstructionRegisters { rax: 0x7_0000_0001, rcx: 0x10, rdx: 0x8_0000_0002, ..Default::default() };
    let mut sent = None;
    let exit = |ghcb: &mut Ghcb| {
        sent = Some((ghcb.get(offset::SW_EXITINFO1), ghcb.get(offset::RAX), ghcb.get(offset::RDX)));
        ghcb.set(offset::SW_EXITINFO1, 0);
    };
    assert_eq!(serve_with_ghcb(exit_code::MSR, &[0x0f, 0x30], &mut regs, &mut ghcb, exit), Ok(2));
    assert_eq!(sent, Some((Some(1), Some(1), Some(2))));
}

#[test]
fn failures_and_unmarked_results_are_refused() {
    // The hypervisor reports failure.
    let mut regs = InstructionRegisters { rdx: 0x3f8, ..Default::default() };
    let fail = |ghcb: &mut Ghcb| ghcb.set(offset::SW_EXITINFO1, 1);
    assert_eq!(serve_with_ghcb(exit_code::IOIO, &[0xee], &mut regs, &mut fresh_ghcb(), fail), Err(VcError::ExitFailed));
    // Success, but the IN result is not marked valid.
    let before = InstructionRegisters { rax: 5, rdx: 0x3fd, ..Default::default() };
    let mut regs = before;
    let no_rax = hypervisor(&[]);
    assert_eq!(
        serve_with_ghcb(exit_code::IOIO, &[0xec], &mut regs, &mut fresh_ghcb(), no_rax),
        Err(VcError::ExitFailed)
    );
    assert_eq!(regs, before, "nothing changes on failure");
    // RDMSR without RDX.
    let only_rax = hypervisor(&[(offset::RAX, 1)]);
    assert_eq!(
        serve_with_ghcb(exit_code::MSR, &[0x0f, 0x32], &mut regs, &mut fresh_ghcb(), only_rax),
        Err(VcError::ExitFailed)
    );
}

#[test]
fn other_exits_and_forms_are_unhandled_without_an_exit() {
    let never = |_: &mut Ghcb| panic!("no exit may be made");
    let mut regs = InstructionRegisters::default();
    for (code_byte, exit) in [
        (exit_code::IOIO, &[0xf3u8, 0x6e][..]),
        (exit_code::MSR, &[0x0f, 0xa2]),
        (exit_code::RDTSC, &[0x0f, 0x01, 0xf9]),
        (exit_code::RDTSCP, &[0x0f, 0x31]),
        (0x7f, &[0x0f, 0x31]),
    ] {
        assert_eq!(serve_with_ghcb(code_byte, exit, &mut regs, &mut fresh_ghcb(), never), Err(VcError::Unhandled));
    }
}

#[test]
fn rdtsc_and_rdtscp_take_the_hypervisors_values_zero_extended() {
    let mut regs = InstructionRegisters { rax: u64::MAX, rbx: 1, rcx: u64::MAX, rdx: u64::MAX };
    let exit = hypervisor(&[(offset::RAX, 0xffff_0000_1111_2222), (offset::RDX, 0x33), (offset::RCX, 0x5)]);
    assert_eq!(serve_with_ghcb(exit_code::RDTSC, &[0x0f, 0x31], &mut regs, &mut fresh_ghcb(), exit), Ok(2));
    assert_eq!(regs, InstructionRegisters { rax: 0x1111_2222, rbx: 1, rcx: u64::MAX, rdx: 0x33 }, "RDTSC leaves RCX");
    let exit = hypervisor(&[(offset::RAX, 7), (offset::RDX, 8), (offset::RCX, 0xffff_ffff_0000_0009)]);
    assert_eq!(serve_with_ghcb(exit_code::RDTSCP, &[0x0f, 0x01, 0xf9], &mut regs, &mut fresh_ghcb(), exit), Ok(3));
    assert_eq!((regs.rax, regs.rcx, regs.rdx), (7, 9, 8));
    // RDTSCP without TSC_AUX.
    let mut regs = InstructionRegisters::default();
    let no_rcx = hypervisor(&[(offset::RAX, 7), (offset::RDX, 8)]);
    let result = serve_with_ghcb(exit_code::RDTSCP, &[0x0f, 0x01, 0xf9], &mut regs, &mut fresh_ghcb(), no_rcx);
    assert_eq!(result, Err(VcError::ExitFailed));
    assert_eq!(regs, InstructionRegisters::default());
}
