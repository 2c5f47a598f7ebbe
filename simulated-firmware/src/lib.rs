//! Platform firmware simulated for host tests (DESIGN.md §8), so that the guest's request code and the broker's
//! verifiers meet without hardware. Host-only: the guest never depends on this crate (it would put a signing key
//! and its curve arithmetic into the guest's bill of materials).
//!
//! - [`psp`]: the SEV-SNP PSP answering guest messages (MSG_REPORT_REQ) with reports signed by a test VCEK.
//! - [`certificates`]: an X.509 chain in AMD's shape (ARK -> ASK -> VCEK) for the simulated PSP's key.
//! - [`tdx_module`]: the TDX module's TDG.MR.REPORT and a VMM answering GetQuote, for the guest's quote path.
//! - [`dcap`]: the Intel PKI, collateral and quoting enclave behind those quotes, so that dcap-qvl can verify them.
//! - [`published`]: real hardware output published by the sev crate, located for tests.

pub mod certificates;
pub mod dcap;
pub mod psp;
pub mod published;
pub mod tdx_module;

pub use psp::SimulatedPsp;
pub use tdx_module::{QuoteService, SimulatedTdx};
