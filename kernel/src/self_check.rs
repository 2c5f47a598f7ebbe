//! Boot self-checks: each verifies one promise of the boot path on the running machine and prints a record.
//!
//! - `paging`: no page is writable and executable; guard pages, the null page and the boot scratch are unmapped;
//!   code is read-only, data is no-execute.
//! - `heap`: allocation works and returns all memory.
//! - `avx`: the extended state is enabled as the stub promised (XCR0 = x87|SSE|AVX) and FMA computes.
//! - `exception-return`: an `int3` goes through the IDT, entry stub and IST stack and comes back with the general
//!   and AVX registers intact (what the #VC and #VE handlers will rely on).

use alloc::vec::Vec;
use core::arch::asm;
use core::arch::x86_64::{_mm256_fmadd_ps, _mm256_set1_ps, _mm256_storeu_ps};
use core::hint::black_box;
use core::sync::atomic::{AtomicBool, Ordering};

use ovmf::layout::{BOOT_SCRATCH, HEAP, IMAGE};
use x86_64::structures::paging::PageTableFlags as Flags;

use crate::{heap, paging, sections};

/// A failed check: its name and what was wrong.
#[derive(Debug)]
pub struct Failure {
    /// The check.
    pub check: &'static str,
    /// What was wrong, for the record.
    pub reason: &'static str,
}

/// A check: `Err` says what was wrong.
type Check = fn() -> Result<(), &'static str>;

