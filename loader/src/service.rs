//! The guest's inference service (DESIGN.md §5), one request body in, one reply body out, never a panic: the
//! kernel moves the bytes over TCP, this decides what they mean.
//!
//! - `Health`: attested yes/no, model loaded yes/no; nothing else.
//! - `Evidence { client_nonce }`: evidence whose report data binds the nonce and the per-boot service key.
//! - `Infer` and `Embed`: open the input sealed to the service key (each under its own HPKE info), have the
//!   [`Model`] check and run it, seal the output to the reply key the input names (AAD: the request's encapsulated
//!   key).
//! - `SessionOpen` and `SessionRecord`: the connection's attested session (`protocol::session`): one key exchange,
//!   then each request record opened in order and answered by the next reply record; a refused record ends it.
//!
//! Plaintext input and output live only in erasing buffers, and nothing about them but the outcome leaves this
//! module.

use alloc::vec::Vec;

use protocol::binding::service_report_data;
use protocol::seal::{CryptoRng, EphemeralKeyPair, seal};
use protocol::service::{
    EMBED_INFO, EmbedInput, INFER_INFO, InferInput, RESULT_INFO, ServiceErrorCode, ServiceReply, ServiceRequest,
    encode_values,
};
use protocol::session::{Session, SessionRequest, encode_reply};
use zeroize::Zeroizing;

use crate::attester::Attester;

/// The loaded model, as the service sees it: each request kind the model does not answer is `WrongModel`.
pub trait Model {
    /// Checks `values` against the model's input limits and runs it; the output values, or why the input is
    /// refused.
    fn infer(&mut self, values: &[f32]) -> Result<Zeroizing<Vec<f32>>, ServiceErrorCode>;
    /// Checks `token_ids` against the model's limits and embeds them; the embedding, or why they are refused.
    fn embed(&mut self, token_ids: &[u32]) -> Result<Zeroizing<Vec<f32>>, ServiceErrorCode>;
}

/// What one request was and how it ended (metadata for the kernel's record; never content).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The request's name, or `"undecodable"`.
    pub request: &'static str,
    /// `None` when served, otherwise the error the client was sent.
    pub error: Option<ServiceErrorCode>,
}

/// The service's state.
pub struct Service<A, M> {
    attester: A,
    service_key: EphemeralKeyPair,
    attested: bool,
    model: Option<M>,
}

impl<A: Attester, M: Model> Service<A, M> {
    /// A service answering with `attester`'s evidence for `service_key`, the per-boot key clients seal inputs to.
    pub fn new(attester: A, service_key: EphemeralKeyPair) -> Self {
        Self { attester, service_key, attested: false, model: None }
    }

    /// Records that the broker released the key after verifying this guest.
    pub fn set_attested(&mut self) {
        self.attested = true;
    }

    /// Installs the unsealed model.
    pub fn load_model(&mut self, model: M) {
        self.model = Some(model);
    }

    /// The loaded model, if any.
    pub fn model(&self) -> Option<&M> {
        self.model.as_ref()
    }

    /// Answers one request body with one reply body; `session` is the connection's session, which a
    /// `SessionOpen` opens and a refused record ends.
    pub fn handle(
        &mut self,
        body: &[u8],
        session: &mut Option<Session>,
        rng: &mut impl CryptoRng,
    ) -> (Vec<u8>, Outcome) {
        let (mut request, mut error) = ("undecodable", None);
        let reply = match ServiceRequest::decode(body) {
            Ok(ServiceRequest::SessionRecord { number, record }) => {
                request = "session-record";
                self.answer_record(session, number, &record, &mut request, &mut error)
            }
            Ok(ServiceRequest::SessionOpen { encapped_key }) => {
                request = "session-open";
                // A new session replaces the old one, which is over either way.
                *session = None;
                Session::accept(&self.service_key, &encapped_key)
                    .map(|opened| {
                        *session = Some(opened);
                        ServiceReply::SessionOpened
                    })
                    .map_err(|_| ServiceErrorCode::SessionNotOpened)
            }
            Ok(other) => {
                request = other.name();
                self.answer(other, rng)
            }
            Err(_) => Err(ServiceErrorCode::Malformed),
        };
        let error = reply.as_ref().err().copied().or(error);
        let reply = reply.unwrap_or_else(|code| ServiceReply::Error { code });
        let body = reply.encode().unwrap_or_else(|_| {
            let internal = ServiceReply::Error { code: ServiceErrorCode::Internal };
            internal.encode().expect("an error reply always encodes")
        });
        (body, Outcome { request, error })
    }

