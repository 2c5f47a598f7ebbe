//! SEV-SNP early-boot pieces that are plain data and arithmetic, kept apart from the code that touches MSRs and
//! executes PVALIDATE so that the host tests them against the specifications:
//!
//! - [`ghcb_msr`]: the GHCB MSR protocol (GHCB specification §2.3.1), how a guest talks to the hypervisor before it
//!   has a GHCB page: SEV information, CPUID, GHCB registration, page-state changes, termination.
//! - [`ghcb`]: the GHCB page: the save-area fields an exit needs, the valid bitmap, the result of a guest request.
//! - [`page_state`]: page-state changes in batches through the GHCB (the descriptor in its shared buffer).
//! - [`ioio`]: decoding the IN and OUT instructions that raised #VC into the exit the hypervisor emulates.
//! - [`cpuid_page`]: the CPUID page the PSP validated at launch (SEV-SNP ABI §8.17.2, "SNP_CPUID"): the guest
//!   answers CPUID from it, never from the hypervisor, and reads its C-bit position there.
//! - [`secrets_page`]: the page the PSP writes VMPCK0-3 into at launch, and the guest's message counters.
//! - [`vc`]: what the #VC handler does for CPUID, port I/O and MSR accesses, with the VMGEXIT left to the kernel.

pub mod cpuid_page;
pub mod ghcb;
pub mod ghcb_msr;
pub mod ioio;
pub mod page_state;
pub mod secrets_page;
pub mod vc;
