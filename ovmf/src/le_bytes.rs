//! Little-endian fields read from untrusted bytes: every reader returns `None` past the end instead of panicking.
//! Shared by the metadata parser and the TD HOB reader.

/// `len` bytes at `at`, if they are all inside `bytes`.
pub(crate) fn bytes_at(bytes: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    bytes.get(at..at.checked_add(len)?)
}

/// The little-endian u16 at `at`.
pub(crate) fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes_at(bytes, at, 2)?.try_into().ok()?))
}

/// The little-endian u32 at `at`.
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes_at(bytes, at, 4)?.try_into().ok()?))
}

/// The little-endian u64 at `at`.
pub(crate) fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes_at(bytes, at, 8)?.try_into().ok()?))
}
