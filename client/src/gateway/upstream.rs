//! The gateway's connection to the guest: verified before anything is forwarded, verified again on every
//! reconnection, and replaced by a freshly verified one once it is older than the re-verification interval, so that
//! no request travels over a session verified longer ago than that.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use broker::policy::Policy;
use broker::verify::Verified;

use crate::{EvidenceRefused, GuestClient, Inference};

/// Why nothing was forwarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamError {
    /// The guest's evidence failed the policy (the policy's refusal code, or what was wrong with the evidence).
    AttestationFailed(String),
    /// The guest could not be reached, or the connection broke.
    Unreachable(String),
}

impl UpstreamError {
    /// The machine-readable reason's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::AttestationFailed(_) => "attestation_failed",
            UpstreamError::Unreachable(_) => "guest_unreachable",
        }
    }

    /// The detail.
    pub fn detail(&self) -> &str {
        match self {
            UpstreamError::AttestationFailed(detail) | UpstreamError::Unreachable(detail) => detail,
        }
    }
}

/// What was verified, and when.
#[derive(Clone, Debug)]
pub struct Attestation {
    /// The evidence's facts.
    pub verified: Verified,
    /// When (wall clock), for `GET /v1/attestation`.
    pub at: SystemTime,
}

struct Session {
    client: GuestClient,
    attestation: Attestation,
    since: Instant,
}

/// The guest behind the gateway.
pub struct Upstream {
    guest: SocketAddr,
    policy: Policy,
    reverify: Duration,
    timeout: Duration,
    session: Mutex<Option<Session>>,
}

impl Upstream {
    /// The guest at `guest`, verified against `policy`, again every `reverify`; each exchange within `timeout`.
    pub fn new(guest: SocketAddr, policy: Policy, reverify: Duration, timeout: Duration) -> Upstream {
        Upstream { guest, policy, reverify, timeout, session: Mutex::new(None) }
    }

    /// The current attestation: verifying (again) first when there is no session or it is due.
    pub fn attestation(&self) -> Result<Attestation, UpstreamError> {
        self.with_session(|_| Ok(())).map(|((), attestation)| attestation)
    }

    /// One inference on `values` over a verified session.
    pub fn infer(&self, values: &[f32]) -> Result<(Inference, Attestation), UpstreamError> {
        self.with_session(|client| client.infer(values))
    }

    /// One embedding of `token_ids` over a verified session.
    pub fn embed(&self, token_ids: &[u32]) -> Result<(Inference, Attestation), UpstreamError> {
        self.with_session(|client| client.embed(token_ids))
    }

    /// Runs `exchange` on a verified session. A broken connection is dropped and the exchange tried once more on a
    /// new one (verified first): inference has no side effects to repeat.
    fn with_session<T>(
        &self,
        mut exchange: impl FnMut(&mut GuestClient) -> anyhow::Result<T>,
    ) -> Result<(T, Attestation), UpstreamError> {
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        for attempt in 0..2 {
            if session.as_ref().is_none_or(|s| s.since.elapsed() >= self.reverify) {
                *session = None;
                *session = Some(self.connect()?);
            }
            let current = session.as_mut().expect("connected above");
            match exchange(&mut current.client) {
                Ok(value) => return Ok((value, current.attestation.clone())),
                Err(e) => {
                    *session = None;
                    if attempt == 1 {
                        return Err(UpstreamError::Unreachable(format!("{e:#}")));
                    }
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    fn connect(&self) -> Result<Session, UpstreamError> {
        match GuestClient::connect(self.guest, &self.policy, self.timeout) {
            Ok(mut client) => {
                // Every forwarded request travels in the connection's attested session.
                client.open_session().map_err(|e| UpstreamError::Unreachable(format!("{e:#}")))?;
                let attestation = Attestation { verified: client.verified().clone(), at: SystemTime::now() };
                Ok(Session { client, attestation, since: Instant::now() })
            }
            Err(e) => match e.downcast_ref::<EvidenceRefused>() {
                Some(EvidenceRefused(code)) => Err(UpstreamError::AttestationFailed((*code).to_string())),
                None => Err(UpstreamError::Unreachable(format!("{e:#}"))),
            },
        }
    }
}
