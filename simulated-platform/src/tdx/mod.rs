//! The simulated platform's second personality: a TDX module and its VMM (DESIGN.md §9, §10). The rules here are
//! plain code the hypervisor runs and the host tests check:
//!
//! - [`mrtd`]: MRTD as the TDX module builds it, TDH.MEM.PAGE.ADD and TDH.MR.EXTEND page by page;
//! - [`td_hob`]: the TD HOB as QEMU writes it;
//! - [`reset`]: the initial state of every TD vCPU;
//! - [`module`]: TDG.VP.INFO and TDG.MEM.PAGE.ACCEPT's rule and status codes;
//! - [`ve`]: the #VE information the module gives for each exit.

pub mod module;
pub mod mrtd;
pub mod reset;
pub mod td_hob;
pub mod ve;

/// The simulated TD's XFAM: x87, SSE and AVX, the state the guest enables (DESIGN.md §9: XCR0 must stay within
/// XFAM). Its TDREPORT says so, and the broker that verifies the simulated TD requires exactly this.
pub const TD_XFAM: u64 = 0x7;
