//! The TCP front: a blocking accept loop, one thread per connection up to `max_connections`, read and write
//! timeouts on each. Setting the shutdown flag and then connecting once (see [`wake`]) ends the loop.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::Broker;
use crate::log::{Level, Value};

/// Accepts and serves connections on `listener` until `shutdown` is set (and the loop woken).
pub fn serve(broker: Arc<Broker>, listener: TcpListener, shutdown: Arc<AtomicBool>) -> std::io::Result<()> {
    let active = Arc::new(AtomicUsize::new(0));
    let timeout = Duration::from_millis(broker.config.read_timeout_ms);
    loop {
        let accepted = listener.accept();
        if shutdown.load(Ordering::SeqCst) {
            return Ok(());
        }
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors or similar: pause rather than spin and flood the log.
                broker.log(Level::Warn, "accept failed", &[("error", Value::Str(&e.to_string()))]);
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.load(Ordering::SeqCst) >= broker.config.max_connections {
            // Over the limit: close at once; the client sees the connection end and may retry.
            drop(stream);
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let (broker, active) = (broker.clone(), active.clone());
        std::thread::spawn(move || {
            if configure(&stream, timeout).is_ok() {
                let mut stream = stream;
                broker.serve_connection(&mut stream, &peer.to_string());
            }
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Wakes a `serve` loop blocked in `accept` on `addr` (after its shutdown flag was set).
pub fn wake(addr: std::net::SocketAddr) {
    let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
}

fn configure(stream: &TcpStream, timeout: Duration) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)
}
