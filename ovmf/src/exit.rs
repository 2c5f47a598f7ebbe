//! How a bounded run ends: the guest writes an [`ExitCode`] to QEMU's `isa-debug-exit` port, and QEMU exits with
//! status `(code << 1) | 1`. xtask maps that status back to a named outcome.
//!
//! The codes are part of the contract between the image and the VMM, like the firmware metadata, so they live here
//! beside the layout: the reset stub uses them (through `layout.ld`) before any Rust runs.

/// The I/O port of `-device isa-debug-exit,iobase=0xf4,iosize=0x04` (the port run-qemu configures).
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Why the guest ended its run. Values are odd-free and distinct from 0 so that no QEMU status they produce
/// (always odd and >= 33) can be confused with QEMU's own 0 (shutdown, e.g. a triple fault under `-no-reboot`)
/// or 1 (QEMU error).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// The guest finished its job.
    Success = 0x10,
    /// An exception was taken; a `msg="fault"` record was printed.
    Fault = 0x11,
    /// The CPU lacks a feature the image was compiled for; printed by the reset stub.
    CpuUnsupported = 0x12,
    /// The platform (SNP, TDX, ...) is detected but not supported by this image.
    PlatformUnsupported = 0x13,
    /// A boot self-check failed; a record names it.
    SelfCheckFailed = 0x14,
    /// Rust panicked; a `msg="panic"` record was printed.
    Panic = 0x15,
    /// The hardware random number generator failed: nothing secret can be made.
    EntropyFailed = 0x16,
    /// The key dance ended without a key (refused, unreachable broker, network failure); a record says why.
    KeyNotReleased = 0x17,
    /// Written by the simulated platform's hypervisor, never by the guest: the guest asked its platform to end it
    /// (the SNP termination request); a `target=platform` record gives the reason.
    GuestTerminated = 0x18,
    /// Written by the simulated platform's hypervisor: the platform refused the launch or stopped the guest (a
    /// state the hardware would escalate, an RMP violation); a `target=platform` record says why.
    PlatformStopped = 0x19,
}

impl ExitCode {
    /// Every code, for mapping QEMU's status back.
    pub const ALL: [ExitCode; 10] = [
        ExitCode::Success,
        ExitCode::Fault,
        ExitCode::CpuUnsupported,
        ExitCode::PlatformUnsupported,
        ExitCode::SelfCheckFailed,
        ExitCode::Panic,
        ExitCode::EntropyFailed,
        ExitCode::KeyNotReleased,
        ExitCode::GuestTerminated,
        ExitCode::PlatformStopped,
    ];

    /// The exit status QEMU reports when the guest writes this code (hw/misc/debugexit.c: `exit((val << 1) | 1)`).
    pub const fn qemu_status(self) -> i32 {
        ((self as i32) << 1) | 1
    }

    /// The code behind a QEMU exit status, if the guest wrote one.
    pub fn from_qemu_status(status: i32) -> Option<ExitCode> {
        Self::ALL.into_iter().find(|c| c.qemu_status() == status)
    }

    /// A stable lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            ExitCode::Success => "success",
            ExitCode::Fault => "guest-fault",
            ExitCode::CpuUnsupported => "cpu-unsupported",
            ExitCode::PlatformUnsupported => "platform-unsupported",
            ExitCode::SelfCheckFailed => "self-check-failed",
            ExitCode::Panic => "guest-panic",
            ExitCode::EntropyFailed => "entropy-failed",
            ExitCode::KeyNotReleased => "key-not-released",
            ExitCode::GuestTerminated => "guest-terminated",
            ExitCode::PlatformStopped => "platform-stopped",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_never_collide_with_qemu_own_statuses() {
        for code in ExitCode::ALL {
            let status = code.qemu_status();
            assert_eq!(ExitCode::from_qemu_status(status), Some(code));
            assert!(status > 1 && status < 256, "{code:?} -> {status} must be a valid process status");
        }
        assert_eq!(ExitCode::from_qemu_status(0), None);
        assert_eq!(ExitCode::from_qemu_status(1), None);
        assert_eq!(ExitCode::Success.qemu_status(), 33);
    }
}
