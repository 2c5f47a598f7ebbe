//! The TCP front: a blocking accept loop and one thread per connection, up to `max_connections`. Setting the
//! shutdown flag and then connecting once (see [`wake`]) ends the loop.
//!
//! Deadlines are on whole messages and whole sessions, not on single reads: a client that sends one byte every few
//! seconds still meets `message_timeout_ms` for the message and `session_timeout_ms` for the connection
//! ([`DeadlineStream`]). At the cap, a newcomer evicts the connection that has waited longest for a message it has
//! not finished sending (a slow or idle client); connections busy with a decision are never evicted. If all are busy,
//! the newcomer is closed at once. Evictions and refusals are counted and logged at most once a second.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Broker;
use crate::log::{Level, Value};
use crate::session::MessageWatch;

/// How often the capacity record may be written under a flood.
const CAPACITY_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Accepts and serves connections on `listener` until `shutdown` is set (and the loop woken).
pub fn serve(broker: Arc<Broker>, listener: TcpListener, shutdown: Arc<AtomicBool>) -> std::io::Result<()> {
    let table = Arc::new(ConnectionTable::new());
    let mut capacity_log = CapacityLog::default();
    let mut next_id = 0u64;
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
        if table.len() >= broker.config.max_connections {
            if table.evict_longest_waiting() {
                broker.stats.count_capacity(true);
                capacity_log.evicted += 1;
            } else {
                // Every connection is busy deciding: close at once; the client sees the connection end and may retry.
                drop(stream);
                broker.stats.count_capacity(false);
                capacity_log.refused += 1;
                capacity_log.flush(&broker);
                continue;
            }
        }
        capacity_log.flush(&broker);
        let Ok(handle) = stream.try_clone() else { continue };
        next_id += 1;
        let watch = table.insert(next_id, handle);
        let (serving, table_of_thread, id) = (broker.clone(), table.clone(), next_id);
        let spawned = std::thread::Builder::new().name(format!("connection-{id}")).spawn(move || {
            let mut stream = DeadlineStream::new(stream, watch.clone(), &serving.config);
            if stream.configure().is_ok() {
                serving.serve_watched(&mut stream, &peer.to_string(), &*watch);
            }
            table_of_thread.remove(id);
        });
        if let Err(e) = spawned {
            // Out of threads or memory: this connection is dropped (its stream went with the closure), the loop
            // goes on.
            table.remove(id);
            broker.log(Level::Warn, "no thread for a connection", &[("error", Value::Str(&e.to_string()))]);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Wakes a `serve` loop blocked in `accept` on `addr` (after its shutdown flag was set).
pub fn wake(addr: std::net::SocketAddr) {
    let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
}

/// Evictions and refusals at the cap since the last record.
#[derive(Default)]
struct CapacityLog {
    evicted: u64,
    refused: u64,
    last: Option<Instant>,
}

impl CapacityLog {
    /// Writes one record of what happened since the last, unless one was written less than a second ago.
    fn flush(&mut self, broker: &Broker) {
        if self.evicted + self.refused == 0 {
            return;
        }
        if self.last.is_some_and(|at| at.elapsed() < CAPACITY_LOG_INTERVAL) {
            return;
        }
        let totals = broker.stats.capacity();
        broker.log(
            Level::Warn,
            "at connection capacity",
            &[
                ("max_connections", Value::U64(broker.config.max_connections as u64)),
                ("evicted", Value::U64(self.evicted)),
                ("refused", Value::U64(self.refused)),
                ("evicted_total", Value::U64(totals.0)),
                ("refused_total", Value::U64(totals.1)),
            ],
        );
        (self.evicted, self.refused, self.last) = (0, 0, Some(Instant::now()));
    }
}

/// When a connection started waiting for its current message (`u64::MAX`: not waiting, busy deciding), in
/// milliseconds since the table's epoch.
pub struct ConnectionWatch {
    epoch: Instant,
    waiting_since_ms: AtomicU64,
}

const NOT_WAITING: u64 = u64::MAX;

impl ConnectionWatch {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn waiting_since(&self) -> Option<u64> {
        Some(self.waiting_since_ms.load(Ordering::SeqCst)).filter(|&t| t != NOT_WAITING)
    }
}

impl MessageWatch for ConnectionWatch {
    fn awaiting_message(&self) {
        self.waiting_since_ms.store(self.now_ms(), Ordering::SeqCst);
    }

    fn message_arrived(&self) {
        self.waiting_since_ms.store(NOT_WAITING, Ordering::SeqCst);
    }
}

/// The live connections: a handle to shut each down (eviction) and its watch.
struct ConnectionTable {
    /// The one time base of every watch, so that their waits compare.
    epoch: Instant,
    live: Mutex<HashMap<u64, (TcpStream, Arc<ConnectionWatch>)>>,
}

impl ConnectionTable {
    fn new() -> ConnectionTable {
        ConnectionTable { epoch: Instant::now(), live: Mutex::new(HashMap::new()) }
    }

    fn len(&self) -> usize {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn insert(&self, id: u64, handle: TcpStream) -> Arc<ConnectionWatch> {
        // Waiting for its first message from the moment it is accepted: evictable until the Hello arrives.
        let accepted_ms = self.epoch.elapsed().as_millis() as u64;
        let watch = Arc::new(ConnectionWatch { epoch: self.epoch, waiting_since_ms: AtomicU64::new(accepted_ms) });
        self.live.lock().unwrap_or_else(|e| e.into_inner()).insert(id, (handle, watch.clone()));
        watch
    }

    fn remove(&self, id: u64) {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    /// Shuts down the connection that has waited longest for a message (its thread then ends at its next read);
    /// false if every connection is busy deciding.
    fn evict_longest_waiting(&self) -> bool {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let victim = live.iter().filter_map(|(id, (_, w))| Some((*id, w.waiting_since()?))).min_by_key(|&(_, t)| t);
        let Some((id, _)) = victim else { return false };
        if let Some((handle, _)) = live.remove(&id) {
            let _ = handle.shutdown(Shutdown::Both);
        }
        true
    }
}

/// A TCP stream whose reads end at the current message's deadline or the session's, whichever is first, and
/// whose writes end at the message deadline: each read or write gets only the time that remains.
pub struct DeadlineStream {
    stream: TcpStream,
    watch: Arc<ConnectionWatch>,
    message_timeout: Duration,
    session_deadline: Instant,
}

impl DeadlineStream {
    fn new(stream: TcpStream, watch: Arc<ConnectionWatch>, config: &crate::config::Config) -> DeadlineStream {
        DeadlineStream {
            stream,
            watch,
            message_timeout: Duration::from_millis(config.message_timeout_ms),
            session_deadline: Instant::now() + Duration::from_millis(config.session_timeout_ms),
        }
    }

    fn configure(&self) -> std::io::Result<()> {
        self.stream.set_nonblocking(false)?;
        self.stream.set_nodelay(true)
    }

    /// The time left before the first deadline, or a `TimedOut` error if none is left.
    fn remaining(&self) -> std::io::Result<Duration> {
        let now = Instant::now();
        let message_deadline = match self.watch.waiting_since() {
            Some(since) => self.watch.epoch + Duration::from_millis(since) + self.message_timeout,
            None => now + self.message_timeout,
        };
        let left = message_deadline.min(self.session_deadline).saturating_duration_since(now);
        if left.is_zero() {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "deadline passed"));
        }
        Ok(left)
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stream.set_read_timeout(Some(self.remaining()?))?;
        self.stream.read(buf)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.set_write_timeout(Some(self.remaining()?))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}
