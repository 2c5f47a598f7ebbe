//! The memory functions the compiler calls (`memcpy`, `memmove`, `memset`, `memcmp`, `bcmp`).
//!
//! The guest's target (`x86_64-unknown-linux-gnu`) expects them from libc, which the image does not have. They are
//! plain loops in a `#![no_builtins]` crate, so the compiler cannot turn a loop back into a call to itself. Short
//! and obviously correct beats fast here, with one concession: `memcpy` and `memset` move eight bytes a step, then
//! the tail byte by byte. They are the bulk of the model's load (69 MB copied out of the chunk buffer) and of
//! burn's zeroed tensors, and a byte loop there cost four instructions a byte (`cargo xtask bench --only minilm`).
#![no_std]
#![no_builtins]

/// The bytes `memcpy` and `memset` move a step.
const WORD: usize = 8;

/// Copies byte `i` of `src` to `dest`.
///
/// # Safety
/// `src + i` must be valid for a byte read and `dest + i` for a byte write.
#[inline(always)]
unsafe fn copy_byte(dest: *mut u8, src: *const u8, i: usize) {
    // SAFETY: the caller guarantees src + i is readable.
    let byte = unsafe { src.wrapping_add(i).read() };
    // SAFETY: the caller guarantees dest + i is writable.
    unsafe { dest.wrapping_add(i).write(byte) };
}

/// Copies `n` bytes from `src` to `dest`; the ranges must not overlap.
///
/// # Safety
/// `dest` must be valid for `n` byte writes and `src` for `n` byte reads, and the ranges must not overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    let words = n / WORD;
    for w in 0..words {
        let at = w * WORD;
        // SAFETY: at + WORD <= n, and the caller guarantees src is readable for n bytes; unaligned read.
        let word = unsafe { src.wrapping_add(at).cast::<u64>().read_unaligned() };
        // SAFETY: at + WORD <= n, and the caller guarantees dest is writable for n bytes; unaligned write.
        unsafe { dest.wrapping_add(at).cast::<u64>().write_unaligned(word) };
    }
    for i in words * WORD..n {
        // SAFETY: i < n, and the caller guarantees both ranges are valid for n bytes.
        unsafe { copy_byte(dest, src, i) };
    }
    dest
}

/// Copies `n` bytes from `src` to `dest`; the ranges may overlap.
///
/// # Safety
/// `dest` must be valid for `n` byte writes and `src` for `n` byte reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize) <= (src as usize) {
        for i in 0..n {
            // SAFETY: i < n; forwards never overwrites a source byte not yet read when dest <= src.
            unsafe { copy_byte(dest, src, i) };
        }
    } else {
        for i in (0..n).rev() {
            // SAFETY: i < n; backwards never overwrites a source byte not yet read when dest > src.
            unsafe { copy_byte(dest, src, i) };
        }
    }
    dest
}

/// Fills `n` bytes at `dest` with the low byte of `c`.
///
/// # Safety
/// `dest` must be valid for `n` byte writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    let words = n / WORD;
    let word = u64::from_ne_bytes([c as u8; WORD]);
    for w in 0..words {
        // SAFETY: w * WORD + WORD <= n, and the caller guarantees dest is writable for n bytes; unaligned write.
        unsafe { dest.wrapping_add(w * WORD).cast::<u64>().write_unaligned(word) };
    }
    for i in words * WORD..n {
        // SAFETY: i < n, and the caller guarantees dest is valid for n bytes.
        unsafe { dest.wrapping_add(i).write(c as u8) };
    }
    dest
}

/// Compares `n` bytes; returns the difference of the first differing pair, or 0.
///
/// # Safety
/// `a` and `b` must be valid for `n` byte reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: i < n, and the caller guarantees a is valid for n bytes.
        let x = unsafe { a.wrapping_add(i).read() };
        // SAFETY: i < n, and the caller guarantees b is valid for n bytes.
        let y = unsafe { b.wrapping_add(i).read() };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// Compares `n` bytes for equality only; 0 when equal.
///
/// # Safety
/// `a` and `b` must be valid for `n` byte reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the caller's guarantee is memcmp's.
    unsafe { memcmp(a, b, n) }
}
