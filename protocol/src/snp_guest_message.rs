//! SEV-SNP guest messages: how a guest asks the PSP for an attestation report through the hypervisor, with every
//! message protected by AES-256-GCM under VMPCK0 from the secrets page (SEV-SNP Firmware ABI, "SNP_GUEST_REQUEST";
//! DESIGN.md §9). The hypervisor only carries the two pages; it can drop, delay or replay them, never read or forge.
//!
//! ```text
//! header (0x60): authtag [32] | msg_seqno u64 | reserved [8] | algo u8 | hdr_version u8 | hdr_sz u16
//!                | msg_type u8 | msg_version u8 | msg_sz u16 | reserved u32 | msg_vmpck u8 | reserved [35]
//! then msg_sz bytes of ciphertext; AAD = header bytes 0x30..0x60; IV = msg_seqno (little-endian, zero-padded);
//! the 16-byte tag is the start of authtag.
//! ```
//!
//! [`GuestChannel`] keeps the rules a guest must keep: sequence numbers are never reused (a request uses the next
//! odd number, its response the one after), a response must answer exactly the pending request, and any failure
//! retires the key for good, as the specification requires, because a second message under a sequence number the
//! PSP may have seen would reuse an AES-GCM nonce. Pure code over byte buffers: the kernel moves the pages.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use alloc::vec::Vec;
use zeroize::Zeroizing;

use crate::report::REPORT_LEN;

/// The message header's size (`hdr_sz`).
pub const HEADER_LEN: usize = 0x60;
/// The most payload one 4 KiB message page carries.
pub const MAX_PAYLOAD_LEN: usize = 4096 - HEADER_LEN;
/// `algo`: AES-256-GCM, the only algorithm the ABI defines.
pub const AEAD_ALGO_AES_256_GCM: u8 = 1;
/// `hdr_version`.
pub const HDR_VERSION: u8 = 1;
/// `msg_type` of a report request (ABI, table "Message Type Encodings").
pub const MSG_REPORT_REQ: u8 = 5;
/// `msg_type` of its response.
pub const MSG_REPORT_RSP: u8 = 6;
/// `msg_version` of MSG_REPORT_REQ.
pub const REPORT_REQ_VERSION: u8 = 1;
/// MSG_REPORT_REQ: REPORT_DATA [64] | VMPL u32 | KEY_SEL u32 | reserved [24].
pub const REPORT_REQ_LEN: usize = 0x60;
/// MSG_REPORT_RSP: STATUS u32 | REPORT_SIZE u32 | reserved [24] | REPORT.
pub const REPORT_RSP_LEN: usize = 0x20 + REPORT_LEN;
/// The AES-GCM tag's size.
const TAG_LEN: usize = 16;
/// Where the authenticated part of the header starts.
const AAD_OFFSET: usize = 0x30;

/// Why a message was refused. Every one of them retires the channel's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestMessageError {
    /// The key was retired by an earlier failure, or the sequence numbers ran out.
    Retired,
    /// A request is still waiting for its response.
    RequestPending,
    /// No request is waiting for a response.
    NoRequestPending,
    /// The payload does not fit one message page.
    PayloadTooLarge,
    /// Too short, or a header field other than the ABI's (algorithm, versions, sizes, VMPCK).
    Malformed,
    /// The response does not answer the pending request (sequence number or message type).
    NotTheResponse,
    /// The response did not authenticate under the key.
    Forged,
    /// The firmware answered with a non-zero status.
    FirmwareStatus(u32),
}

/// The fields of a header that are not fixed by the ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageHeader {
    /// The message's sequence number (never 0).
    pub seqno: u64,
    /// What the message is.
    pub msg_type: u8,
    /// The version of that message's format.
    pub msg_version: u8,
    /// The payload's length.
    pub msg_sz: u16,
    /// Which VMPCK protects it.
    pub vmpck: u8,
}

