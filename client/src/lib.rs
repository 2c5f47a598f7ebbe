//! `ampoule-client`'s library: talk to a serving guest the way DESIGN.md §5 says a client must.
//!
//! 1. [`GuestClient::connect`] asks for evidence bound to a fresh nonce and checks it with the broker's own
//!    [`Policy`] code (same verifiers, same allowlist format) before anything else is sent;
//! 2. [`GuestClient::infer`] (values, for a classifier) and [`GuestClient::embed`] (token ids, for a
//!    sentence-embedding model) seal the input (HPKE) to the per-boot service key that evidence vouched for, with a
//!    fresh reply key, and open the result sealed back to it;
//! 3. [`GuestClient::health`] asks the two facts health tells.

pub mod gateway;
pub mod tokenizer;

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use broker::policy::Policy;
use broker::verify::Verified;
use getrandom::SysRng;
use loader::{StreamTransport, Transport};
use protocol::binding::service_report_data;
use protocol::message::PublicKey;
use protocol::seal::rand_core::UnwrapErr;
use protocol::seal::{EphemeralKeyPair, seal};
use protocol::service::{
    EMBED_INFO, EmbedInput, INFER_INFO, InferInput, MAX_SEALED_LEN, RESULT_INFO, ServiceErrorCode, ServiceReply,
    ServiceRequest, decode_values,
};
use protocol::session::{Session, SessionRequest, decode_reply};
use zeroize::Zeroizing;

/// The largest reply accepted: an `EvidenceIs` with the largest evidence.
const MAX_REPLY_LEN: usize = protocol::frame::MAX_FRAME_LEN;

/// Why a guest's evidence was not accepted (the policy's refusal code, or `no_evidence`): nothing is sent to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvidenceRefused(pub &'static str);

impl std::fmt::Display for EvidenceRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the guest's evidence fails the policy: {}", self.0)
    }
}

impl std::error::Error for EvidenceRefused {}

/// A connection to a guest whose evidence passed the policy.
pub struct GuestClient {
    transport: StreamTransport<TcpStream>,
    service_key: PublicKey,
    verified: Verified,
    session: Option<Session>,
}

/// An inference's outcome: the output values, or the guest's reason for refusing the input.
pub type Inference = std::result::Result<Zeroizing<Vec<f32>>, ServiceErrorCode>;

fn rng() -> UnwrapErr<SysRng> {
    UnwrapErr(SysRng)
}

impl GuestClient {
    /// Connects to `guest`, asks for evidence bound to a fresh nonce, and checks it against `policy`.
    pub fn connect(guest: SocketAddr, policy: &Policy, timeout: Duration) -> Result<GuestClient> {
        let stream = connect_with_retries(guest, timeout).with_context(|| format!("connecting to {guest}"))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let mut transport = StreamTransport(stream);
        let mut client_nonce = [0u8; 32];
        getrandom::fill(&mut client_nonce).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let reply = exchange(&mut transport, &ServiceRequest::Evidence { client_nonce })?;
        let ServiceReply::EvidenceIs { tee, service_public_key, evidence } = reply else {
            return Err(EvidenceRefused("no_evidence").into());
        };
        let expected = service_report_data(&client_nonce, &service_public_key);
        let (verified, _) = policy.check(tee, &evidence, &expected).map_err(|code| EvidenceRefused(code.as_str()))?;
        Ok(GuestClient { transport, service_key: service_public_key, verified, session: None })
    }

    /// Opens an attested session on this connection (`protocol::session`): one key exchange with the service key
    /// the evidence vouched for; from then on [`GuestClient::infer`] and [`GuestClient::embed`] travel as numbered
    /// AES-GCM records instead of one HPKE exchange each.
    pub fn open_session(&mut self) -> Result<()> {
        let (encapped_key, session) = Session::open(&self.service_key, &mut rng())
            .map_err(|_| anyhow::anyhow!("the service key does not take a session"))?;
        match exchange(&mut self.transport, &ServiceRequest::SessionOpen { encapped_key })? {
            ServiceReply::SessionOpened => {
                self.session = Some(session);
                Ok(())
            }
            other => bail!("the guest answered the session's opening with {other:?}"),
        }
    }

