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
//! An `Infer` (sealed or in a session) is answered in two steps so that the kernel can run the inputs of several
//! connections through the graph as one batch (`batch`): [`Service::begin`] opens it into a [`PendingInfer`],
//! [`Service::run_batch`] runs any number of those, and [`Service::finish`] seals each one's reply.
//! [`Service::handle`] does all three for one request.
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
    /// Each of `inputs` as [`Model::infer`] answers it, one result per input in order; a model that can run them
    /// through its graph as one batch does.
    fn infer_batch(&mut self, inputs: &[&[f32]]) -> Vec<Result<Zeroizing<Vec<f32>>, ServiceErrorCode>> {
        inputs.iter().map(|values| self.infer(values)).collect()
    }
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
    /// `SessionOpen` opens and a refused record ends. An `Infer` runs as a batch of one.
    pub fn handle(
        &mut self,
        body: &[u8],
        session: &mut Option<Session>,
        rng: &mut impl CryptoRng,
    ) -> (Vec<u8>, Outcome) {
        match self.begin(body, session, rng) {
            Begun::Answered(reply, outcome) => (reply, outcome),
            Begun::Infer(mut pending) => {
                self.run_batch(&mut [&mut pending]);
                self.finish(pending, session, rng)
            }
        }
    }

    /// The first step of answering one request body: an `Infer` (sealed, or a session record) opened and waiting
    /// for its batch, or anything else answered in full. `session` as for [`Service::handle`].
    pub fn begin(&mut self, body: &[u8], session: &mut Option<Session>, rng: &mut impl CryptoRng) -> Begun {
        let (mut request, mut error) = ("undecodable", None);
        let answer = match ServiceRequest::decode(body) {
            Ok(ServiceRequest::SessionRecord { number, record }) => {
                request = "session-record";
                self.open_record(session, number, &record, &mut request, &mut error)
            }
            Ok(ServiceRequest::SessionOpen { encapped_key }) => {
                request = "session-open";
                // A new session replaces the old one, which is over either way.
                *session = None;
                Session::accept(&self.service_key, &encapped_key)
                    .map(|opened| {
                        *session = Some(opened);
                        Answer::Reply(ServiceReply::SessionOpened)
                    })
                    .map_err(|_| ServiceErrorCode::SessionNotOpened)
            }
            Ok(ServiceRequest::Infer { encapped_key, sealed_input }) => {
                request = "infer";
                self.open_sealed_infer(&encapped_key, &sealed_input)
            }
            Ok(other) => {
                request = other.name();
                self.answer(other, rng).map(Answer::Reply)
            }
            Err(_) => Err(ServiceErrorCode::Malformed),
        };
        let reply = match answer {
            Ok(Answer::Infer(values, reply_to)) => {
                return Begun::Infer(PendingInfer { values, reply_to, output: None });
            }
            Ok(Answer::Reply(reply)) => Ok(reply),
            Err(code) => Err(code),
        };
        let (body, outcome) = encode(reply, request, error);
        Begun::Answered(body, outcome)
    }

    /// Runs the inputs of `batch` through the model together: each one's output, or why it is refused.
    pub fn run_batch(&mut self, batch: &mut [&mut PendingInfer]) {
        let outputs = match self.model.as_mut() {
            None => batch.iter().map(|_| Err(ServiceErrorCode::NotReady)).collect(),
            Some(model) => {
                let inputs: Vec<&[f32]> = batch.iter().map(|pending| &pending.values[..]).collect();
                model.infer_batch(&inputs)
            }
        };
        let mut outputs = outputs.into_iter();
        for pending in batch.iter_mut() {
            // A model that returned too few results has failed the ones it left out.
            pending.output = Some(outputs.next().unwrap_or(Err(ServiceErrorCode::Internal)));
        }
    }

    /// The last step: `pending`'s output (or refusal) sealed to its client, as the reply to the request `begin`
    /// opened. `session` is the same connection's.
    pub fn finish(
        &mut self,
        pending: PendingInfer,
        session: &mut Option<Session>,
        rng: &mut impl CryptoRng,
    ) -> (Vec<u8>, Outcome) {
        let PendingInfer { reply_to, output, .. } = pending;
        let output = output.unwrap_or(Err(ServiceErrorCode::Internal));
        let model_error = output.as_ref().err().copied();
        let reply = match reply_to {
            ReplyTo::Sealed { reply_key, encapped_key } => {
                output.and_then(|values| seal_result(&reply_key, &values, &encapped_key, rng))
            }
            ReplyTo::Session => match session.as_mut() {
                Some(current) => session_reply(current, output),
                None => Err(ServiceErrorCode::NoSession),
            },
        };
        encode(reply, "infer", model_error)
    }

    /// One request record of `session`, opened: an `Infer` to run in a batch, or an `Embed` answered at once by the
    /// next reply record (a refusal, `error`, sealed the same way). `request` becomes the inner request's name. A
    /// record that does not open ends the session.
    fn open_record(
        &mut self,
        session: &mut Option<Session>,
        number: u64,
        record: &[u8],
        request: &mut &'static str,
        error: &mut Option<ServiceErrorCode>,
    ) -> Result<Answer, ServiceErrorCode> {
        let current = session.as_mut().ok_or(ServiceErrorCode::NoSession)?;
        let Ok(plaintext) = current.open_next(number, record) else {
            *session = None;
            return Err(ServiceErrorCode::SessionRecordRefused);
        };
        let output = match SessionRequest::decode(&plaintext) {
            Err(_) => Err(ServiceErrorCode::Malformed),
            Ok(SessionRequest::Infer(values)) => {
                *request = "infer";
                return Ok(Answer::Infer(Zeroizing::new(values), ReplyTo::Session));
            }
            Ok(SessionRequest::Embed(token_ids)) => {
                *request = "embed";
                let token_ids = Zeroizing::new(token_ids);
                self.model.as_mut().ok_or(ServiceErrorCode::NotReady).and_then(|m| m.embed(&token_ids))
            }
        };
        *error = output.as_ref().err().copied();
        session_reply(current, output).map(Answer::Reply)
    }

    /// A sealed `Infer` opened: its values and the key its reply is sealed to.
    fn open_sealed_infer(&mut self, encapped_key: &[u8; 32], sealed_input: &[u8]) -> Result<Answer, ServiceErrorCode> {
        if self.model.is_none() {
            return Err(ServiceErrorCode::NotReady);
        }
        let (reply_key, values) = answer_sealed(&self.service_key, INFER_INFO, encapped_key, sealed_input, |p| {
            let input = InferInput::decode(p).map_err(|_| ServiceErrorCode::Malformed)?;
            Ok((input.reply_public_key, Zeroizing::new(input.values)))
        })?;
        let reply_to = ReplyTo::Sealed { reply_key, encapped_key: *encapped_key };
        Ok(Answer::Infer(values, reply_to))
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
            // Handled by `begin`: an `Infer` waits for its batch, and a session is the connection's.
            ServiceRequest::Infer { .. }
            | ServiceRequest::SessionOpen { .. }
            | ServiceRequest::SessionRecord { .. } => Err(ServiceErrorCode::Internal),
        }
    }
}

