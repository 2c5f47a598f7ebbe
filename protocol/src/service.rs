//! The guest's inference service (DESIGN.md §5): what clients send the guest once it serves, and its replies. Same
//! encoding as [`crate::message`], with type bytes of its own so that the two families cannot be mistaken.
//!
//! ```text
//! client -> guest  Evidence   { client_nonce: [u8; 32] }
//! client -> guest  Infer      { encapped_key: [u8; 32], sealed_input: u32 len + bytes }
//! client -> guest  Embed      { encapped_key: [u8; 32], sealed_input: u32 len + bytes }
//! client -> guest  Health     {}
//! client -> guest  SessionOpen   { encapped_key: [u8; 32] }
//! client -> guest  SessionRecord { number: u64, record: u16 len + bytes }
//! guest -> client  EvidenceIs { tee: u8, service_public_key: [u8; 32], evidence: u32 len + bytes }
//! guest -> client  Result     { encapped_key: [u8; 32], sealed_output: u32 len + bytes }
//! guest -> client  HealthIs   { attested: u8 (0|1), model_loaded: u8 (0|1) }
//! guest -> client  Error      { code: u16 }
//! guest -> client  SessionOpened {}
//! guest -> client  SessionReply  { number: u64, record: u16 len + bytes }
//! ```
//!
//! `SessionOpen` and `SessionRecord` carry an attested session ([`crate::session`]): one key exchange per
//! connection, then one AES-GCM record per request and per reply, numbered.
//!
//! An `Infer`'s input is sealed (HPKE, [`INFER_INFO`]) to the guest's per-boot service key, which the guest's evidence
//! binds ([`crate::binding::service_report_data`]); it opens to [`InferInput`], which names the client's reply key.
//! The output is sealed to that reply key ([`RESULT_INFO`]) with the request's encapsulated key as AAD, so a result
//! answers exactly one request. An `Embed` is the same for a sentence-embedding model: its input (sealed under
//! [`EMBED_INFO`], so that it cannot be replayed as an `Infer`) opens to [`EmbedInput`], token ids; its `Result` is
//! the embedding.

use alloc::vec::Vec;

pub use crate::codec::DecodeError;
use crate::codec::{Reader, put_bytes};
use crate::message::{MAX_EVIDENCE_LEN, NONCE_LEN, PublicKey};
use crate::session::MAX_RECORD_LEN;
use crate::tee::Tee;

/// The HPKE `info` of a sealed inference input.
pub const INFER_INFO: &[u8] = b"ampoule/infer/v1";
/// The HPKE `info` of a sealed inference result.
pub const RESULT_INFO: &[u8] = b"ampoule/result/v1";
/// The most values an input or output may carry (the model's own limits are checked inside the guest).
pub const MAX_VALUES: usize = 1024;
/// The HPKE `info` of a sealed embedding input.
pub const EMBED_INFO: &[u8] = b"ampoule/embed/v1";
/// The most token ids an `Embed` input may carry (the model's own limit is checked inside the guest).
pub const MAX_TOKEN_IDS: usize = 512;
/// The most sealed-input bytes an `Infer` may carry: a reply key, a count and [`MAX_VALUES`] values, plus the tag.
pub const MAX_SEALED_LEN: usize = 32 + 2 + 4 * MAX_VALUES + 16;

/// A client's request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceRequest {
    /// Evidence bound to `client_nonce` and the guest's service key.
    Evidence {
        /// The client's fresh nonce.
        client_nonce: [u8; NONCE_LEN],
    },
    /// One inference.
    Infer {
        /// The HPKE encapsulated key.
        encapped_key: [u8; 32],
        /// The HPKE ciphertext of an [`InferInput`].
        sealed_input: Vec<u8>,
    },
    /// Whether the guest is attested and has its model.
    Health,
    /// One sentence embedding.
    Embed {
        /// The HPKE encapsulated key.
        encapped_key: [u8; 32],
        /// The HPKE ciphertext of an [`EmbedInput`].
        sealed_input: Vec<u8>,
    },
    /// Opens this connection's session ([`crate::session::Session::open`]).
    SessionOpen {
        /// The HPKE encapsulated key, to the service key.
        encapped_key: [u8; 32],
    },
    /// One request in the connection's session.
    SessionRecord {
        /// Its number: one past the previous request's.
        number: u64,
        /// A [`crate::session::SessionRequest`] sealed under the session's request key.
        record: Vec<u8>,
    },
}

