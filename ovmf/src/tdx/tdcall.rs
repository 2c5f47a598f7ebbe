//! TDCALL: the guest's calls into the TDX module (Intel TDX module ABI specification, "TDCALL leaves"). RAX holds
//! the leaf on entry and the completion status on return.

/// TDCALL leaf numbers (RAX on entry).
pub mod leaf {
    /// TDG.VP.VMCALL: a call to the VMM ([`super::super::tdvmcall`]).
    pub const TDG_VP_VMCALL: u64 = 0;
    /// TDG.VP.INFO: the TD's execution environment (GPAW, attributes, vCPU counts).
    pub const TDG_VP_INFO: u64 = 1;
    /// TDG.VP.VEINFO.GET: the information of the pending #VE; must be called before another #VE can be taken.
    pub const TDG_VP_VEINFO_GET: u64 = 3;
    /// TDG.MR.REPORT: a TDREPORT_STRUCT carrying 64 bytes of report data.
    pub const TDG_MR_REPORT: u64 = 4;
    /// TDG.MEM.PAGE.ACCEPT: accept a pending private page into the TD.
    pub const TDG_MEM_PAGE_ACCEPT: u64 = 6;
}

/// The completion status of a successful TDCALL.
pub const TDX_SUCCESS: u64 = 0;

/// TDG.MEM.PAGE.ACCEPT's page levels (RCX bits 2:0): 4 KiB and 2 MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum PageLevel {
    /// A 4 KiB page.
    Size4K = 0,
    /// A 2 MiB page.
    Size2M = 1,
}

impl PageLevel {
    /// The page size in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            PageLevel::Size4K => 4 << 10,
            PageLevel::Size2M => 2 << 20,
        }
    }
}

/// RCX for TDG.MEM.PAGE.ACCEPT of the page at `gpa` (aligned to the level's size), or `None` if misaligned.
pub const fn accept_operand(gpa: u64, level: PageLevel) -> Option<u64> {
    if !gpa.is_multiple_of(level.bytes()) {
        return None;
    }
    Some(gpa | level as u64)
}

/// What TDG.VP.INFO returns (RCX, RDX, R8, R9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VpInfo {
    /// RCX bits 5:0: the guest physical address width, 48 or 52.
    pub gpaw: u8,
    /// RDX: the TD's ATTRIBUTES.
    pub attributes: u64,
    /// R8 bits 31:0: the number of vCPUs.
    pub num_vcpus: u32,
    /// R9 bits 31:0: this vCPU's index.
    pub vcpu_index: u32,
}

impl VpInfo {
    /// Decodes TDG.VP.INFO's output registers.
    pub const fn from_registers(rcx: u64, rdx: u64, r8: u64, r9: u64) -> Self {
        VpInfo { gpaw: (rcx & 0x3f) as u8, attributes: rdx, num_vcpus: r8 as u32, vcpu_index: r9 as u32 }
    }

    /// The shared bit: the top bit of the guest physical address, GPA[GPAW - 1] (GHCI 1.5, "TD shared memory").
    /// `None` for a GPAW the TDX module does not define (only 48 and 52 exist).
    pub const fn shared_bit(&self) -> Option<u8> {
        match self.gpaw {
            48 | 52 => Some(self.gpaw - 1),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_bit_is_the_top_gpa_bit_for_both_defined_widths_only() {
        let info = |rcx| VpInfo::from_registers(rcx, 0, 1, 0);
        assert_eq!(info(48).shared_bit(), Some(47));
        assert_eq!(info(52).shared_bit(), Some(51));
        // Bits above 5:0 are not part of GPAW.
        assert_eq!(info(0xff00 | 48).shared_bit(), Some(47));
        for gpaw in [0, 39, 46, 47, 49, 51, 53, 63] {
            assert_eq!(info(gpaw).shared_bit(), None, "GPAW {gpaw}");
        }
    }

    #[test]
    fn vp_info_takes_the_low_halves_of_r8_and_r9() {
        let info = VpInfo::from_registers(52, 0x1000_0000, 0x0000_0008_0000_0002, 0xffff_ffff_0000_0001);
        assert_eq!((info.num_vcpus, info.vcpu_index, info.attributes), (2, 1, 0x1000_0000));
    }

    #[test]
    fn accept_operand_carries_the_level_and_refuses_misaligned_pages() {
        assert_eq!(accept_operand(0x100_0000, PageLevel::Size2M), Some(0x100_0001));
        assert_eq!(accept_operand(0x100_1000, PageLevel::Size4K), Some(0x100_1000));
        assert_eq!(accept_operand(0x100_1000, PageLevel::Size2M), None);
        assert_eq!(accept_operand(0x100_0800, PageLevel::Size4K), None);
    }
}
