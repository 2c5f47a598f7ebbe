//! Attested sessions: one HPKE exchange per connection instead of one per request.
//!
//! A client first verifies the guest's evidence, which binds the client's nonce and the guest's per-boot service key
//! (`binding::service_report_data`). It then opens a session: it encapsulates to that service key (HPKE base mode,
//! [`SESSION_INFO`]) and sends the encapsulated key (`ServiceRequest::SessionOpen`). Both sides export two keys from
//! the HPKE context, one per direction ([`REQUEST_KEY_LABEL`], [`REPLY_KEY_LABEL`]). Only the holder of the service
//! key's private half, the attested guest, can derive them, so a reply that opens comes from that guest.
//!
//! Each request and each reply is then one AES-256-GCM record under its direction's key, numbered from 0. The
//! nonce is the direction and the number; the additional data names the session info, the direction and the number.
//! A side accepts only the record numbered one past the last it accepted, and any record it refuses ends the session
//! for good. So:
//!
//! - a replayed record is refused (its number is behind);
//! - a reordered or dropped one is refused (its number is not the next);
//! - a record of another session opens nowhere (other keys);
//! - a reply cannot be fed back as a request (other direction, other key).
//!
//! Per-request HPKE (`Infer`, `Embed`) stays for one-shot clients.

use alloc::vec::Vec;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use zeroize::Zeroizing;

use crate::codec::DecodeError;
use crate::message::PublicKey;
use crate::seal::{CryptoRng, EphemeralKeyPair, SealError, export_from, export_to};
use crate::service::{MAX_VALUES, ServiceErrorCode, decode_token_ids, decode_values, encode_token_ids, encode_values};

/// The HPKE `info` of a session's key exchange.
pub const SESSION_INFO: &[u8] = b"ampoule/session/v1";
/// The exporter context of the requests' key (client to guest).
pub const REQUEST_KEY_LABEL: &[u8] = b"ampoule/session/v1 request key";
/// The exporter context of the replies' key (guest to client).
pub const REPLY_KEY_LABEL: &[u8] = b"ampoule/session/v1 reply key";
/// AES-GCM's tag.
pub const TAG_LEN: usize = 16;
/// The largest record: a request of [`MAX_VALUES`] values (or a reply of as many), and the tag.
pub const MAX_RECORD_LEN: usize = 1 + 2 + 4 * MAX_VALUES + TAG_LEN;

/// Which way a record travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Direction {
    /// Client to guest.
    Request = 1,
    /// Guest to client.
    Reply = 2,
}

/// Why a record was refused. The session is over after any of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// The record's number is not the next one: replayed, reordered, or one before it was dropped.
    OutOfOrder,
    /// It did not open under this session's key: another session's, or changed.
    DidNotOpen,
    /// The session already refused a record, or numbered 2^64 of them.
    Over,
    /// Too long to seal.
    TooLong,
}

/// One direction's key and the number of its next record.
struct DirectionKey {
    cipher: Aes256Gcm,
    direction: Direction,
    next: u64,
}

impl DirectionKey {
    fn new(key: &Zeroizing<[u8; 32]>, direction: Direction) -> DirectionKey {
        DirectionKey { cipher: Aes256Gcm::new((&**key).into()), direction, next: 0 }
    }

    /// Nonce: `direction | 0 0 0 | number (big-endian)`; additional data: the info, the direction, the number.
    fn nonce_and_aad(&self, number: u64) -> ([u8; 12], Vec<u8>) {
        let mut nonce = [0u8; 12];
        nonce[0] = self.direction as u8;
        nonce[4..].copy_from_slice(&number.to_be_bytes());
        let mut aad = Vec::with_capacity(SESSION_INFO.len() + 9);
        aad.extend_from_slice(SESSION_INFO);
        aad.push(self.direction as u8);
        aad.extend_from_slice(&number.to_be_bytes());
        (nonce, aad)
    }
}

/// One side of a session: its sending and receiving directions.
pub struct Session {
    send: DirectionKey,
    receive: DirectionKey,
    over: bool,
}

impl Session {
    /// The client's side: a session with the guest whose service key is `service_key` (already vouched for by its
    /// evidence). Returns the encapsulated key to send in `SessionOpen`.
    pub fn open(service_key: &PublicKey, rng: &mut impl CryptoRng) -> Result<([u8; 32], Session), SealError> {
        let (encapped_key, [request, reply]) =
            export_to(service_key, SESSION_INFO, [REQUEST_KEY_LABEL, REPLY_KEY_LABEL], rng)?;
        let session = Session {
            send: DirectionKey::new(&request, Direction::Request),
            receive: DirectionKey::new(&reply, Direction::Reply),
            over: false,
        };
        Ok((encapped_key, session))
    }

    /// The guest's side: the session a client opened with `encapped_key` to `service_key`.
    pub fn accept(service_key: &EphemeralKeyPair, encapped_key: &[u8; 32]) -> Result<Session, SealError> {
        let [request, reply] =
            export_from(service_key, encapped_key, SESSION_INFO, [REQUEST_KEY_LABEL, REPLY_KEY_LABEL])?;
        Ok(Session {
            send: DirectionKey::new(&reply, Direction::Reply),
            receive: DirectionKey::new(&request, Direction::Request),
            over: false,
        })
    }

