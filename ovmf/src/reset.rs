//! The reset vector and the 16 -> 32 -> 64-bit mode switch (guest only, feature `boot`).
//!
//! Four files, one per CPU mode and entry, in AT&T syntax. Every address and constant they use is a symbol from the
//! generated `layout.ld`, so no number is written twice:
//!
//! - `reset16.s`: the reset vector at 4 GiB - 16, which tells the 16-bit start (plain, SEV-SNP) from the 32-bit
//!   start of TDX; the 16-bit path reads the TSC, loads the boot GDT and enters protected mode.
//! - `tdx32.s`: the TDX path: parks every vCPU but the boot one, reads the TSC, loads the boot GDT.
//! - `reset32.s`: checks the CPU features of [`crate::cpu_features::REQUIRED`], builds the boot identity map,
//!   copies the kernel from the image to RAM, zeroes `.bss`, enables SSE/AVX and long mode.
//! - `entry64.s`: switches to the boot stack and calls the kernel's `ampoule_main(reset_tsc)`.

core::arch::global_asm!(include_str!("reset/reset16.s"), options(att_syntax));
core::arch::global_asm!(include_str!("reset/tdx32.s"), options(att_syntax));
core::arch::global_asm!(include_str!("reset/reset32.s"), options(att_syntax));
core::arch::global_asm!(include_str!("reset/entry64.s"), options(att_syntax));
