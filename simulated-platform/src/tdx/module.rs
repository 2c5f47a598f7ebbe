//! The TDX module's answers to the TDCALL leaves a TD uses, as register values (Intel TDX module ABI
//! specification): TDG.VP.INFO and the status codes of TDG.MEM.PAGE.ACCEPT, whose rule is the secure EPT's (kept
//! in the same table as SNP's RMP: "assigned" a private page, "validated" accepted).

use ovmf::tdx::tdcall::PageLevel;

use crate::rmp::{PageSize, PvalidateOutcome, Rmp};

/// TDX_SUCCESS.
pub const TDX_SUCCESS: u64 = 0;
/// TDX_OPERAND_INVALID (class 0xC000_01xx).
pub const TDX_OPERAND_INVALID: u64 = 0xc000_0100_0000_0000;
/// TDX_PAGE_ALREADY_ACCEPTED.
pub const TDX_PAGE_ALREADY_ACCEPTED: u64 = 0x0000_0b0a_0000_0000;
/// TDX_PAGE_SIZE_MISMATCH.
pub const TDX_PAGE_SIZE_MISMATCH: u64 = 0xc000_0b0b_0000_0000;
/// TDX_NO_VE_INFO: TDG.VP.VEINFO.GET without a pending #VE.
pub const TDX_NO_VE_INFO: u64 = 0xc000_0a00_0000_0000;

/// TDG.VP.INFO's outputs: RCX (GPAW), RDX (ATTRIBUTES), R8 (vCPUs now and at most), R9 (this vCPU's index).
pub fn vp_info(gpaw: u8, attributes: u64, vcpus: u32, index: u32) -> [u64; 4] {
    [u64::from(gpaw), attributes, u64::from(vcpus) | (u64::from(vcpus) << 32), u64::from(index)]
}

/// TDG.MEM.PAGE.ACCEPT of the page RCX names (`gpa | level`): the status, with the table updated.
pub fn accept(table: &mut Rmp<'_>, rcx: u64) -> u64 {
    let level = match rcx & 0x7 {
        0 => PageLevel::Size4K,
        1 => PageLevel::Size2M,
        _ => return TDX_OPERAND_INVALID,
    };
    let gpa = rcx & !0xfff;
    if !gpa.is_multiple_of(level.bytes()) {
        return TDX_OPERAND_INVALID;
    }
    let size = match level {
        PageLevel::Size4K => PageSize::Small,
        PageLevel::Size2M => PageSize::Large,
    };
    match table.pvalidate(gpa, size, true) {
        PvalidateOutcome::Done { changed: true } => TDX_SUCCESS,
        PvalidateOutcome::Done { changed: false } => TDX_PAGE_ALREADY_ACCEPTED,
        PvalidateOutcome::FailSizeMismatch => TDX_PAGE_SIZE_MISMATCH,
        PvalidateOutcome::FailInput | PvalidateOutcome::RmpViolation => TDX_OPERAND_INVALID,
    }
}

#[cfg(test)]
mod tests {
    use ovmf::tdx::tdcall::{VpInfo, accept_operand};

    use super::*;
    use crate::rmp::RmpEntry;

    const BASE: u64 = 16 << 20;

    #[test]
    fn vp_info_reads_back_as_the_guest_decodes_it() {
        let [rcx, rdx, r8, r9] = vp_info(48, 1 << 28, 2, 0);
        let info = VpInfo::from_registers(rcx, rdx, r8, r9);
        assert_eq!((info.gpaw, info.attributes, info.num_vcpus, info.vcpu_index), (48, 1 << 28, 2, 0));
        assert_eq!(info.shared_bit(), Some(47));
    }

    #[test]
    fn a_pending_page_is_accepted_once_and_sizes_must_match() {
        let mut storage = [RmpEntry::default(); 1024];
        let mut table = Rmp::new(BASE, &mut storage);
        table.update_large(BASE, true).unwrap();
        let large = accept_operand(BASE, PageLevel::Size2M).unwrap();
        let small = accept_operand(BASE + 4096, PageLevel::Size4K).unwrap();
        assert_eq!(accept(&mut table, small), TDX_PAGE_SIZE_MISMATCH, "4 KiB accept of a 2 MiB page");
        assert_eq!(accept(&mut table, large), TDX_SUCCESS);
        assert_eq!(accept(&mut table, large), TDX_PAGE_ALREADY_ACCEPTED);
        for page in 0..512 {
            table.update(BASE + (1 << 21) + page * 4096, true).unwrap();
        }
        let small_backed = accept_operand(BASE + (1 << 21), PageLevel::Size2M).unwrap();
        assert_eq!(accept(&mut table, small_backed), TDX_PAGE_SIZE_MISMATCH, "2 MiB accept of 4 KiB pages");
        assert_eq!(accept(&mut table, BASE | 5), TDX_OPERAND_INVALID, "an undefined level");
        assert_eq!(accept(&mut table, (BASE + 4096) | 1), TDX_OPERAND_INVALID, "a misaligned 2 MiB page");
        assert_eq!(accept(&mut table, 1 << 40), TDX_OPERAND_INVALID, "not the TD's memory");
    }
}
