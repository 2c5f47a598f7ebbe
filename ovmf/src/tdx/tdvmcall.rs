//! TDG.VP.VMCALL (TDCALL leaf 0): how a TD asks its VMM for a service (GHCI 1.5, "TDG.VP.VMCALL interface"). RCX
//! names the registers exposed to the VMM; R10 = 0 selects the GHCI-standard calls, R11 the subfunction, R12..R15
//! carry the arguments. On return R10 is the VMM's status and R11..R15 its outputs. Everything the VMM returns is
//! untrusted.

/// RCX: the registers the TD exposes to the VMM, R10..R15 (bits 10..=15). All others are saved and restored by
/// the TDX module.
pub const EXPOSED_REGISTERS: u64 = 0xfc00;

/// GHCI 1.5 subfunctions (R11).
pub mod subfunction {
    /// Instruction.CPUID: R12 = leaf, R13 = subleaf; returns EAX, EBX, ECX, EDX in R12..R15.
    pub const CPUID: u64 = 10;
    /// Instruction.HLT: R12 = 1 if interrupts are blocked.
    pub const HLT: u64 = 12;
    /// Instruction.IO: R12 = size, R13 = direction (0 in, 1 out), R14 = port, R15 = value out; returns R11.
    pub const IO: u64 = 30;
    /// Instruction.RDMSR: R12 = MSR; returns R11.
    pub const RDMSR: u64 = 31;
    /// Instruction.WRMSR: R12 = MSR, R13 = value.
    pub const WRMSR: u64 = 32;
    /// #VE.RequestMMIO: R12 = size, R13 = direction (0 read, 1 write), R14 = GPA, R15 = value; returns R11.
    pub const REQUEST_MMIO: u64 = 48;
    /// MapGPA: R12 = first GPA (shared bit set: to shared), R13 = size; on RETRY R11 = the GPA to go on from.
    pub const MAP_GPA: u64 = 0x10001;
    /// GetQuote: R12 = the shared buffer's GPA, R13 = its size.
    pub const GET_QUOTE: u64 = 0x10002;
    /// ReportFatalError: R12 = error code; the VMM ends the TD.
    pub const REPORT_FATAL_ERROR: u64 = 0x10003;
}

/// The VMM's status in R10: success.
pub const TDG_VP_VMCALL_SUCCESS: u64 = 0;
/// The VMM's status in R10: retry (MapGPA: go on from R11).
pub const TDG_VP_VMCALL_RETRY: u64 = 1;

/// Direction operands of Instruction.IO and #VE.RequestMMIO (R13).
const READ: u64 = 0;
const WRITE: u64 = 1;

/// One TDG.VP.VMCALL: the subfunction (R11) and its arguments (R12..R15).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdVmCall {
    /// R11.
    pub subfunction: u64,
    /// R12, R13, R14, R15.
    pub args: [u64; 4],
}

/// The VMM's answer: R10 (status), R11, and R12..R15.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TdVmCallResult {
    /// R10: [`TDG_VP_VMCALL_SUCCESS`] or an error.
    pub status: u64,
    /// R11: the output of the calls that have one.
    pub r11: u64,
    /// R12..R15 (CPUID's outputs).
    pub out: [u64; 4],
}

impl TdVmCall {
    const fn new(subfunction: u64, args: [u64; 4]) -> Self {
        TdVmCall { subfunction, args }
    }

    /// CPUID `leaf`.`subleaf`, emulated by the VMM.
    pub const fn cpuid(leaf: u32, subleaf: u32) -> Self {
        Self::new(subfunction::CPUID, [leaf as u64, subleaf as u64, 0, 0])
    }

    /// HLT; `interrupts_blocked` if RFLAGS.IF was clear.
    pub const fn hlt(interrupts_blocked: bool) -> Self {
        Self::new(subfunction::HLT, [interrupts_blocked as u64, 0, 0, 0])
    }

    /// IN of `size` bytes from `port`.
    pub const fn port_in(port: u16, size: u8) -> Self {
        Self::new(subfunction::IO, [size as u64, READ, port as u64, 0])
    }

