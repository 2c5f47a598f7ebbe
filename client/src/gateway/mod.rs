//! `ampoule-client gateway`: a local REST gateway in front of one guest, for services that speak HTTP and JSON
//! rather than Ampoule's sealed protocol. It forwards nothing until the guest's evidence has passed the policy
//! ([`upstream`]), verifies again on every reconnection and at least every re-verification interval, and answers
//! 503 with a machine-readable reason whenever it cannot vouch for the guest. Between the gateway and the guest
//! every input and output is sealed as `ampoule-client` seals it; between its callers and the gateway it is plain
//! JSON, so the gateway belongs on the caller's machine (it listens on loopback unless told otherwise).
//!
//! Routes ([`routes`], described by `client/openapi.json`): `POST /v1/infer`, `POST /v1/embed`,
//! `GET /v1/attestation`, `GET /healthz`, `GET /readyz`, `GET /metrics`, `GET /openapi.json`.

pub mod metrics;
pub mod routes;
pub mod upstream;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use broker::http_server::HttpLimits;
use broker::policy::Policy;
use inference::ServedModel;
use tokio::sync::watch;

use crate::tokenizer::SentenceTokenizer;

/// The HTTP listener's bounds: callers are local services, but the port may be reached by anything local.
pub const LIMITS: HttpLimits = HttpLimits {
    max_connections: 64,
    header_deadline: Duration::from_secs(5),
    connection_deadline: Duration::from_secs(120),
};
/// The largest request body.
pub const MAX_BODY_LEN: usize = 256 * 1024;
/// The most inputs one request may carry.
pub const MAX_BATCH: usize = 64;

/// What the gateway serves, and how.
pub struct GatewayConfig {
    /// The guest's service address.
    pub guest: SocketAddr,
    /// What its evidence must pass.
    pub policy: Policy,
    /// The model it serves.
    pub model: &'static ServedModel,
    /// The model's tokenizer, for a model that reads token ids (`POST /v1/embed`).
    pub tokenizer: Option<SentenceTokenizer>,
    /// Verify the guest again at least this often.
    pub reverify: Duration,
    /// Each exchange with the guest within this.
    pub timeout: Duration,
}

/// A gateway serving on a loopback port until stopped.
pub struct Gateway {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Gateway {
    /// Binds `listen` and serves `config` there, on a thread of its own.
    pub fn start(config: GatewayConfig, listen: &str) -> Result<Gateway> {
        let listener = TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let (stop, stopped) = watch::channel(false);
        let state = Arc::new(routes::GatewayState::new(config));
        let thread = std::thread::Builder::new().name("gateway".into()).spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                let service = hyper_util::service::TowerToHyperService::new(routes::router(state));
                broker::http_server::serve(listener, service, LIMITS, stopped).await;
            });
        })?;
        Ok(Gateway { addr, stop, thread: Some(thread) })
    }

    /// Serves until the process ends.
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Stops serving.
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
