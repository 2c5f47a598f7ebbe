//! Intel TDX pieces that are plain data and arithmetic, kept apart from the code that executes TDCALL so that the
//! host tests them against the specifications (Intel TDX module base architecture and ABI specifications; GHCI 1.5,
//! the guest-hypervisor communication interface):
//!
//! - [`tdcall`]: the TDX module's leaves the guest calls, their completion status, TDG.VP.INFO and the shared bit.
//! - [`tdvmcall`]: TDG.VP.VMCALL, how a TD asks the VMM for a service: the subfunctions and their registers.
//! - [`ve`]: what the #VE handler does for CPUID, HLT, port I/O and MSR accesses, with the TDVMCALL left to the
//!   kernel.
//! - [`memory`]: accepting a range each page once, and converting a range to shared with MapGPA.
//! - [`hob`]: the TD HOB the VMM writes before launch: unmeasured input, checked before anything relies on it.

pub mod hob;
pub mod memory;
pub mod tdcall;
pub mod tdvmcall;
pub mod ve;
