//! Entropy for the firmware's keys: RDRAND, which QEMU's `-cpu max` offers (from the host's random source).

/// Fills `out` from RDRAND; `None` if the instruction keeps failing.
pub fn fill(out: &mut [u8]) -> Option<()> {
    for chunk in out.chunks_mut(8) {
        let value = (0..10).find_map(|_| {
            let mut value = 0u64;
            // SAFETY: RDRAND writes only `value`; the CPU offers it (checked by the caller's CPUID model: -cpu max).
            let ok = unsafe { core::arch::x86_64::_rdrand64_step(&mut value) };
            (ok == 1).then_some(value)
        })?;
        chunk.copy_from_slice(&value.to_le_bytes()[..chunk.len()]);
    }
    Some(())
}
