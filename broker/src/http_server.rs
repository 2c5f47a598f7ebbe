//! A bounded HTTP/1.1 accept loop (hyper), shared by the broker's operations listener and `ampoule-client
//! gateway`. Anything that reaches its port may be hostile, so: at most [`HttpLimits::max_connections`] at once (a
//! newcomer beyond is closed at once), request headers within [`HttpLimits::header_deadline`], every connection
//! closed after [`HttpLimits::connection_deadline`] however it behaves, and a request buffer of 16 KiB. Bodies are
//! the service's to bound.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Semaphore, watch};

/// The bounds of one listener.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a request's headers may take to arrive.
    pub header_deadline: Duration,
    /// How long a connection may last.
    pub connection_deadline: Duration,
}

/// The largest request head hyper buffers.
const MAX_BUF_SIZE: usize = 16 * 1024;

/// Serves `service` on `listener` within `limits` until `stopped` changes.
pub async fn serve<S, B>(
    listener: tokio::net::TcpListener,
    service: S,
    limits: HttpLimits,
    mut stopped: watch::Receiver<bool>,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => return,
        };
        let Ok((stream, _)) = accepted else {
            // Out of descriptors or similar: pause rather than spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        // At the cap the newcomer is closed: it may retry, and nobody holds the listener's resources.
        let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
        let service = service.clone();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_deadline)
                .max_buf_size(MAX_BUF_SIZE)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(limits.connection_deadline, connection).await;
            drop(slot);
        });
    }
}