/// Opens a sealed input under `info` and runs `run` on its plaintext (which is erased on return); the reply key
/// and `run`'s values (the input's, or the model's output).
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

/// A reply body for `reply`, and the outcome: the reply's error, else `error` (the model's, sealed inside a session
/// reply record).
fn encode(
    reply: Result<ServiceReply, ServiceErrorCode>,
    request: &'static str,
    error: Option<ServiceErrorCode>,
) -> (Vec<u8>, Outcome) {
    let error = reply.as_ref().err().copied().or(error);
    let reply = reply.unwrap_or_else(|code| ServiceReply::Error { code });
    let body = reply.encode().unwrap_or_else(|_| {
        let internal = ServiceReply::Error { code: ServiceErrorCode::Internal };
        internal.encode().expect("an error reply always encodes")
    });
    (body, Outcome { request, error })
}

/// `output` (or its refusal) sealed as `session`'s next reply record.
fn session_reply(
    session: &mut Session,
    output: Result<Zeroizing<Vec<f32>>, ServiceErrorCode>,
) -> Result<ServiceReply, ServiceErrorCode> {
    let encoded = Zeroizing::new(
        encode_reply(output.as_deref().map(|v| &v[..]).map_err(|e| *e)).map_err(|_| ServiceErrorCode::Internal)?,
    );
    let (number, record) = session.seal_next(&encoded).map_err(|_| ServiceErrorCode::Internal)?;
    Ok(ServiceReply::SessionReply { number, record })
}

mod pending;
use pending::{Answer, ReplyTo};
pub use pending::{Begun, PendingInfer};

#[cfg(test)]
mod tests;
