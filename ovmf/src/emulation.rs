//! What the #VC handler (SEV-SNP, `snp::vc`) and the #VE handler (TDX, `tdx::ve`) share: the registers an
//! instruction emulated by the hypervisor reads and writes, and how its answers land in them.

/// The interrupted general registers the emulated instructions (CPUID, IN/OUT, RDMSR/WRMSR, RDTSC/RDTSCP) read
/// and write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstructionRegisters {
    /// RAX.
    pub rax: u64,
    /// RBX.
    pub rbx: u64,
    /// RCX.
    pub rcx: u64,
    /// RDX.
    pub rdx: u64,
}

/// The low 32 bits: what a 32-bit register (EAX, ECX, EDX) holds; writing one zero-extends it in 64-bit mode.
pub const LOW_32: u64 = 0xffff_ffff;

/// The bits of RAX a port access of `size` bytes (1, 2 or 4) moves.
pub const fn port_mask(size: u8) -> u64 {
    (1u64 << (8 * size as u32)) - 1
}

/// RAX after an IN of `size` bytes read `value`: IN AL and IN AX keep the other bits of RAX, IN EAX zero-extends
/// (Intel SDM vol. 2, IN; vol. 1, 3.4.1.1).
pub const fn port_in_result(rax: u64, size: u8, value: u64) -> u64 {
    let mask = port_mask(size);
    let kept = if size == 4 { 0 } else { rax & !mask };
    kept | (value & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_merges_by_size_and_zero_extends_for_32_bits() {
        assert_eq!(port_in_result(u64::MAX, 1, 0xffff_ffa5), 0xffff_ffff_ffff_ffa5);
        assert_eq!(port_in_result(u64::MAX, 2, 0xffff_a5a5), 0xffff_ffff_ffff_a5a5);
        assert_eq!(port_in_result(u64::MAX, 4, 0xffff_ffff_a5a5_a5a5), 0xa5a5_a5a5);
        assert_eq!([port_mask(1), port_mask(2), port_mask(4)], [0xff, 0xffff, LOW_32]);
    }
}
