//! The byte-level decoding shared by the protocol's two message families ([`crate::message`] for the key dance,
//! [`crate::service`] for clients): fixed-size fields and length-prefixed byte strings, big-endian, bounded.

use alloc::vec::Vec;

use crate::tee::Tee;

/// Why bytes are not a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The body ends before a field does.
    Truncated,
    /// Bytes follow the last field.
    TrailingBytes,
    /// An unknown message type byte.
    UnknownType(u8),
    /// An unknown TEE byte.
    UnknownTee(u8),
    /// An unknown refusal code.
    UnknownRefusal(u16),
    /// An unknown service error code.
    UnknownServiceError(u16),
    /// A yes/no byte that is neither 0 nor 1.
    BadFlag(u8),
    /// A byte string longer than its bound.
    TooLong,
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "message truncated"),
            DecodeError::TrailingBytes => write!(f, "bytes after the message"),
            DecodeError::UnknownType(t) => write!(f, "unknown message type {t}"),
            DecodeError::UnknownTee(t) => write!(f, "unknown tee {t}"),
            DecodeError::UnknownRefusal(c) => write!(f, "unknown refusal code {c}"),
            DecodeError::UnknownServiceError(c) => write!(f, "unknown service error code {c}"),
            DecodeError::BadFlag(b) => write!(f, "flag byte {b} is neither 0 nor 1"),
            DecodeError::TooLong => write!(f, "a field exceeds its bound"),
        }
    }
}

impl core::error::Error for DecodeError {}

pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(body: &'a [u8]) -> Reader<'a> {
        Reader { rest: body }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn tee(&mut self) -> Result<Tee, DecodeError> {
        let value = self.u8()?;
        Tee::from_u8(value).ok_or(DecodeError::UnknownTee(value))
    }

    /// A byte string with a `len_bytes`-byte length prefix, at most `max` long.
    pub(crate) fn bytes(&mut self, len_bytes: usize, max: usize) -> Result<Vec<u8>, DecodeError> {
        let mut len = 0usize;
        for &b in self.take(len_bytes)? {
            len = len << 8 | usize::from(b);
        }
        if len > max {
            return Err(DecodeError::TooLong);
        }
        // The length is bounded and the bytes are already in memory: no allocation beyond what arrived.
        Ok(self.take(len)?.to_vec())
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() { Ok(()) } else { Err(DecodeError::TrailingBytes) }
    }
}

/// Appends `bytes` with a `len_bytes`-byte big-endian length prefix, refusing more than `max` bytes: what
/// [`Reader::bytes`] reads back.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8], len_bytes: usize, max: usize) -> Result<(), DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLong);
    }
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes()[8 - len_bytes..]);
    out.extend_from_slice(bytes);
    Ok(())
}