    /// OUT of `size` bytes of `value` to `port`.
    pub const fn port_out(port: u16, size: u8, value: u64) -> Self {
        Self::new(subfunction::IO, [size as u64, WRITE, port as u64, value])
    }

    /// RDMSR `msr`.
    pub const fn rdmsr(msr: u32) -> Self {
        Self::new(subfunction::RDMSR, [msr as u64, 0, 0, 0])
    }

    /// WRMSR `msr` = `value`.
    pub const fn wrmsr(msr: u32, value: u64) -> Self {
        Self::new(subfunction::WRMSR, [msr as u64, value, 0, 0])
    }

    /// A read of `size` bytes of device memory at `gpa`.
    pub const fn mmio_read(gpa: u64, size: u8) -> Self {
        Self::new(subfunction::REQUEST_MMIO, [size as u64, READ, gpa, 0])
    }

    /// A write of `size` bytes of `value` to device memory at `gpa`.
    pub const fn mmio_write(gpa: u64, size: u8, value: u64) -> Self {
        Self::new(subfunction::REQUEST_MMIO, [size as u64, WRITE, gpa, value])
    }

    /// MapGPA of `[gpa, gpa + size)`; `gpa` carries the shared bit to map the range shared.
    pub const fn map_gpa(gpa: u64, size: u64) -> Self {
        Self::new(subfunction::MAP_GPA, [gpa, size, 0, 0])
    }

    /// GetQuote with the shared buffer at `gpa` (shared bit set) of `size` bytes.
    pub const fn get_quote(gpa: u64, size: u64) -> Self {
        Self::new(subfunction::GET_QUOTE, [gpa, size, 0, 0])
    }

    /// ReportFatalError with `code` (bits 31:0); the VMM ends the TD.
    pub const fn report_fatal_error(code: u32) -> Self {
        Self::new(subfunction::REPORT_FATAL_ERROR, [code as u64, 0, 0, 0])
    }
}

/// Why a TD ends itself (ReportFatalError's error code, bits 31:0): Ampoule's own numbering.
pub mod fatal {
    /// A #VE the handler does not serve.
    pub const UNHANDLED_VE: u32 = 1;
    /// The VMM failed a call the guest cannot do without.
    pub const VMCALL_FAILED: u32 = 2;
    /// TDG.VP.INFO reported a GPAW the guest does not know.
    pub const BAD_GPAW: u32 = 3;
    /// The TD HOB failed its checks.
    pub const BAD_TD_HOB: u32 = 4;
    /// A page could not be accepted, or would have been accepted twice.
    pub const ACCEPT_FAILED: u32 = 5;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_put_their_operands_in_the_ghci_registers() {
        assert_eq!(TdVmCall::cpuid(0x4000_0000, 2), TdVmCall { subfunction: 10, args: [0x4000_0000, 2, 0, 0] });
        assert_eq!(TdVmCall::port_out(0x3f8, 1, 0x41), TdVmCall { subfunction: 30, args: [1, 1, 0x3f8, 0x41] });
        assert_eq!(TdVmCall::port_in(0x3fd, 1).args, [1, 0, 0x3fd, 0]);
        assert_eq!(TdVmCall::wrmsr(0x1b, 0xfee0_0900).args, [0x1b, 0xfee0_0900, 0, 0]);
        assert_eq!(TdVmCall::mmio_write(0x8000_c000_0000, 4, 7).args, [4, 1, 0x8000_c000_0000, 7]);
        assert_eq!(
            TdVmCall::map_gpa(0x8000_0090_0000, 0x4_0000),
            TdVmCall { subfunction: 0x10001, args: [0x8000_0090_0000, 0x4_0000, 0, 0] }
        );
        assert_eq!(TdVmCall::get_quote(0x8000_0090_4000, 0x4000).subfunction, 0x10002);
        assert_eq!(TdVmCall::hlt(true).args[0], 1);
        assert_eq!(TdVmCall::report_fatal_error(fatal::BAD_TD_HOB).args[0], 4);
    }
}
