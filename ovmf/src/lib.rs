//! What replaces OVMF in an Ampoule image.
//!
//! - [`metadata`]: the OVMF-compatible footer table, SEV and TDX metadata: encoded at compile time, parsed strictly.
//! - [`layout`]: the one memory map. The linker script (through a generated `layout.ld`), the guest and xtask all
//!   read it from here.
//! - [`memory_map`]: how much heap the platform's memory map (e820, TD HOB) gives, within the layout's bound.
//! - [`exit`]: the debug-exit port and the status codes a bounded run ends with.
//! - [`cpu_features`]: the CPUID bits the image is compiled to use, checked by the reset code before any Rust runs.
//! - [`emulation`]: the registers the #VC and #VE handlers emulate instructions on, and the IN rule.
//! - [`snp`]: SEV-SNP early-boot data: the GHCB MSR protocol, the CPUID page, the secrets page, #VC service.
//! - [`tdx`]: Intel TDX: TDCALL and TDVMCALL encodings, #VE service, the TD HOB check.
//! - [`validated_pages`]: which pages the guest validated (SNP) or accepted (TDX), so that each is done once.
//! - `reset` (feature `boot`, guest only): the reset vector and the 16 -> 32 -> 64-bit mode switch, in `.s` files.
#![no_std]

pub mod cpu_features;
pub mod emulation;
pub mod exit;
pub mod layout;
mod le_bytes;
pub mod memory_map;
pub mod metadata;
pub mod snp;
pub mod tdx;
pub mod validated_pages;

#[cfg(feature = "boot")]
mod reset;