impl MessageHeader {
    /// The header bytes with a zero authtag.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut header = [0u8; HEADER_LEN];
        header[0x20..0x28].copy_from_slice(&self.seqno.to_le_bytes());
        header[0x30] = AEAD_ALGO_AES_256_GCM;
        header[0x31] = HDR_VERSION;
        header[0x32..0x34].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        header[0x34] = self.msg_type;
        header[0x35] = self.msg_version;
        header[0x36..0x38].copy_from_slice(&self.msg_sz.to_le_bytes());
        header[0x3c] = self.vmpck;
        header
    }

    /// Reads a header, refusing an algorithm, header version or size the ABI does not define, and a payload size
    /// beyond one page.
    pub fn decode(message: &[u8]) -> Result<MessageHeader, GuestMessageError> {
        let header = message.get(..HEADER_LEN).ok_or(GuestMessageError::Malformed)?;
        let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
        let fixed_fields_ok = header[0x30] == AEAD_ALGO_AES_256_GCM
            && header[0x31] == HDR_VERSION
            && usize::from(u16_at(0x32)) == HEADER_LEN;
        let decoded = MessageHeader {
            seqno: u64::from_le_bytes(header[0x20..0x28].try_into().map_err(|_| GuestMessageError::Malformed)?),
            msg_type: header[0x34],
            msg_version: header[0x35],
            msg_sz: u16_at(0x36),
            vmpck: header[0x3c],
        };
        if !fixed_fields_ok || usize::from(decoded.msg_sz) > MAX_PAYLOAD_LEN {
            return Err(GuestMessageError::Malformed);
        }
        Ok(decoded)
    }
}

/// The 12-byte AES-GCM nonce of a sequence number.
fn iv(seqno: u64) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[..8].copy_from_slice(&seqno.to_le_bytes());
    iv
}

/// Encrypts `payload` under `key` into a whole message with `header`'s fields (`msg_sz` is set from `payload`).
/// Used by the guest for requests and by the simulated PSP of the tests for responses.
pub fn protect(key: &[u8; 32], mut header: MessageHeader, payload: &[u8]) -> Result<Vec<u8>, GuestMessageError> {
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(GuestMessageError::PayloadTooLarge);
    }
    if header.seqno == 0 {
        return Err(GuestMessageError::Malformed);
    }
    header.msg_sz = payload.len() as u16;
    let mut message = header.encode().to_vec();
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| GuestMessageError::Forged)?;
    let sealed = cipher
        .encrypt(&iv(header.seqno).into(), Payload { msg: payload, aad: &message[AAD_OFFSET..HEADER_LEN] })
        .map_err(|_| GuestMessageError::PayloadTooLarge)?;
    let (ciphertext, tag) = sealed.split_at(payload.len());
    message[..TAG_LEN].copy_from_slice(tag);
    message.extend_from_slice(ciphertext);
    Ok(message)
}

/// Authenticates and decrypts a whole message under `key`; its header and payload (erased when dropped).
pub fn unprotect(key: &[u8; 32], message: &[u8]) -> Result<(MessageHeader, Zeroizing<Vec<u8>>), GuestMessageError> {
    let header = MessageHeader::decode(message)?;
    let ciphertext =
        message.get(HEADER_LEN..HEADER_LEN + usize::from(header.msg_sz)).ok_or(GuestMessageError::Malformed)?;
    let mut sealed = Zeroizing::new(Vec::with_capacity(ciphertext.len() + TAG_LEN));
    sealed.extend_from_slice(ciphertext);
    sealed.extend_from_slice(&message[..TAG_LEN]);
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| GuestMessageError::Forged)?;
    let payload = cipher
        .decrypt(&iv(header.seqno).into(), Payload { msg: &sealed, aad: &message[AAD_OFFSET..HEADER_LEN] })
        .map_err(|_| GuestMessageError::Forged)?;
    Ok((header, Zeroizing::new(payload)))
}

/// A request waiting for its response.
#[derive(Clone, Copy, Debug)]
struct Pending {
    seqno: u64,
    msg_type: u8,
    msg_version: u8,
}

/// The guest's side of the channel to the PSP under one VMPCK.
pub struct GuestChannel {
    /// `None` once retired: the key is erased.
    key: Option<Zeroizing<[u8; 32]>>,
    vmpck: u8,
    /// The last sequence number used (0 before the first request: the secrets page's counter at launch).
    last_seqno: u64,
    pending: Option<Pending>,
}

impl GuestChannel {
    /// A channel under `key`, VMPCK number `vmpck` (0 for a guest at VMPL0), whose last used sequence number is
    /// `last_seqno` (the secrets page's counter; 0 at launch).
    pub fn new(key: [u8; 32], vmpck: u8, last_seqno: u64) -> GuestChannel {
        GuestChannel { key: Some(Zeroizing::new(key)), vmpck, last_seqno, pending: None }
    }

    /// Whether the key has been retired.
    pub fn is_retired(&self) -> bool {
        self.key.is_none()
    }

