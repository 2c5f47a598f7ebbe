//! Formats shared by the Ampoule guest and the host tools, one source of truth for both sides.
//!
//! - [`console`]: the structured serial records the guest prints and xtask reads (DESIGN.md §4).
#![no_std]

pub mod console;
