//! Time from the TSC: cycle counts for boot timings. The TSC's frequency is not needed yet (and under TCG it is the
//! host's), so records carry cycles, and xtask measures wall time from outside.

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC reads a counter; the reset stub checked CPUID for TSC support, and CR4.TSD is clear.
    unsafe { core::arch::x86_64::_rdtsc() }
}
