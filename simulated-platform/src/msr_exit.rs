//! The host's answer to a GHCB MSR exit (GHCB specification §4.1.3, exit code 0x7C): the MSRs a hypervisor
//! emulates for an SNP guest whose RDMSR/WRMSR it intercepts. Anything else is refused, and the guest's #VC handler
//! then ends the guest (it treats a failed exit as fatal).

/// IA32_TIME_STAMP_COUNTER.
pub const IA32_TSC: u32 = 0x10;
/// IA32_APIC_BASE.
pub const IA32_APIC_BASE: u32 = 0x1b;
/// IA32_MISC_ENABLE.
pub const IA32_MISC_ENABLE: u32 = 0x1a0;
/// The xAPIC at its reset base, enabled, bootstrap processor (Intel SDM vol. 3A, 10.4.4; AMD APM vol. 2, 16.3.1).
const APIC_BASE_RESET: u64 = 0xfee0_0000 | (1 << 11) | (1 << 8);

/// What the host does for an MSR exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrAnswer {
    /// A read's value (EDX:EAX).
    Value(u64),
    /// A write taken (and ignored: nothing the guest may change through it matters to this platform).
    Written,
    /// Refused: the exit fails.
    Refused,
}

/// The answer to RDMSR (`write` = None) or WRMSR of `msr`; `tsc` is the platform's time-stamp counter.
pub fn answer(msr: u32, write: Option<u64>, tsc: u64) -> MsrAnswer {
    match (msr, write) {
        (IA32_TSC, None) => MsrAnswer::Value(tsc),
        (IA32_APIC_BASE, None) => MsrAnswer::Value(APIC_BASE_RESET),
        (IA32_MISC_ENABLE, None) => MsrAnswer::Value(0),
        (IA32_APIC_BASE, Some(value)) if value == APIC_BASE_RESET => MsrAnswer::Written,
        _ => MsrAnswer::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_reads_are_answered_and_everything_else_refused() {
        assert_eq!(answer(IA32_TSC, None, 1234), MsrAnswer::Value(1234));
        assert_eq!(answer(IA32_APIC_BASE, None, 0), MsrAnswer::Value(0xfee0_0900));
        assert_eq!(answer(IA32_APIC_BASE, Some(0xfee0_0900), 0), MsrAnswer::Written);
        assert_eq!(answer(IA32_APIC_BASE, Some(0xfec0_0900), 0), MsrAnswer::Refused, "moving the APIC");
        assert_eq!(answer(IA32_TSC, Some(0), 0), MsrAnswer::Refused);
        assert_eq!(answer(0xc001_0131, None, 0), MsrAnswer::Refused, "SEV_STATUS is the hardware's, never an exit");
    }
}