/// The guest's reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceReply {
    /// The guest's evidence.
    EvidenceIs {
        /// The TEE it is from.
        tee: Tee,
        /// The guest's per-boot service key, to which inputs are sealed.
        service_public_key: PublicKey,
        /// The report or quote.
        evidence: Vec<u8>,
    },
    /// One inference's output, sealed to the client's reply key.
    Result {
        /// The HPKE encapsulated key.
        encapped_key: [u8; 32],
        /// The HPKE ciphertext of the output values ([`encode_values`]).
        sealed_output: Vec<u8>,
    },
    /// Health: these two facts and nothing else.
    HealthIs {
        /// The guest obtained its key from the broker.
        attested: bool,
        /// The model is unsealed and loaded.
        model_loaded: bool,
    },
    /// The request was refused; the service goes on.
    Error {
        /// Why.
        code: ServiceErrorCode,
    },
    /// The session is open.
    SessionOpened,
    /// One reply in the connection's session.
    SessionReply {
        /// Its number: one past the previous reply's.
        number: u64,
        /// A [`crate::session::SessionReply`] sealed under the session's reply key.
        record: Vec<u8>,
    },
}

/// Why the guest refused a request. Stable numbers: clients and tests match on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum ServiceErrorCode {
    /// The request is not a well-formed service message.
    Malformed = 1,
    /// The model is not loaded (no key yet).
    NotReady = 2,
    /// The sealed input did not open with the service key.
    SealedInputDidNotOpen = 3,
    /// The input has the wrong number of values.
    WrongValueCount = 4,
    /// A value is NaN or infinite.
    NonFiniteValue = 5,
    /// A value is outside the model's accepted range.
    ValueOutOfRange = 6,
    /// The reply key is not a valid X25519 public key.
    BadReplyKey = 7,
    /// The guest could not produce evidence or seal the reply.
    Internal = 8,
    /// No tokens, or more than the model reads.
    TokenCountOutOfRange = 9,
    /// A token id outside the model's vocabulary.
    TokenOutOfVocabulary = 10,
    /// The loaded model does not answer this request (an `Embed` to a classifier, an `Infer` to an embedder).
    WrongModel = 11,
    /// A session record arrived on a connection without a session.
    NoSession = 12,
    /// A session record was refused (replayed, out of order, another session's, changed): the session is over.
    SessionRecordRefused = 13,
    /// The session's key exchange failed (a malformed encapsulated key).
    SessionNotOpened = 14,
}

impl ServiceErrorCode {
    /// The code for a number, if any.
    pub fn from_u16(value: u16) -> Option<ServiceErrorCode> {
        use ServiceErrorCode::*;
        [
            Malformed,
            NotReady,
            SealedInputDidNotOpen,
            WrongValueCount,
            NonFiniteValue,
            ValueOutOfRange,
            BadReplyKey,
            Internal,
            TokenCountOutOfRange,
            TokenOutOfVocabulary,
            WrongModel,
            NoSession,
            SessionRecordRefused,
            SessionNotOpened,
        ]
        .into_iter()
        .find(|code| *code as u16 == value)
    }

    /// A stable name for records and messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            ServiceErrorCode::Malformed => "malformed-request",
            ServiceErrorCode::NotReady => "model-not-loaded",
            ServiceErrorCode::SealedInputDidNotOpen => "sealed-input-did-not-open",
            ServiceErrorCode::WrongValueCount => "wrong-value-count",
            ServiceErrorCode::NonFiniteValue => "non-finite-value",
            ServiceErrorCode::ValueOutOfRange => "value-out-of-range",
            ServiceErrorCode::BadReplyKey => "bad-reply-key",
            ServiceErrorCode::Internal => "internal",
            ServiceErrorCode::TokenCountOutOfRange => "token-count-out-of-range",
            ServiceErrorCode::TokenOutOfVocabulary => "token-out-of-vocabulary",
            ServiceErrorCode::WrongModel => "wrong-model",
            ServiceErrorCode::NoSession => "no-session",
            ServiceErrorCode::SessionRecordRefused => "session-record-refused",
            ServiceErrorCode::SessionNotOpened => "session-not-opened",
        }
    }
}

const EVIDENCE: u8 = 16;
const INFER: u8 = 17;
const HEALTH: u8 = 18;
const EVIDENCE_IS: u8 = 19;
const RESULT: u8 = 20;
const HEALTH_IS: u8 = 21;
const ERROR: u8 = 22;
const EMBED: u8 = 23;
const SESSION_OPEN: u8 = 24;
const SESSION_RECORD: u8 = 25;
const SESSION_OPENED: u8 = 26;
const SESSION_REPLY: u8 = 27;

fn flag(r: &mut Reader<'_>) -> Result<bool, DecodeError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(DecodeError::BadFlag(other)),
    }
}