    /// Seals `plaintext` as the next record: its number and ciphertext (with the tag).
    pub fn seal_next(&mut self, plaintext: &[u8]) -> Result<(u64, Vec<u8>), SessionError> {
        if self.over {
            return Err(SessionError::Over);
        }
        if plaintext.len() + TAG_LEN > MAX_RECORD_LEN {
            return Err(SessionError::TooLong);
        }
        let number = self.send.next;
        self.send.next = number.checked_add(1).ok_or(SessionError::Over)?;
        let (nonce, aad) = self.send.nonce_and_aad(number);
        let mut record = Vec::with_capacity(plaintext.len() + TAG_LEN);
        record.extend_from_slice(plaintext);
        let tag = self
            .send
            .cipher
            .encrypt_inout_detached(&Nonce::from(nonce), &aad, record.as_mut_slice().into())
            .map_err(|_| SessionError::TooLong)?;
        record.extend_from_slice(&tag);
        Ok((number, record))
    }

    /// Opens the record numbered `number`, which must be the next one; anything else ends the session.
    pub fn open_next(&mut self, number: u64, record: &[u8]) -> Result<Zeroizing<Vec<u8>>, SessionError> {
        if self.over {
            return Err(SessionError::Over);
        }
        // Refused from here on unless it opens.
        self.over = true;
        if number != self.receive.next {
            return Err(SessionError::OutOfOrder);
        }
        let (text, tag) = record
            .split_at_checked(record.len().checked_sub(TAG_LEN).ok_or(SessionError::DidNotOpen)?)
            .ok_or(SessionError::DidNotOpen)?;
        let tag = Tag::try_from(tag).map_err(|_| SessionError::DidNotOpen)?;
        let (nonce, aad) = self.receive.nonce_and_aad(number);
        let mut plaintext = Zeroizing::new(text.to_vec());
        self.receive
            .cipher
            .decrypt_inout_detached(&Nonce::from(nonce), &aad, plaintext.as_mut_slice().into(), &tag)
            .map_err(|_| SessionError::DidNotOpen)?;
        self.receive.next = number.checked_add(1).ok_or(SessionError::Over)?;
        self.over = false;
        Ok(plaintext)
    }
}

const INFER: u8 = 17;
const EMBED: u8 = 23;
const VALUES: u8 = 20;
const ERROR: u8 = 22;

/// What a request record opens to.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionRequest {
    /// One inference on these values.
    Infer(Vec<f32>),
    /// One embedding of these token ids.
    Embed(Vec<u32>),
}

impl SessionRequest {
    /// `17 | values` or `23 | count u16 | count x u32 (little-endian)`.
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        match self {
            SessionRequest::Infer(values) => {
                out.push(INFER);
                out.extend_from_slice(&encode_values(values)?);
            }
            SessionRequest::Embed(ids) => {
                out.push(EMBED);
                out.extend_from_slice(&encode_token_ids(ids)?);
            }
        }
        Ok(out)
    }

    /// Decodes an opened request strictly.
    pub fn decode(plaintext: &[u8]) -> Result<SessionRequest, DecodeError> {
        let (&kind, rest) = plaintext.split_first().ok_or(DecodeError::Truncated)?;
        match kind {
            INFER => Ok(SessionRequest::Infer(decode_values(rest)?)),
            EMBED => Ok(SessionRequest::Embed(decode_token_ids(rest)?)),
            other => Err(DecodeError::UnknownType(other)),
        }
    }
}

/// What a reply record opens to: the output values, or why the input was refused.
pub type SessionReply = Result<Vec<f32>, ServiceErrorCode>;

/// `20 | values` or `22 | code u16` (the caller erases it once sealed).
pub fn encode_reply(reply: Result<&[f32], ServiceErrorCode>) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    match reply {
        Ok(values) => {
            out.push(VALUES);
            out.extend_from_slice(&encode_values(values)?);
        }
        Err(code) => {
            out.push(ERROR);
            out.extend_from_slice(&(code as u16).to_be_bytes());
        }
    }
    Ok(out)
}

/// Decodes an opened reply strictly.
pub fn decode_reply(plaintext: &[u8]) -> Result<SessionReply, DecodeError> {
    let (&kind, rest) = plaintext.split_first().ok_or(DecodeError::Truncated)?;
    match kind {
        VALUES => Ok(Ok(decode_values(rest)?)),
        ERROR => {
            let code: [u8; 2] = rest.try_into().map_err(|_| DecodeError::Truncated)?;
            ServiceErrorCode::from_u16(u16::from_be_bytes(code)).map(Err).ok_or(DecodeError::UnknownType(ERROR))
        }
        other => Err(DecodeError::UnknownType(other)),
    }
}

#[cfg(test)]
mod tests;
