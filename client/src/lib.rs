//! `ampoule-client`'s library: talk to a serving guest the way DESIGN.md §5 says a client must.
//!
//! 1. [`GuestClient::connect`] asks for evidence bound to a fresh nonce and checks it with the broker's own
//!    [`Policy`] code (same verifiers, same allowlist format) before anything else is sent;
//! 2. [`GuestClient::infer`] seals the input (HPKE) to the per-boot service key that evidence vouched for, with a
//!    fresh reply key, and opens the result sealed back to it;
//! 3. [`GuestClient::health`] asks the two facts health tells.

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
    INFER_INFO, InferInput, MAX_SEALED_LEN, RESULT_INFO, ServiceErrorCode, ServiceReply, ServiceRequest, decode_values,
};
use zeroize::Zeroizing;

/// The largest reply accepted: an `EvidenceIs` with the largest evidence.
const MAX_REPLY_LEN: usize = protocol::frame::MAX_FRAME_LEN;

/// A connection to a guest whose evidence passed the policy.
pub struct GuestClient {
    transport: StreamTransport<TcpStream>,
    service_key: PublicKey,
    verified: Verified,
}

/// An inference's outcome: the output values, or the guest's reason for refusing the input.
pub type Inference = std::result::Result<Zeroizing<Vec<f32>>, ServiceErrorCode>;

fn rng() -> UnwrapErr<SysRng> {
    UnwrapErr(SysRng)
}

impl GuestClient {
    /// Connects to `guest`, asks for evidence bound to a fresh nonce, and checks it against `policy`.
    pub fn connect(guest: SocketAddr, policy: &Policy, timeout: Duration) -> Result<GuestClient> {
        let stream = TcpStream::connect_timeout(&guest, timeout).with_context(|| format!("connecting to {guest}"))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let mut transport = StreamTransport(stream);
        let mut client_nonce = [0u8; 32];
        getrandom::fill(&mut client_nonce).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let reply = exchange(&mut transport, &ServiceRequest::Evidence { client_nonce })?;
        let ServiceReply::EvidenceIs { tee, service_public_key, evidence } = reply else {
            bail!("the guest answered the evidence request with {reply:?}");
        };
        let expected = service_report_data(&client_nonce, &service_public_key);
        let (verified, _) = policy
            .check(tee, &evidence, &expected)
            .map_err(|code| anyhow::anyhow!("the guest's evidence fails the policy: {}", code.as_str()))?;
        Ok(GuestClient { transport, service_key: service_public_key, verified })
    }

    /// What the evidence said (TEE, measurement).
    pub fn verified(&self) -> &Verified {
        &self.verified
    }

    /// One inference on `values`.
    pub fn infer(&mut self, values: &[f32]) -> Result<Inference> {
        let reply_key = EphemeralKeyPair::generate(&mut rng());
        let input = InferInput { reply_public_key: reply_key.public_key(), values: values.to_vec() };
        let plaintext = Zeroizing::new(input.encode().map_err(|e| anyhow::anyhow!("input too large: {e}"))?);
        drop(Zeroizing::new(input.values));
        let (encapped_key, sealed_input) = seal(&self.service_key, &plaintext, INFER_INFO, &[], &mut rng())
            .map_err(|_| anyhow::anyhow!("sealing the input failed"))?;
        anyhow::ensure!(sealed_input.len() <= MAX_SEALED_LEN, "the input is too large for the protocol");
        match exchange(&mut self.transport, &ServiceRequest::Infer { encapped_key, sealed_input })? {
            ServiceReply::Result { encapped_key: result_encapped, sealed_output } => {
                let opened = reply_key
                    .open(&result_encapped, &sealed_output, RESULT_INFO, &encapped_key)
                    .map_err(|_| anyhow::anyhow!("the result did not open with this request's reply key"))?;
                let values = decode_values(&opened).map_err(|e| anyhow::anyhow!("malformed result: {e}"))?;
                Ok(Ok(Zeroizing::new(values)))
            }
            ServiceReply::Error { code } => Ok(Err(code)),
            other => bail!("the guest answered an inference with {other:?}"),
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

fn exchange(transport: &mut StreamTransport<TcpStream>, request: &ServiceRequest) -> Result<ServiceReply> {
    let body = request.encode().map_err(|e| anyhow::anyhow!("encoding the request: {e}"))?;
    transport.send(&body).map_err(|e| anyhow::anyhow!("sending: {e}"))?;
    receive(transport)
}

fn receive(transport: &mut StreamTransport<TcpStream>) -> Result<ServiceReply> {
    let body = transport.recv(MAX_REPLY_LEN).map_err(|e| anyhow::anyhow!("receiving: {e}"))?;
    ServiceReply::decode(&body).map_err(|e| anyhow::anyhow!("the guest's reply is malformed: {e}"))
}