    /// Erases the key: no message can be sent or read any more.
    pub fn retire(&mut self) {
        self.key = None;
        self.pending = None;
    }

    /// Protects a request under the next sequence number. Until its response is read, no other request can be
    /// made; on a "busy" answer from the hypervisor, the same bytes are sent again.
    pub fn request(&mut self, msg_type: u8, msg_version: u8, payload: &[u8]) -> Result<Vec<u8>, GuestMessageError> {
        if self.pending.is_some() {
            return Err(GuestMessageError::RequestPending);
        }
        let key = self.key.as_ref().ok_or(GuestMessageError::Retired)?;
        // The response takes the number after the request's: both must exist.
        let Some(seqno) = self.last_seqno.checked_add(1).filter(|s| s.checked_add(1).is_some()) else {
            self.retire();
            return Err(GuestMessageError::Retired);
        };
        let header = MessageHeader { seqno, msg_type, msg_version, msg_sz: 0, vmpck: self.vmpck };
        let message = protect(key, header, payload)?;
        self.pending = Some(Pending { seqno, msg_type, msg_version });
        Ok(message)
    }

    /// Reads the response to the pending request: it must authenticate, carry the request's sequence number + 1,
    /// the response type (request type + 1), the request's message version and this channel's VMPCK. On success
    /// both numbers are used up; on any failure the key is retired.
    pub fn response(&mut self, message: &[u8]) -> Result<Zeroizing<Vec<u8>>, GuestMessageError> {
        let result = self.check_response(message);
        match &result {
            Ok(_) => {
                if let Some(pending) = self.pending.take() {
                    self.last_seqno = pending.seqno + 1;
                }
            }
            Err(GuestMessageError::NoRequestPending) => {}
            Err(_) => self.retire(),
        }
        result
    }

    fn check_response(&self, message: &[u8]) -> Result<Zeroizing<Vec<u8>>, GuestMessageError> {
        let key = self.key.as_ref().ok_or(GuestMessageError::Retired)?;
        let pending = self.pending.ok_or(GuestMessageError::NoRequestPending)?;
        let (header, payload) = unprotect(key, message)?;
        let answers = header.seqno == pending.seqno + 1
            && header.msg_type == pending.msg_type.wrapping_add(1)
            && header.msg_version == pending.msg_version;
        if !answers {
            return Err(GuestMessageError::NotTheResponse);
        }
        if header.vmpck != self.vmpck {
            return Err(GuestMessageError::Malformed);
        }
        Ok(payload)
    }
}

/// The MSG_REPORT_REQ payload asking for a report carrying `report_data`, for VMPL `vmpl`, signed with the key the
/// firmware chooses (KEY_SEL = 0: the VLEK if one is installed, else the VCEK).
pub fn report_request(report_data: &[u8; 64], vmpl: u32) -> [u8; REPORT_REQ_LEN] {
    let mut request = [0u8; REPORT_REQ_LEN];
    request[..64].copy_from_slice(report_data);
    request[64..68].copy_from_slice(&vmpl.to_le_bytes());
    request
}

/// A MSG_REPORT_RSP payload with `status` and `report`: what the firmware answers (the simulated PSP of the tests
/// makes its responses with this; [`report_from_response`] reads them).
pub fn report_response(status: u32, report: &[u8; REPORT_LEN]) -> [u8; REPORT_RSP_LEN] {
    let mut response = [0u8; REPORT_RSP_LEN];
    response[..4].copy_from_slice(&status.to_le_bytes());
    response[4..8].copy_from_slice(&(REPORT_LEN as u32).to_le_bytes());
    response[0x20..].copy_from_slice(report);
    response
}

/// The report in a MSG_REPORT_RSP payload: STATUS must be 0 and REPORT_SIZE the report's size, exactly.
pub fn report_from_response(payload: &[u8]) -> Result<&[u8; REPORT_LEN], GuestMessageError> {
    if payload.len() != REPORT_RSP_LEN {
        return Err(GuestMessageError::Malformed);
    }
    let u32_at = |at: usize| u32::from_le_bytes([payload[at], payload[at + 1], payload[at + 2], payload[at + 3]]);
    match (u32_at(0), u32_at(4)) {
        (0, size) if size as usize == REPORT_LEN => {
            payload[0x20..].try_into().map_err(|_| GuestMessageError::Malformed)
        }
        (0, _) => Err(GuestMessageError::Malformed),
        (status, _) => Err(GuestMessageError::FirmwareStatus(status)),
    }
}

#[cfg(test)]
mod tests;