/// Runs every check in order; stops at the first failure.
pub fn run_all() -> Result<(), Failure> {
    let checks: [(&'static str, Check); 4] =
        [("paging", paging), ("heap", heap), ("avx", avx), ("exception-return", exception_return)];
    for (check, run) in checks {
        run().map_err(|reason| Failure { check, reason })?;
        log::info!(target: "self_check", check = check, ok = true; "self-check");
    }
    Ok(())
}

fn paging() -> Result<(), &'static str> {
    let audit = paging::audit();
    if audit.writable_and_executable != 0 {
        return Err("a page is writable and executable");
    }
    let text = paging::translate(sections::text().start).ok_or("code unmapped")?;
    if text.contains(Flags::WRITABLE) || text.contains(Flags::NO_EXECUTE) {
        return Err("code is not read-execute");
    }
    let rodata = paging::translate(sections::rodata().start).ok_or("rodata unmapped")?;
    if rodata.contains(Flags::WRITABLE) || !rodata.contains(Flags::NO_EXECUTE) {
        return Err("rodata is not read-only no-execute");
    }
    for addr in [sections::data_and_bss().start, HEAP.base, sections::boot_stack().bottom] {
        let flags = paging::translate(addr).ok_or("data unmapped")?;
        if !flags.contains(Flags::WRITABLE) || !flags.contains(Flags::NO_EXECUTE) {
            return Err("data is not read-write no-execute");
        }
    }
    let image = paging::translate(IMAGE.base).ok_or("image unmapped")?;
    if image.contains(Flags::WRITABLE) {
        return Err("the image is writable");
    }
    let guards = sections::exception_stacks().map(|s| s.guard);
    let must_be_unmapped = [0, BOOT_SCRATCH.base, sections::boot_stack().guard];
    if must_be_unmapped.iter().chain(&guards).any(|&addr| paging::translate(addr).is_some()) {
        return Err("a guard page, the null page or the boot scratch is mapped");
    }
    log::info!(target: "self_check", small_pages = audit.small_pages, huge_pages = audit.huge_pages; "paging audit");
    Ok(())
}

fn heap() -> Result<(), &'static str> {
    let before = heap::used();
    {
        let mut v: Vec<u64> = Vec::new();
        v.try_reserve_exact(1 << 20).map_err(|_| "cannot allocate 8 MiB")?;
        v.extend((0..1u64 << 20).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        let sum = v.iter().fold(0u64, |a, &x| a.wrapping_add(x));
        let expected = (0..1u64 << 20).fold(0u64, |a, i| a.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        if sum != expected {
            return Err("heap memory did not hold its contents");
        }
    }
    if heap::used() != before {
        return Err("memory was not returned to the heap");
    }
    Ok(())
}

fn avx() -> Result<(), &'static str> {
    const TWO_POW_MINUS_12: f32 = 1.0 / 4096.0;
    const XCR0_X87_SSE_AVX: u64 = 0x7;
    // SAFETY: XGETBV(0) is valid once CR4.OSXSAVE is set, which the stub did (it executed XSETBV).
    let xcr0 = unsafe { core::arch::x86_64::_xgetbv(0) };
    if xcr0 != XCR0_X87_SSE_AVX {
        return Err("XCR0 is not x87|SSE|AVX");
    }
    // a * b + c with a = b = 1 + 2^-12 and c = -(1 + 2^-11): the exact product is 1 + 2^-11 + 2^-24, so a fused
    // multiply-add (one rounding) gives 2^-24 in every lane, where a separate multiply and add would give 0.
    let a = black_box(1.0 + TWO_POW_MINUS_12);
    let c = -(1.0 + 2.0 * TWO_POW_MINUS_12);
    // SAFETY: the reset stub checked CPUID for AVX and FMA before any Rust ran.
    let lanes = unsafe { fused_multiply_add(a, a, c) };
    if lanes != [TWO_POW_MINUS_12 * TWO_POW_MINUS_12; 8] {
        return Err("FMA gave a wrong result");
    }
    Ok(())
}

/// `a * b + c` in all eight lanes of a 256-bit vector, with one rounding.
#[target_feature(enable = "avx,fma")]
fn fused_multiply_add(a: f32, b: f32, c: f32) -> [f32; 8] {
    let fused = _mm256_fmadd_ps(_mm256_set1_ps(a), _mm256_set1_ps(b), _mm256_set1_ps(c));
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` is 8 f32s, the 32 bytes an unaligned 256-bit store writes.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), fused) };
    lanes
}

/// Set while `exception_return` expects its breakpoint; the exception dispatcher clears it and returns.
pub static EXPECTING_BREAKPOINT: AtomicBool = AtomicBool::new(false);

/// Called by the exception dispatcher on `#BP` while [`EXPECTING_BREAKPOINT`] is set: clobbers every vector
/// register (the stub must restore them) and returns.
pub fn expected_breakpoint() {
    // SAFETY: VZEROALL only changes YMM registers, which the entry stub saved with XSAVE and restores with XRSTOR.
    unsafe { asm!("vzeroall", out("ymm0") _, out("ymm15") _, options(nomem, nostack)) };
}

fn exception_return() -> Result<(), &'static str> {
    let pattern: [u64; 4] =
        [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210, 0x0f0f_0f0f_f0f0_f0f0, 0x1122_3344_5566_7788];
    let mut after = [0u64; 4];
    let gpr_before: u64 = 0x5eed_5eed_5eed_5eed;
    let gpr_after: u64;
    EXPECTING_BREAKPOINT.store(true, Ordering::SeqCst);
    // SAFETY: the pointers are to local arrays of 32 bytes; INT3 enters the kernel's own #BP gate, which returns
    // to the next instruction because EXPECTING_BREAKPOINT is set.
    unsafe {
        asm!(
            "vmovdqu ymm7, [{pattern}]",
            "int3",
            "vmovdqu [{after}], ymm7",
            pattern = in(reg) pattern.as_ptr(),
            after = in(reg) after.as_mut_ptr(),
            inout("r12") gpr_before => gpr_after,
            out("ymm7") _,
        )
    };
    if EXPECTING_BREAKPOINT.load(Ordering::SeqCst) {
        return Err("the breakpoint was not delivered");
    }
    if after != pattern {
        return Err("AVX state not preserved across an exception");
    }
    if gpr_after != gpr_before {
        return Err("general registers not preserved across an exception");
    }
    Ok(())
}
