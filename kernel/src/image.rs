//! The image's own measurement in plain mode: the SHA-384 of the image as mapped below 4 GiB, computed at boot.
//! `cargo xtask measure` prints the same value (the SHA-384 of ampoule.bin) as the plain-mode measurement, so the
//! broker allowlists it like any other.

use ovmf::layout::IMAGE;
use sha2::{Digest, Sha384};

/// SHA-384 of the image.
pub fn measurement() -> [u8; 48] {
    // SAFETY: paging::init maps IMAGE read-only; it is the firmware ROM, which nothing writes.
    let image = unsafe { core::slice::from_raw_parts(IMAGE.base as *const u8, IMAGE.size as usize) };
    Sha384::digest(image).into()
}
