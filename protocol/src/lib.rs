//! Formats shared by the Ampoule guest and the host tools, one source of truth for both sides.
//!
//! - [`console`]: the structured serial records the guest prints and xtask reads (DESIGN.md §4).
//! - [`frame`], [`message`], [`refusal`], [`tee`]: the key dance's wire format (DESIGN.md §5).
//! - [`binding`]: the report data that ties evidence to a nonce and a key.
//! - [`seal`]: HPKE sealing (RFC 9180).
//! - [`sealed_blob`]: the model weights, a deploy artifact outside the image, in authenticated chunks.
//! - [`service`]: what clients and the serving guest say to each other.
//! - [`report`]: the SEV-SNP report layout and the simulated report of plain mode.
//! - [`snp_guest_message`]: SEV-SNP guest messages to the PSP (MSG_REPORT_REQ), protected under VMPCK0.
//! - [`tdx`]: the TDREPORT, the GetQuote buffer and the DCAP quote length.
#![no_std]

extern crate alloc;

pub mod binding;
mod codec;
pub mod console;
pub mod endpoint;
pub mod frame;
pub mod message;
pub mod refusal;
pub mod report;
pub mod seal;
pub mod sealed_blob;
pub mod service;
pub mod session;
pub mod snp_guest_message;
pub mod tdx;
pub mod tee;