    /// Whether requests travel in a session.
    pub fn in_session(&self) -> bool {
        self.session.is_some()
    }

    /// What the evidence said (TEE, measurement).
    pub fn verified(&self) -> &Verified {
        &self.verified
    }

    /// One inference on `values`.
    pub fn infer(&mut self, values: &[f32]) -> Result<Inference> {
        if self.session.is_some() {
            return self.session_request(SessionRequest::Infer(values.to_vec()));
        }
        let reply_key = EphemeralKeyPair::generate(&mut rng());
        let input = InferInput { reply_public_key: reply_key.public_key(), values: values.to_vec() };
        let plaintext = Zeroizing::new(input.encode().map_err(|e| anyhow::anyhow!("input too large: {e}"))?);
        drop(Zeroizing::new(input.values));
        self.sealed_request(&plaintext, INFER_INFO, &reply_key, |encapped_key, sealed_input| ServiceRequest::Infer {
            encapped_key,
            sealed_input,
        })
    }

    /// The embedding of one sentence's `token_ids` (as the model's tokenizer makes them).
    pub fn embed(&mut self, token_ids: &[u32]) -> Result<Inference> {
        if self.session.is_some() {
            return self.session_request(SessionRequest::Embed(token_ids.to_vec()));
        }
        let reply_key = EphemeralKeyPair::generate(&mut rng());
        let input = EmbedInput { reply_public_key: reply_key.public_key(), token_ids: token_ids.to_vec() };
        let plaintext = Zeroizing::new(input.encode().map_err(|e| anyhow::anyhow!("input too large: {e}"))?);
        drop(Zeroizing::new(input.token_ids));
        self.sealed_request(&plaintext, EMBED_INFO, &reply_key, |encapped_key, sealed_input| ServiceRequest::Embed {
            encapped_key,
            sealed_input,
        })
    }

    /// Seals `plaintext` under `info` to the service key, sends the request `make` builds, and opens the result
    /// with `reply_key`.
    fn sealed_request(
        &mut self,
        plaintext: &[u8],
        info: &[u8],
        reply_key: &EphemeralKeyPair,
        make: impl FnOnce([u8; 32], Vec<u8>) -> ServiceRequest,
    ) -> Result<Inference> {
        let (encapped_key, sealed_input) = seal(&self.service_key, plaintext, info, &[], &mut rng())
            .map_err(|_| anyhow::anyhow!("sealing the input failed"))?;
        anyhow::ensure!(sealed_input.len() <= MAX_SEALED_LEN, "the input is too large for the protocol");
        match exchange(&mut self.transport, &make(encapped_key, sealed_input))? {
            ServiceReply::Result { encapped_key: result_encapped, sealed_output } => {
                let opened = reply_key
                    .open(&result_encapped, &sealed_output, RESULT_INFO, &encapped_key)
                    .map_err(|_| anyhow::anyhow!("the result did not open with this request's reply key"))?;
                let values = decode_values(&opened).map_err(|e| anyhow::anyhow!("malformed result: {e}"))?;
                Ok(Ok(Zeroizing::new(values)))
            }
            ServiceReply::Error { code } => Ok(Err(code)),
            other => bail!("the guest answered a sealed request with {other:?}"),
        }
    }

