//! The initial state of a TD vCPU (Intel TDX module base specification, "Initial State of Guest TD VCPU"; GHCI
//! 1.5, "TD VCPU initial state"; DESIGN.md §9): every vCPU starts at once, in 32-bit flat protected mode with
//! paging off, at 0xFFFF_FFF0, EFER.LME and NXE set, RBX[5:0] = GPAW, RCX = R8 = the TD HOB's address, RDX =
//! VCPUID, RSI = VCPU_INDEX (0: the boot vCPU).

/// The registers and state one TD vCPU starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdVcpuReset {
    /// RIP (CS base 0).
    pub rip: u64,
    /// CR0: PE and NE.
    pub cr0: u64,
    /// CR4: MCE (VMXE, which the TDX module also sets, means nothing to an SVM guest).
    pub cr4: u64,
    /// EFER: LME and NXE.
    pub efer: u64,
    /// RBX: GPAW.
    pub rbx: u64,
    /// RCX: the TD HOB.
    pub rcx: u64,
    /// RDX: VCPUID.
    pub rdx: u64,
    /// RSI: VCPU_INDEX.
    pub rsi: u64,
    /// R8: the TD HOB.
    pub r8: u64,
}

/// CR0.PE | CR0.NE.
const CR0_PE_NE: u64 = 1 | (1 << 5);
/// CR4.MCE.
const CR4_MCE: u64 = 1 << 6;
/// EFER.LME | EFER.NXE.
const EFER_LME_NXE: u64 = (1 << 8) | (1 << 11);

/// The state of vCPU `index` of a TD with guest physical address width `gpaw` and its TD HOB at `td_hob`.
pub fn vcpu(index: u32, gpaw: u8, td_hob: u64) -> TdVcpuReset {
    TdVcpuReset {
        rip: 0xffff_fff0,
        cr0: CR0_PE_NE,
        cr4: CR4_MCE,
        efer: EFER_LME_NXE,
        rbx: u64::from(gpaw),
        rcx: td_hob,
        rdx: u64::from(index),
        rsi: u64::from(index),
        r8: td_hob,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vcpu_starts_at_the_reset_vector_with_its_index() {
        for index in 0..2 {
            let state = vcpu(index, 48, 0x81_2000);
            assert_eq!(state.rip, 0xffff_fff0);
            assert_eq!((state.rbx, state.rcx, state.r8, state.rsi), (48, 0x81_2000, 0x81_2000, u64::from(index)));
            assert_eq!(state.cr0 & 1, 1, "protected mode");
            assert_eq!(state.cr0 & (1 << 31), 0, "paging off");
        }
    }
}
