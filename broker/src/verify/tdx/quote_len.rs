//! The length of one DCAP quote from its own size fields (Intel TDX DCAP Quoting Library API, "Quote Format"), so
//! the verifier can refuse evidence with bytes after the quote: nothing may ride along unauthenticated.
//!
//! ```text
//! v4: header (48) | body (584 for a TD, 384 for an enclave)     | u32 signature data length | signature data
//! v5: header (48) | u16 body type | u32 body size | body         | u32 signature data length | signature data
//! ```

const HEADER_LEN: usize = 48;
const TEE_TYPE_TDX: u32 = 0x81;
const TD_REPORT10_LEN: usize = 584;
const ENCLAVE_REPORT_LEN: usize = 384;

fn u16_at(bytes: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?).into())
}

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    usize::try_from(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?)).ok()
}

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
