//! The hypervisor's own model-specific registers.

/// EFER.
pub const EFER: u32 = 0xc000_0080;

/// Reads an MSR.
pub fn read(msr: u32) -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: the MSRs read here (EFER) exist on every CPU that runs this image; RDMSR has no side effects.
    unsafe { core::arch::asm!("rdmsr", in("ecx") msr, out("eax") low, out("edx") high, options(nomem, nostack)) };
    (u64::from(high) << 32) | u64::from(low)
}

/// Writes an MSR.
pub fn write(msr: u32, value: u64) {
    // SAFETY: the MSRs written here (EFER.SVME, VM_HSAVE_PA) only enable SVM; nothing the compiler assumes changes.
    unsafe {
        core::arch::asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
            options(nostack))
    };
}
