//! The messages of the key dance (DESIGN.md §5) and their encoding: one type byte, then fixed-size fields and
//! length-prefixed byte strings, big-endian. Decoding is strict: exact lengths, bounded strings, no trailing bytes,
//! unknown types and values refused.
//!
//! ```text
//! guest -> broker  Hello      { version: u16, tee: u8 }
//! broker -> guest  Challenge  { nonce: [u8; 32] }
//! guest -> broker  Attest     { tee: u8, nonce: [u8; 32], key_id: [u8; 16], guest_public_key: [u8; 32],
//!                               evidence: u32 len + bytes }
//! broker -> guest  KeyRelease { key_id: [u8; 16], expires_at: u64, encapped_key: [u8; 32], sealed_key: u16 len + bytes }
//! broker -> guest  Refused    { code: u16 }
//! ```

use alloc::vec::Vec;

pub use crate::codec::DecodeError;
use crate::codec::{Reader, put_bytes};
use crate::frame::MAX_FRAME_LEN;
use crate::refusal::RefusalCode;
use crate::tee::Tee;

/// The protocol version a guest announces in `Hello`.
pub const PROTOCOL_VERSION: u16 = 1;
/// The nonce length.
pub const NONCE_LEN: usize = 32;
/// A key id: 16 random bytes, printed as hex.
pub type KeyId = [u8; 16];
/// An X25519 public key.
pub type PublicKey = [u8; 32];
/// The most evidence bytes an `Attest` can carry.
pub const MAX_EVIDENCE_LEN: usize = MAX_FRAME_LEN - 1 - 1 - NONCE_LEN - 16 - 32 - 4;
/// The most sealed-key bytes a `KeyRelease` can carry (a 32-byte key + 16-byte tag, with room to spare).
pub const MAX_SEALED_KEY_LEN: usize = 256;

/// One message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// The guest opens a session.
    Hello {
        /// [`PROTOCOL_VERSION`].
        version: u16,
        /// The TEE the guest runs in.
        tee: Tee,
    },
    /// A fresh, single-use nonce for this connection.
    Challenge {
        /// The nonce.
        nonce: [u8; NONCE_LEN],
    },
    /// The guest's evidence, bound to the nonce and its ephemeral public key.
    Attest {
        /// The TEE the evidence is from.
        tee: Tee,
        /// The nonce the evidence answers (the broker checks it was issued to this connection, once, recently).
        nonce: [u8; NONCE_LEN],
        /// The key the image needs.
        key_id: KeyId,
        /// The guest's ephemeral X25519 public key.
        guest_public_key: PublicKey,
        /// The hardware (or simulated) report or quote.
        evidence: Vec<u8>,
    },
    /// The key, sealed with HPKE to the guest's public key.
    KeyRelease {
        /// Which key.
        key_id: KeyId,
        /// Until when the release is valid (Unix seconds).
        expires_at: u64,
        /// The HPKE encapsulated key.
        encapped_key: [u8; 32],
        /// The HPKE ciphertext of the key.
        sealed_key: Vec<u8>,
    },
    /// Nothing is released, and why.
    Refused {
        /// The reason.
        code: RefusalCode,
    },
}

/// Message type bytes.
const HELLO: u8 = 1;
const CHALLENGE: u8 = 2;
const ATTEST: u8 = 3;
const KEY_RELEASE: u8 = 4;
const REFUSED: u8 = 5;

impl Message {
    /// Decodes one frame body.
    pub fn decode(body: &[u8]) -> Result<Message, DecodeError> {
        let mut r = Reader::new(body);
        let message = match r.u8()? {
            HELLO => Message::Hello { version: r.u16()?, tee: r.tee()? },
            CHALLENGE => Message::Challenge { nonce: r.array()? },
            ATTEST => Message::Attest {
                tee: r.tee()?,
                nonce: r.array()?,
                key_id: r.array()?,
                guest_public_key: r.array()?,
                evidence: r.bytes(4, MAX_EVIDENCE_LEN)?,
            },
            KEY_RELEASE => Message::KeyRelease {
                key_id: r.array()?,
                expires_at: r.u64()?,
                encapped_key: r.array()?,
                sealed_key: r.bytes(2, MAX_SEALED_KEY_LEN)?,
            },
            REFUSED => {
                let code = r.u16()?;
                Message::Refused { code: RefusalCode::from_u16(code).ok_or(DecodeError::UnknownRefusal(code))? }
            }
            other => return Err(DecodeError::UnknownType(other)),
        };
        r.finish()?;
        Ok(message)
    }

    /// Encodes the message as a frame body. Byte strings longer than their bound are an error of the caller's.
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        match self {
            Message::Hello { version, tee } => {
                out.push(HELLO);
                out.extend_from_slice(&version.to_be_bytes());
                out.push(*tee as u8);
            }
            Message::Challenge { nonce } => {
                out.push(CHALLENGE);
                out.extend_from_slice(nonce);
            }
            Message::Attest { tee, nonce, key_id, guest_public_key, evidence } => {
                out.push(ATTEST);
                out.push(*tee as u8);
                out.extend_from_slice(nonce);
                out.extend_from_slice(key_id);
                out.extend_from_slice(guest_public_key);
                put_bytes(&mut out, evidence, 4, MAX_EVIDENCE_LEN)?;
            }
            Message::KeyRelease { key_id, expires_at, encapped_key, sealed_key } => {
                out.push(KEY_RELEASE);
                out.extend_from_slice(key_id);
                out.extend_from_slice(&expires_at.to_be_bytes());
                out.extend_from_slice(encapped_key);
                put_bytes(&mut out, sealed_key, 2, MAX_SEALED_KEY_LEN)?;
            }
            Message::Refused { code } => {
                out.push(REFUSED);
                out.extend_from_slice(&(*code as u16).to_be_bytes());
            }
        }
        Ok(out)
    }

    /// The message's name, for records.
    pub const fn name(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "hello",
            Message::Challenge { .. } => "challenge",
            Message::Attest { .. } => "attest",
            Message::KeyRelease { .. } => "key-release",
            Message::Refused { .. } => "refused",
        }
    }
}

#[cfg(test)]
mod tests;
