//! The broker's operations listener (`metrics_listen` in the configuration; keep it on loopback): `GET /metrics`
//! (Prometheus, [`crate::metrics`]) and `GET /healthz` (200 while the broker can audit a decision, 503 when its
//! registry does not answer). It is separate from the guests' port, so that a scraper never competes with guests.
//!
//! Bounds, since anything that reaches the port may be hostile ([`crate::http_server`]): at most
//! [`MAX_CONNECTIONS`] at once, request headers within [`HEADER_DEADLINE`], each connection closed after
//! [`CONNECTION_DEADLINE`], request bodies never read, replies small.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::watch;

use crate::Broker;
use crate::http_server::HttpLimits;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// How long a request's headers may take to arrive.
pub const HEADER_DEADLINE: Duration = Duration::from_secs(5);
/// How long a connection may last.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// How long `/healthz` waits for the registry's answer.
pub const HEALTH_DEADLINE: Duration = Duration::from_secs(2);

/// The running listener.
pub struct MetricsEndpoint {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsEndpoint {
    /// Binds `listen` and serves `broker`'s metrics and health there on a thread of its own.
    pub fn start(broker: Arc<Broker>, listen: &str) -> Result<MetricsEndpoint> {
        let listener = TcpListener::bind(listen).with_context(|| format!("binding the metrics listener {listen}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new().name("metrics".into()).spawn(move || {
            runtime.block_on(serve(broker, listener, stopped));
        })?;
        Ok(MetricsEndpoint { addr, stop, thread: Some(thread) })
    }

    /// Stops serving.
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The listener's bounds.
pub const LIMITS: HttpLimits = HttpLimits {
    max_connections: MAX_CONNECTIONS,
    header_deadline: HEADER_DEADLINE,
    connection_deadline: CONNECTION_DEADLINE,
};

async fn serve(broker: Arc<Broker>, listener: TcpListener, stopped: watch::Receiver<bool>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    let checking = Arc::new(AtomicBool::new(false));
    let service = hyper::service::service_fn(move |request| {
        let (broker, checking) = (broker.clone(), checking.clone());
        async move { Ok::<_, std::convert::Infallible>(answer(broker, &checking, &request).await) }
    });
    crate::http_server::serve(listener, service, LIMITS, stopped).await;
}

async fn answer(broker: Arc<Broker>, checking: &Arc<AtomicBool>, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            broker.stats.metrics.render(),
        ),
        (&Method::GET, "/healthz") => match health(broker, checking).await {
            Ok(()) => reply(StatusCode::OK, TEXT, "ok\n".into()),
            Err(why) => reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("unhealthy: {why}\n")),
        },
        (_, "/metrics" | "/healthz") => reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "GET only\n".into()),
        _ => reply(StatusCode::NOT_FOUND, TEXT, "not found: /metrics, /healthz\n".into()),
    }
}

/// Asks the registry whether it answers, on a thread of its own (its client may block, and may not run inside this
/// runtime), one question at a time, within [`HEALTH_DEADLINE`].
async fn health(broker: Arc<Broker>, checking: &Arc<AtomicBool>) -> Result<(), &'static str> {
    if checking.swap(true, Ordering::SeqCst) {
        return Err("an earlier health check still waits for the registry");
    }
    let (answer, answered) = tokio::sync::oneshot::channel();
    let done = checking.clone();
    let spawned = std::thread::Builder::new().name("health".into()).spawn(move || {
        let _ = answer.send(broker.healthy());
        done.store(false, Ordering::SeqCst);
    });
    if spawned.is_err() {
        checking.store(false, Ordering::SeqCst);
        return Err("no thread for the check");
    }
    match tokio::time::timeout(HEALTH_DEADLINE, answered).await {
        Ok(Ok(result)) => result,
        _ => Err("the registry did not answer in time"),
    }
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
