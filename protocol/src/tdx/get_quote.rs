//! The GetQuote TDVMCALL's shared buffer (GHCI 1.5, "TDG.VP.VMCALL<GetQuote>"): the TD writes a header and its
//! TDREPORT into a shared, 4 KiB-aligned buffer and asks the VMM for a quote; the VMM (with a quote-generation
//! service) later writes the quote into the same buffer and sets the status. Everything read back is host input.
//!
//! ```text
//! u64 version (1) | u64 status | u32 in_len | u32 out_len | data (TDREPORT in, quote out)
//! ```

use super::{TDREPORT_LEN, u32_at, u64_at};

/// The header's size.
pub const HEADER_LEN: usize = 24;
/// The buffer format version.
pub const VERSION: u64 = 1;
/// Status: done, the quote is in the buffer.
pub const STATUS_SUCCESS: u64 = 0;
/// Status: the request is still being served.
pub const STATUS_IN_FLIGHT: u64 = u64::MAX;
/// Status: the VMM failed the request.
pub const STATUS_ERROR: u64 = 0x8000_0000_0000_0000;
/// Status: no quote-generation service is reachable.
pub const STATUS_QGS_UNAVAILABLE: u64 = 0x8000_0000_0000_0001;

/// What the buffer says after a GetQuote call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuoteStatus<'a> {
    /// Not done yet: poll again (a bounded number of times).
    InFlight,
    /// The quote: `out_len` bytes, checked to fit the buffer.
    Done(&'a [u8]),
    /// The VMM failed the request.
    Failed,
    /// No quote-generation service.
    Unavailable,
    /// The header is not one the TD wrote or the VMM may write (version changed, sizes beyond the buffer, an
    /// unknown status): nothing in it is used.
    Malformed,
}

/// Writes a GetQuote request for `report` into `buffer`: the header (version 1, status 0, in_len 1024) and the
/// TDREPORT, the rest cleared. `None` if the buffer cannot hold it.
pub fn write_request(buffer: &mut [u8], report: &[u8; TDREPORT_LEN]) -> Option<()> {
    let header = buffer.get_mut(..HEADER_LEN + TDREPORT_LEN)?;
    header.fill(0);
    header[0..8].copy_from_slice(&VERSION.to_le_bytes());
    // Status 0 on input (GHCI: "status code ... set to 0 by the TD").
    header[16..20].copy_from_slice(&(TDREPORT_LEN as u32).to_le_bytes());
    header[HEADER_LEN..].copy_from_slice(report);
    buffer[HEADER_LEN + TDREPORT_LEN..].fill(0);
    Some(())
}

/// Reads the buffer after the VMM had it. The status is read first; the quote only when it says success, and only
/// `out_len` bytes that fit the buffer.
pub fn read_response(buffer: &[u8]) -> QuoteStatus<'_> {
    if buffer.len() < HEADER_LEN || u64_at(buffer, 0) != Some(VERSION) {
        return QuoteStatus::Malformed;
    }
    match u64_at(buffer, 8) {
        Some(STATUS_IN_FLIGHT) => QuoteStatus::InFlight,
        Some(STATUS_ERROR) => QuoteStatus::Failed,
        Some(STATUS_QGS_UNAVAILABLE) => QuoteStatus::Unavailable,
        Some(STATUS_SUCCESS) => {
            let out_len = u32_at(buffer, 20).unwrap_or(0);
            match buffer.get(HEADER_LEN..HEADER_LEN.saturating_add(out_len)) {
                Some(quote) if out_len > 0 => QuoteStatus::Done(quote),
                _ => QuoteStatus::Malformed,
            }
        }
        _ => QuoteStatus::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u64, out_len: u32, quote: &[u8], buffer_len: usize) -> alloc::vec::Vec<u8> {
        let mut buffer = alloc::vec![0u8; buffer_len];
        write_request(&mut buffer, &[0x5a; TDREPORT_LEN]).unwrap();
        buffer[8..16].copy_from_slice(&status.to_le_bytes());
        buffer[20..24].copy_from_slice(&out_len.to_le_bytes());
        buffer[HEADER_LEN..HEADER_LEN + quote.len()].copy_from_slice(quote);
        buffer
    }

    #[test]
    fn the_request_is_the_ghci_layout() {
        let mut buffer = [0xffu8; 4096];
        write_request(&mut buffer, &[0x5a; TDREPORT_LEN]).unwrap();
        assert_eq!(&buffer[..8], &1u64.to_le_bytes());
        assert_eq!(&buffer[8..16], &[0; 8], "status 0 on input");
        assert_eq!(&buffer[16..24], &[0x00, 0x04, 0, 0, 0, 0, 0, 0], "in_len 1024, out_len 0");
        assert!(buffer[24..1048].iter().all(|&b| b == 0x5a));
        assert!(buffer[1048..].iter().all(|&b| b == 0), "the rest cleared");
        assert_eq!(write_request(&mut [0u8; 1047], &[0; TDREPORT_LEN]), None);
    }

    #[test]
    fn responses_are_read_strictly() {
        let quote = [0x71u8; 600];
        assert_eq!(read_response(&answered(0, 600, &quote, 4096)), QuoteStatus::Done(&quote));
        assert_eq!(read_response(&answered(STATUS_IN_FLIGHT, 0, &[], 4096)), QuoteStatus::InFlight);
        assert_eq!(read_response(&answered(STATUS_ERROR, 0, &[], 4096)), QuoteStatus::Failed);
        assert_eq!(read_response(&answered(STATUS_QGS_UNAVAILABLE, 0, &[], 4096)), QuoteStatus::Unavailable);
        // out_len beyond the buffer, zero, an unknown status, another version, a short buffer.
        assert_eq!(read_response(&answered(0, 4096 - 23, &quote, 4096)), QuoteStatus::Malformed);
        assert_eq!(read_response(&answered(0, u32::MAX, &quote, 4096)), QuoteStatus::Malformed);
        assert_eq!(read_response(&answered(0, 0, &quote, 4096)), QuoteStatus::Malformed);
        assert_eq!(read_response(&answered(7, 600, &quote, 4096)), QuoteStatus::Malformed);
        let mut other_version = answered(0, 600, &quote, 4096);
        other_version[0] = 2;
        assert_eq!(read_response(&other_version), QuoteStatus::Malformed);
        assert_eq!(read_response(&[0u8; 23]), QuoteStatus::Malformed);
        // out_len exactly filling the buffer is fine.
        let full = answered(0, 4096 - 24, &[0x71; 4072], 4096);
        assert!(matches!(read_response(&full), QuoteStatus::Done(q) if q.len() == 4072));
    }
}
