//! What the TDX module tells a TD in its #VE information (TDG.VP.VEINFO.GET; Intel TDX module base specification,
//! "Virtualization Exception"): the VMX exit reason, the exit qualification, the GPA and the instruction length,
//! made here from what the simulated platform's SVM exits say.

use ovmf::snp::ioio::IOIO_TYPE_IN;
pub use ovmf::tdx::ve::VeInfo;
use ovmf::tdx::ve::exit_reason;

use crate::ioio::{IOIO_REP, IOIO_STR, exit_info_size};

/// The #VE vector.
pub const VECTOR_VE: u8 = 20;

/// The #VE for an IN or OUT: SVM's EXITINFO1 turned into VMX's exit qualification (Intel SDM vol. 3C, table 28-5:
/// size - 1 in 2:0, IN in 3, string in 4, REP in 5, port in 31:16) and the length from the next RIP.
pub fn port_io(exit_info1: u64, rip: u64, next_rip: u64) -> Option<VeInfo> {
    let size = u64::from(exit_info_size(exit_info1)?) - 1;
    let qualification = size
        | (u64::from(exit_info1 & IOIO_TYPE_IN != 0) << 3)
        | (u64::from(exit_info1 & IOIO_STR != 0) << 4)
        | (u64::from(exit_info1 & IOIO_REP != 0) << 5)
        | (exit_info1 & 0xffff_0000);
    let length = u32::try_from(next_rip.checked_sub(rip)?).ok().filter(|&l| (1..=15).contains(&l))?;
    Some(VeInfo {
        exit_reason: exit_reason::IO_INSTRUCTION,
        exit_qualification: qualification,
        gpa: 0,
        instruction_length: length,
    })
}

/// The #VE for CPUID (2 bytes).
pub fn cpuid() -> VeInfo {
    VeInfo { exit_reason: exit_reason::CPUID, instruction_length: 2, ..VeInfo::default() }
}

/// The #VE for RDMSR or WRMSR (2 bytes).
pub fn msr(write: bool) -> VeInfo {
    let reason = if write { exit_reason::MSR_WRITE } else { exit_reason::MSR_READ };
    VeInfo { exit_reason: reason, instruction_length: 2, ..VeInfo::default() }
}

/// The #VE for HLT (1 byte).
pub fn hlt() -> VeInfo {
    VeInfo { exit_reason: exit_reason::HLT, instruction_length: 1, ..VeInfo::default() }
}

/// The #VE for an access to a private page that is not accepted (an EPT violation), at `gpa`.
pub fn ept_violation(gpa: u64, write: bool, fetch: bool) -> VeInfo {
    let qualification = 1 | (u64::from(write) << 1) | (u64::from(fetch) << 2);
    VeInfo { exit_reason: exit_reason::EPT_VIOLATION, exit_qualification: qualification, gpa, instruction_length: 0 }
}

#[cfg(test)]
mod tests {
    use ovmf::tdx::ve::IoQualification;

    use super::*;

    #[test]
    fn port_accesses_read_back_as_the_guest_decodes_them() {
        // IN AL, DX from COM1's line status register: SZ8 and TYPE, port 0x3FD.
        let info = port_io((0x3fd << 16) | (1 << 4) | 1, 0x1000, 0x1001).unwrap();
        let io = IoQualification::decode(info.exit_qualification).unwrap();
        assert_eq!((io.port, io.size, io.is_in, info.instruction_length), (0x3fd, 1, true, 1));
        // OUT DX, EAX (SZ32) and OUT imm8, AX (SZ16, 2 bytes).
        let out32 = port_io((0xcfc << 16) | (1 << 6), 0x1000, 0x1001).unwrap();
        assert_eq!(IoQualification::decode(out32.exit_qualification).unwrap().size, 4);
        let out16 = port_io((0x43 << 16) | (1 << 5), 0x1000, 0x1002).unwrap();
        assert_eq!((IoQualification::decode(out16.exit_qualification).unwrap().size, out16.instruction_length), (2, 2));
    }

    #[test]
    fn string_forms_and_impossible_lengths_are_kept_from_the_guest() {
        let rep_outsb = port_io((0x3f8 << 16) | (1 << 4) | IOIO_STR | IOIO_REP, 0x1000, 0x1002).unwrap();
        assert_eq!(IoQualification::decode(rep_outsb.exit_qualification), None, "the guest refuses string I/O");
        assert_eq!(port_io(1 << 4, 0x1000, 0x1000), None);
        assert_eq!(port_io(1 << 4, 0x1000, 0x0fff), None);
        assert_eq!(port_io(0, 0x1000, 0x1001), None, "no size");
    }
}
