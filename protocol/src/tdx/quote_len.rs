//! The length of one DCAP quote from its own size fields (Intel TDX DCAP Quoting Library API, "Quote Format"), so
//! the verifier can refuse evidence with bytes after the quote: nothing may ride along unauthenticated.
//!
//! ```text
//! v4: header (48) | body (584 for a TD, 384 for an enclave)     | u32 signature data length | signature data
//! v5: header (48) | u16 body type | u32 body size | body         | u32 signature data length | signature data
//! ```

use super::{u16_at, u32_at};

const HEADER_LEN: usize = 48;
const TEE_TYPE_TDX: u32 = 0x81;
const TD_REPORT10_LEN: usize = 584;
const ENCLAVE_REPORT_LEN: usize = 384;

/// The length of the quote at the start of `bytes`, or `None` if its fields do not describe one that fits.
pub fn of(bytes: &[u8]) -> Option<usize> {
    let version = u16_at(bytes, 0)?;
    let tee_type = u32_at(bytes, 4)?;
    let body_end = match version {
        3 => HEADER_LEN + ENCLAVE_REPORT_LEN,
        4 if tee_type == TEE_TYPE_TDX as usize => HEADER_LEN + TD_REPORT10_LEN,
        4 => HEADER_LEN + ENCLAVE_REPORT_LEN,
        5 => HEADER_LEN.checked_add(6)?.checked_add(u32_at(bytes, HEADER_LEN + 2)?)?,
        _ => return None,
    };
    let end = body_end.checked_add(4)?.checked_add(u32_at(bytes, body_end)?)?;
    (end <= bytes.len()).then_some(end)
}

/// Where REPORTDATA lies in a TD quote's body (the last 64 bytes of TDREPORT 1.0's 584, also in TD 1.5 bodies).
const BODY_REPORT_DATA: usize = 520;

/// The REPORTDATA of the TD quote at the start of `bytes` (version 4 or 5), if it is one whose length fits.
pub fn report_data(bytes: &[u8]) -> Option<&[u8; 64]> {
    of(bytes)?;
    let body = match u16_at(bytes, 0)? {
        4 if u32_at(bytes, 4)? == TEE_TYPE_TDX as usize => HEADER_LEN,
        5 if u32_at(bytes, HEADER_LEN + 2)? >= TD_REPORT10_LEN => HEADER_LEN + 6,
        _ => return None,
    };
    bytes.get(body + BODY_REPORT_DATA..body + BODY_REPORT_DATA + 64)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote(version: u16, tee_type: u32, body: usize, signature_data: usize) -> alloc::vec::Vec<u8> {
        let mut bytes = alloc::vec![0u8; HEADER_LEN];
        bytes[0..2].copy_from_slice(&version.to_le_bytes());
        bytes[4..8].copy_from_slice(&tee_type.to_le_bytes());
        if version == 5 {
            bytes.extend_from_slice(&3u16.to_le_bytes());
            bytes.extend_from_slice(&(body as u32).to_le_bytes());
        }
        bytes.resize(bytes.len() + body, 0);
        bytes.extend_from_slice(&(signature_data as u32).to_le_bytes());
        bytes.resize(bytes.len() + signature_data, 0);
        bytes
    }

    #[test]
    fn lengths_follow_the_size_fields() {
        let v4 = quote(4, TEE_TYPE_TDX, TD_REPORT10_LEN, 4300);
        assert_eq!(of(&v4), Some(48 + 584 + 4 + 4300));
        let v5 = quote(5, TEE_TYPE_TDX, 648, 4300);
        assert_eq!(of(&v5), Some(48 + 6 + 648 + 4 + 4300));
        let sgx = quote(3, 0, ENCLAVE_REPORT_LEN, 1000);
        assert_eq!(of(&sgx), Some(48 + 384 + 4 + 1000));
        // Trailing bytes are not part of the quote; a truncated quote has no length.
        let mut padded = v4.clone();
        padded.extend_from_slice(&[0; 70]);
        assert_eq!(of(&padded), Some(v4.len()));
        assert_eq!(of(&v4[..v4.len() - 1]), None);
        assert_eq!(of(&quote(6, TEE_TYPE_TDX, 0, 0)), None, "unknown version");
        assert_eq!(of(&[]), None);
        // A signature-data length that overflows.
        let mut huge = quote(5, TEE_TYPE_TDX, 0, 0);
        huge[50..54].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(of(&huge), None);
    }

    #[test]
    fn report_data_is_the_end_of_the_td_report_body() {
        let mut v4 = quote(4, TEE_TYPE_TDX, TD_REPORT10_LEN, 10);
        v4[48 + 520..48 + 584].copy_from_slice(&[0x42; 64]);
        assert_eq!(report_data(&v4), Some(&[0x42; 64]));
        let mut v5 = quote(5, TEE_TYPE_TDX, 648, 10);
        v5[54 + 520..54 + 584].copy_from_slice(&[0x43; 64]);
        assert_eq!(report_data(&v5), Some(&[0x43; 64]));
        assert_eq!(report_data(&quote(3, 0, ENCLAVE_REPORT_LEN, 10)), None, "an enclave quote");
        assert_eq!(report_data(&v4[..v4.len() - 1]), None);
    }
}