    /// One request in the session: sealed as the next record, its reply opened as the next reply record. Anything
    /// else (a refusal, a reply that does not open) ends the session.
    fn session_request(&mut self, request: SessionRequest) -> Result<Inference> {
        let plaintext = Zeroizing::new(request.encode().map_err(|e| anyhow::anyhow!("input too large: {e}"))?);
        // The input's copy is erased as it goes.
        match request {
            SessionRequest::Infer(values) => drop(Zeroizing::new(values)),
            SessionRequest::Embed(token_ids) => drop(Zeroizing::new(token_ids)),
        }
        let session = self.session.as_mut().context("no session")?;
        let (number, record) = session.seal_next(&plaintext).map_err(|e| anyhow::anyhow!("sealing: {e:?}"))?;
        let reply = exchange(&mut self.transport, &ServiceRequest::SessionRecord { number, record });
        let outcome = match reply {
            Ok(ServiceReply::SessionReply { number, record }) => session
                .open_next(number, &record)
                .map_err(|e| anyhow::anyhow!("the guest's reply record was refused: {e:?}"))
                .and_then(|opened| decode_reply(&opened).map_err(|e| anyhow::anyhow!("malformed reply: {e}"))),
            Ok(ServiceReply::Error { code }) => Err(anyhow::anyhow!("the guest ended the session: {}", code.as_str())),
            Ok(other) => Err(anyhow::anyhow!("the guest answered a session record with {other:?}")),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(reply) => Ok(reply.map(Zeroizing::new)),
            Err(e) => {
                self.session = None;
                Err(e)
            }
        }
    }

    /// Health: (attested, model loaded).
    pub fn health(&mut self) -> Result<(bool, bool)> {
        match exchange(&mut self.transport, &ServiceRequest::Health)? {
            ServiceReply::HealthIs { attested, model_loaded } => Ok((attested, model_loaded)),
            other => bail!("the guest answered health with {other:?}"),
        }
    }

    /// Sends a raw frame body and returns the reply (tests send malformed requests with it).
    pub fn raw(&mut self, body: &[u8]) -> Result<ServiceReply> {
        self.transport.send(body).map_err(|e| anyhow::anyhow!("sending: {e}"))?;
        receive(&mut self.transport)
    }
}

/// The first attempt's wait in [`connect_with_retries`]; each retry doubles it up to [`MAX_CONNECT_ATTEMPT`].
const FIRST_CONNECT_ATTEMPT: Duration = Duration::from_millis(100);
/// The longest single attempt in [`connect_with_retries`].
const MAX_CONNECT_ATTEMPT: Duration = Duration::from_secs(1);

/// Connects to `addr` within `timeout`, retrying with short attempts. QEMU's host forward (`hostfwd`) listens with a
/// backlog of 1: under concurrency the host's kernel drops the extra SYNs, and its own retransmission would come
/// only a second later; a fresh attempt after 100 ms (doubling to 1 s) gets through as soon as the forward has
/// accepted the connection ahead of it. A refused connection is retried too, until the deadline.
pub fn connect_with_retries(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let deadline = std::time::Instant::now() + timeout;
    let mut attempt = FIRST_CONNECT_ATTEMPT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let wait = attempt.min(left).max(Duration::from_millis(1));
        match TcpStream::connect_timeout(&addr, wait) {
            Ok(stream) => return Ok(stream),
            Err(e) if std::time::Instant::now() >= deadline => return Err(e),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                std::thread::sleep((attempt / 2).min(deadline.saturating_duration_since(std::time::Instant::now())));
            }
            Err(_) => {}
        }
        attempt = (attempt * 2).min(MAX_CONNECT_ATTEMPT);
    }
}

fn exchange(transport: &mut StreamTransport<TcpStream>, request: &ServiceRequest) -> Result<ServiceReply> {
    let body = request.encode().map_err(|e| anyhow::anyhow!("encoding the request: {e}"))?;
    transport.send(&body).map_err(|e| anyhow::anyhow!("sending: {e}"))?;
    receive(transport)
}

fn receive(transport: &mut StreamTransport<TcpStream>) -> Result<ServiceReply> {
    let body = transport.recv(MAX_REPLY_LEN).map_err(|e| anyhow::anyhow!("receiving: {e}"))?;
    ServiceReply::decode(&body).map_err(|e| anyhow::anyhow!("the guest's reply is malformed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connecting_retries_until_a_listener_appears_and_gives_up_at_the_deadline() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = std::time::Instant::now();
        assert!(connect_with_retries(addr, Duration::from_millis(300)).is_err());
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(250), "gave up after {waited:?}, before its deadline");
        let listening = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            let listener = std::net::TcpListener::bind(addr).unwrap();
            listener.accept().map(drop)
        });
        assert!(connect_with_retries(addr, Duration::from_secs(5)).is_ok());
        listening.join().unwrap().unwrap();
    }
}
