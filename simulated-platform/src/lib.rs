//! The rules of the simulated SEV-SNP platform (DESIGN.md §10), as plain code: the hypervisor image
//! (`hypervisor/`) runs them against the guest, and host tests check them against the SEV-SNP Firmware ABI and the
//! AMD64 APM. Test equipment, never in the guest's TCB.
#![cfg_attr(not(test), no_std)]

pub mod cpuid_page;
pub mod firmware_channel;
pub mod ghcb_msr;
pub mod hostile;
pub mod ioio;
pub mod launch;
pub mod msr_exit;
pub mod page_state;
pub mod rmp;
pub mod secrets_page;
pub mod tdx;
pub mod vmsa;