impl ServiceRequest {
    /// Decodes one frame body.
    pub fn decode(body: &[u8]) -> Result<ServiceRequest, DecodeError> {
        let mut r = Reader::new(body);
        let request = match r.u8()? {
            EVIDENCE => ServiceRequest::Evidence { client_nonce: r.array()? },
            INFER => ServiceRequest::Infer { encapped_key: r.array()?, sealed_input: r.bytes(4, MAX_SEALED_LEN)? },
            HEALTH => ServiceRequest::Health,
            EMBED => ServiceRequest::Embed { encapped_key: r.array()?, sealed_input: r.bytes(4, MAX_SEALED_LEN)? },
            SESSION_OPEN => ServiceRequest::SessionOpen { encapped_key: r.array()? },
            SESSION_RECORD => ServiceRequest::SessionRecord { number: r.u64()?, record: r.bytes(2, MAX_RECORD_LEN)? },
            other => return Err(DecodeError::UnknownType(other)),
        };
        r.finish()?;
        Ok(request)
    }

    /// Encodes the request as a frame body.
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        match self {
            ServiceRequest::Evidence { client_nonce } => {
                out.push(EVIDENCE);
                out.extend_from_slice(client_nonce);
            }
            ServiceRequest::Infer { encapped_key, sealed_input } => {
                out.push(INFER);
                out.extend_from_slice(encapped_key);
                put_bytes(&mut out, sealed_input, 4, MAX_SEALED_LEN)?;
            }
            ServiceRequest::Health => out.push(HEALTH),
            ServiceRequest::Embed { encapped_key, sealed_input } => {
                out.push(EMBED);
                out.extend_from_slice(encapped_key);
                put_bytes(&mut out, sealed_input, 4, MAX_SEALED_LEN)?;
            }
            ServiceRequest::SessionOpen { encapped_key } => {
                out.push(SESSION_OPEN);
                out.extend_from_slice(encapped_key);
            }
            ServiceRequest::SessionRecord { number, record } => {
                out.push(SESSION_RECORD);
                out.extend_from_slice(&number.to_be_bytes());
                put_bytes(&mut out, record, 2, MAX_RECORD_LEN)?;
            }
        }
        Ok(out)
    }

    /// The request's name, for records.
    pub const fn name(&self) -> &'static str {
        match self {
            ServiceRequest::Evidence { .. } => "evidence",
            ServiceRequest::Infer { .. } => "infer",
            ServiceRequest::Health => "health",
            ServiceRequest::Embed { .. } => "embed",
            ServiceRequest::SessionOpen { .. } => "session-open",
            ServiceRequest::SessionRecord { .. } => "session-record",
        }
    }
}

impl ServiceReply {
    /// Decodes one frame body.
    pub fn decode(body: &[u8]) -> Result<ServiceReply, DecodeError> {
        let mut r = Reader::new(body);
        let reply = match r.u8()? {
            EVIDENCE_IS => ServiceReply::EvidenceIs {
                tee: r.tee()?,
                service_public_key: r.array()?,
                evidence: r.bytes(4, MAX_EVIDENCE_LEN)?,
            },
            RESULT => ServiceReply::Result { encapped_key: r.array()?, sealed_output: r.bytes(4, MAX_SEALED_LEN)? },
            HEALTH_IS => ServiceReply::HealthIs { attested: flag(&mut r)?, model_loaded: flag(&mut r)? },
            ERROR => {
                let code = r.u16()?;
                ServiceReply::Error {
                    code: ServiceErrorCode::from_u16(code).ok_or(DecodeError::UnknownServiceError(code))?,
                }
            }
            SESSION_OPENED => ServiceReply::SessionOpened,
            SESSION_REPLY => ServiceReply::SessionReply { number: r.u64()?, record: r.bytes(2, MAX_RECORD_LEN)? },
            other => return Err(DecodeError::UnknownType(other)),
        };
        r.finish()?;
        Ok(reply)
    }

    /// Encodes the reply as a frame body.
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        match self {
            ServiceReply::EvidenceIs { tee, service_public_key, evidence } => {
                out.push(EVIDENCE_IS);
                out.push(*tee as u8);
                out.extend_from_slice(service_public_key);
                put_bytes(&mut out, evidence, 4, MAX_EVIDENCE_LEN)?;
            }
            ServiceReply::Result { encapped_key, sealed_output } => {
                out.push(RESULT);
                out.extend_from_slice(encapped_key);
                put_bytes(&mut out, sealed_output, 4, MAX_SEALED_LEN)?;
            }
            ServiceReply::HealthIs { attested, model_loaded } => {
                out.extend_from_slice(&[HEALTH_IS, u8::from(*attested), u8::from(*model_loaded)]);
            }
            ServiceReply::Error { code } => {
                out.push(ERROR);
                out.extend_from_slice(&(*code as u16).to_be_bytes());
            }
            ServiceReply::SessionOpened => out.push(SESSION_OPENED),
            ServiceReply::SessionReply { number, record } => {
                out.push(SESSION_REPLY);
                out.extend_from_slice(&number.to_be_bytes());
                put_bytes(&mut out, record, 2, MAX_RECORD_LEN)?;
            }
        }
        Ok(out)
    }
}