    /// One request record of `session`: the model's answer (or its refusal, `error`) sealed as the next reply
    /// record. `request` becomes the inner request's name. A record that does not open ends the session.
    fn answer_record(
        &mut self,
        session: &mut Option<Session>,
        number: u64,
        record: &[u8],
        request: &mut &'static str,
        error: &mut Option<ServiceErrorCode>,
    ) -> Result<ServiceReply, ServiceErrorCode> {
        let current = session.as_mut().ok_or(ServiceErrorCode::NoSession)?;
        let Ok(plaintext) = current.open_next(number, record) else {
            *session = None;
            return Err(ServiceErrorCode::SessionRecordRefused);
        };
        let output = match SessionRequest::decode(&plaintext) {
            Err(_) => Err(ServiceErrorCode::Malformed),
            Ok(SessionRequest::Infer(values)) => {
                *request = "infer";
                let values = Zeroizing::new(values);
                self.model.as_mut().ok_or(ServiceErrorCode::NotReady).and_then(|m| m.infer(&values))
            }
            Ok(SessionRequest::Embed(token_ids)) => {
                *request = "embed";
                let token_ids = Zeroizing::new(token_ids);
                self.model.as_mut().ok_or(ServiceErrorCode::NotReady).and_then(|m| m.embed(&token_ids))
            }
        };
        *error = output.as_ref().err().copied();
        let encoded = Zeroizing::new(
            encode_reply(output.as_deref().map(|v| &v[..]).map_err(|e| *e)).map_err(|_| ServiceErrorCode::Internal)?,
        );
        let (number, record) = current.seal_next(&encoded).map_err(|_| ServiceErrorCode::Internal)?;
        Ok(ServiceReply::SessionReply { number, record })
    }

    fn answer(&mut self, request: ServiceRequest, rng: &mut impl CryptoRng) -> Result<ServiceReply, ServiceErrorCode> {
        match request {
            ServiceRequest::Health => {
                Ok(ServiceReply::HealthIs { attested: self.attested, model_loaded: self.model.is_some() })
            }
            ServiceRequest::Evidence { client_nonce } => {
                let service_public_key = self.service_key.public_key();
                let report_data = service_report_data(&client_nonce, &service_public_key);
                let evidence = self.attester.evidence(&report_data).map_err(|_| ServiceErrorCode::Internal)?;
                Ok(ServiceReply::EvidenceIs { tee: self.attester.tee(), service_public_key, evidence })
            }
            ServiceRequest::Infer { encapped_key, sealed_input } => {
                let model = self.model.as_mut().ok_or(ServiceErrorCode::NotReady)?;
                let (reply_key, output) =
                    answer_sealed(&self.service_key, INFER_INFO, &encapped_key, &sealed_input, |p| {
                        let input = InferInput::decode(p).map_err(|_| ServiceErrorCode::Malformed)?;
                        let values = Zeroizing::new(input.values);
                        Ok((input.reply_public_key, model.infer(&values)?))
                    })?;
                seal_result(&reply_key, &output, &encapped_key, rng)
            }
            ServiceRequest::Embed { encapped_key, sealed_input } => {
                let model = self.model.as_mut().ok_or(ServiceErrorCode::NotReady)?;
                let (reply_key, output) =
                    answer_sealed(&self.service_key, EMBED_INFO, &encapped_key, &sealed_input, |p| {
                        let input = EmbedInput::decode(p).map_err(|_| ServiceErrorCode::Malformed)?;
                        let token_ids = Zeroizing::new(input.token_ids);
                        Ok((input.reply_public_key, model.embed(&token_ids)?))
                    })?;
                seal_result(&reply_key, &output, &encapped_key, rng)
            }
            // Handled by `handle`, which holds the connection's session.
            ServiceRequest::SessionOpen { .. } | ServiceRequest::SessionRecord { .. } => {
                Err(ServiceErrorCode::Internal)
            }
        }
    }
}

/// Opens a sealed input under `info` and runs `run` on its plaintext (which is erased on return); the reply key
/// and the output.
fn answer_sealed(
    service_key: &EphemeralKeyPair,
    info: &[u8],
    encapped_key: &[u8; 32],
    sealed_input: &[u8],
    run: impl FnOnce(&[u8]) -> Result<([u8; 32], Zeroizing<Vec<f32>>), ServiceErrorCode>,
) -> Result<([u8; 32], Zeroizing<Vec<f32>>), ServiceErrorCode> {
    let plaintext =
        service_key.open(encapped_key, sealed_input, info, &[]).map_err(|_| ServiceErrorCode::SealedInputDidNotOpen)?;
    run(&plaintext)
}

/// The output sealed to the reply key, with the request's encapsulated key as AAD.
fn seal_result(
    reply_key: &[u8; 32],
    output: &[f32],
    encapped_key: &[u8; 32],
    rng: &mut impl CryptoRng,
) -> Result<ServiceReply, ServiceErrorCode> {
    let encoded = Zeroizing::new(encode_values(output).map_err(|_| ServiceErrorCode::Internal)?);
    // The reply key is the only input sealing can fail on (e.g. a low-order point).
    let (result_encapped, sealed_output) =
        seal(reply_key, &encoded, RESULT_INFO, encapped_key, rng).map_err(|_| ServiceErrorCode::BadReplyKey)?;
    Ok(ServiceReply::Result { encapped_key: result_encapped, sealed_output })
}

#[cfg(test)]
mod tests;
