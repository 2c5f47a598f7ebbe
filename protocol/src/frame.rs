//! Framing: every message is `u32 length (big-endian) || body`, and the length is checked against a hard bound
//! before anything is allocated or read (DESIGN.md §5).

use alloc::vec::Vec;

/// The largest frame body either side accepts: room for a TDX quote with its certification data.
pub const MAX_FRAME_LEN: usize = 64 * 1024;
/// The length prefix.
pub const HEADER_LEN: usize = 4;

/// Why a frame was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The announced length exceeds [`MAX_FRAME_LEN`] (or the caller's lower limit).
    TooLong {
        /// The announced length.
        len: usize,
    },
    /// An empty frame (every message has at least its type byte).
    Empty,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::TooLong { len } => write!(f, "frame of {len} bytes exceeds the bound"),
            FrameError::Empty => write!(f, "empty frame"),
        }
    }
}

impl core::error::Error for FrameError {}

/// The body length announced by a frame header, checked against `limit` (at most [`MAX_FRAME_LEN`]).
pub fn body_len(header: [u8; HEADER_LEN], limit: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > limit.min(MAX_FRAME_LEN) {
        return Err(FrameError::TooLong { len });
    }
    if len == 0 {
        return Err(FrameError::Empty);
    }
    Ok(len)
}

/// `body` with its length prefix.
pub fn frame(body: &[u8]) -> Result<Vec<u8>, FrameError> {
    if body.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLong { len: body.len() });
    }
    if body.is_empty() {
        return Err(FrameError::Empty);
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

/// Why reading a frame failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFrameError<E> {
    /// The stream failed or ended.
    Io(E),
    /// The header announced a frame the bound refuses.
    Frame(FrameError),
}

/// Reads one frame body with `read_exact`: the header first, then, only if its length is within `limit`, exactly
/// that many bytes. Nothing is allocated for a refused frame.
pub fn read_frame<E>(
    limit: usize,
    mut read_exact: impl FnMut(&mut [u8]) -> Result<(), E>,
) -> Result<Vec<u8>, ReadFrameError<E>> {
    let mut header = [0u8; HEADER_LEN];
    read_exact(&mut header).map_err(ReadFrameError::Io)?;
    let len = body_len(header, limit).map_err(ReadFrameError::Frame)?;
    let mut body = alloc::vec![0u8; len];
    read_exact(&mut body).map_err(ReadFrameError::Io)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bounds_are_checked_from_the_header_alone() {
        let f = frame(b"hello").unwrap();
        assert_eq!(&f[..4], &[0, 0, 0, 5]);
        assert_eq!(body_len(f[..4].try_into().unwrap(), MAX_FRAME_LEN), Ok(5));
        assert_eq!(body_len([0xff; 4], MAX_FRAME_LEN), Err(FrameError::TooLong { len: 0xffff_ffff }));
        assert_eq!(body_len([0, 0, 0x10, 0], 1024), Err(FrameError::TooLong { len: 4096 }));
        assert_eq!(body_len([0; 4], MAX_FRAME_LEN), Err(FrameError::Empty));
        assert_eq!(frame(&[]), Err(FrameError::Empty));
        assert!(frame(&alloc::vec![0u8; MAX_FRAME_LEN + 1]).is_err());
    }

    #[test]
    fn read_frame_reads_exactly_one_frame_and_refuses_oversized_ones_before_reading_on() {
        let mut stream = frame(b"abc").unwrap();
        stream.extend_from_slice(b"rest");
        let mut at = 0;
        let mut read = |buf: &mut [u8]| -> Result<(), ()> {
            let end = at + buf.len();
            buf.copy_from_slice(stream.get(at..end).ok_or(())?);
            at = end;
            Ok(())
        };
        assert_eq!(read_frame(MAX_FRAME_LEN, &mut read), Ok(b"abc".to_vec()));
        let mut reads = 0;
        let result = read_frame(16, |buf: &mut [u8]| -> Result<(), ()> {
            reads += 1;
            buf.copy_from_slice(&[0, 0, 1, 0][..buf.len()]);
            Ok(())
        });
        assert_eq!(result, Err(ReadFrameError::Frame(FrameError::TooLong { len: 256 })));
        assert_eq!(reads, 1, "the body of a refused frame is never read");
    }
}