/// What an `Infer`'s sealed input opens to: `reply_public_key [32] | count u16 | count x f32 (little-endian)`.
#[derive(Clone, Debug, PartialEq)]
pub struct InferInput {
    /// The client's key, to which the result is sealed.
    pub reply_public_key: PublicKey,
    /// The model's input values.
    pub values: Vec<f32>,
}

impl InferInput {
    /// Encodes the plaintext (the caller seals it and zeroizes it).
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::with_capacity(32 + 2 + 4 * self.values.len());
        out.extend_from_slice(&self.reply_public_key);
        out.extend_from_slice(&encode_values(&self.values)?);
        Ok(out)
    }

    /// Decodes an opened plaintext strictly.
    pub fn decode(plaintext: &[u8]) -> Result<InferInput, DecodeError> {
        let (key, rest) = plaintext.split_at_checked(32).ok_or(DecodeError::Truncated)?;
        Ok(InferInput { reply_public_key: key.try_into().expect("32 bytes"), values: decode_values(rest)? })
    }
}

/// What an `Embed`'s sealed input opens to: `reply_public_key [32] | count u16 | count x u32 (little-endian)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbedInput {
    /// The client's key, to which the result is sealed.
    pub reply_public_key: PublicKey,
    /// One sentence's token ids, as the model's tokenizer makes them.
    pub token_ids: Vec<u32>,
}

impl EmbedInput {
    /// Encodes the plaintext (the caller seals it and zeroizes it).
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::with_capacity(32 + 2 + 4 * self.token_ids.len());
        out.extend_from_slice(&self.reply_public_key);
        out.extend_from_slice(&encode_token_ids(&self.token_ids)?);
        Ok(out)
    }

    /// Decodes an opened plaintext strictly (exact length, at most [`MAX_TOKEN_IDS`]).
    pub fn decode(plaintext: &[u8]) -> Result<EmbedInput, DecodeError> {
        let (key, rest) = plaintext.split_at_checked(32).ok_or(DecodeError::Truncated)?;
        Ok(EmbedInput { reply_public_key: key.try_into().expect("32 bytes"), token_ids: decode_token_ids(rest)? })
    }
}

/// `count u16 | count x u32 (little-endian)`: one sentence's token ids, at most [`MAX_TOKEN_IDS`].
pub fn encode_token_ids(token_ids: &[u32]) -> Result<Vec<u8>, DecodeError> {
    if token_ids.len() > MAX_TOKEN_IDS {
        return Err(DecodeError::TooLong);
    }
    let mut out = Vec::with_capacity(2 + 4 * token_ids.len());
    out.extend_from_slice(&(token_ids.len() as u16).to_be_bytes());
    token_ids.iter().for_each(|id| out.extend_from_slice(&id.to_le_bytes()));
    Ok(out)
}

/// Decodes [`encode_token_ids`]' format strictly (exact length, at most [`MAX_TOKEN_IDS`]).
pub fn decode_token_ids(bytes: &[u8]) -> Result<Vec<u32>, DecodeError> {
    let mut r = Reader::new(bytes);
    let count = usize::from(r.u16()?);
    if count > MAX_TOKEN_IDS {
        return Err(DecodeError::TooLong);
    }
    let token_ids = (0..count).map(|_| Ok(u32::from_le_bytes(r.array()?))).collect::<Result<Vec<u32>, _>>()?;
    r.finish()?;
    Ok(token_ids)
}

/// `count u16 | count x f32 (little-endian)`: an output, or the values of an input.
pub fn encode_values(values: &[f32]) -> Result<Vec<u8>, DecodeError> {
    if values.len() > MAX_VALUES {
        return Err(DecodeError::TooLong);
    }
    let mut out = Vec::with_capacity(2 + 4 * values.len());
    out.extend_from_slice(&(values.len() as u16).to_be_bytes());
    values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    Ok(out)
}

/// Decodes [`encode_values`]' format strictly (exact length, at most [`MAX_VALUES`]).
pub fn decode_values(bytes: &[u8]) -> Result<Vec<f32>, DecodeError> {
    let mut r = Reader::new(bytes);
    let count = usize::from(r.u16()?);
    if count > MAX_VALUES {
        return Err(DecodeError::TooLong);
    }
    let values = (0..count).map(|_| Ok(f32::from_le_bytes(r.array()?))).collect::<Result<Vec<f32>, DecodeError>>()?;
    r.finish()?;
    Ok(values)
}

#[cfg(test)]
mod tests;
