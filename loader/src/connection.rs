//! One client connection of the guest's service, as bytes and milliseconds: what it has received, what it owes
//! the client, and whether it has overstayed. The kernel moves the bytes between this and a TCP socket; everything
//! that decides when to read, answer, wait or close is here, where host tests can drive it.
//!
//! Every buffer has a bound and every wait a deadline ([`ServiceLimits`], the one place they are named):
//! - the inbox holds at most one frame: the largest request and its header;
//! - the outbox holds at most one reply: the next request is not even looked at until the previous reply has gone
//!   into the socket (a client that never reads stops being read, and its socket's window closes);
//! - a request must arrive whole within [`ServiceLimits::request_deadline_ms`] of its first byte (slow writers);
//! - a waiting reply must make progress within [`ServiceLimits::send_deadline_ms`] (clients that never read);
//! - a connection with nothing in flight is closed after [`ServiceLimits::idle_timeout_ms`] (idle holders);
//! - at the connection cap, the connection that made progress least recently is evicted so that a newcomer
//!   always finds a free slot ([`Connection::last_progress_ms`]).

use alloc::vec::Vec;

use protocol::frame::{FrameError, HEADER_LEN, body_len, frame};
use protocol::service::MAX_SEALED_LEN;

/// The service's limits: every bound and deadline that outside input meets, in one place (the README lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceLimits {
    /// Connections served at once; one more slot always listens so that a newcomer can evict.
    pub connections: usize,
    /// The largest request body.
    pub max_request_len: usize,
    /// From a request's first byte to its last.
    pub request_deadline_ms: u64,
    /// How long a waiting reply may make no progress.
    pub send_deadline_ms: u64,
    /// How long a connection may hold a slot with nothing in flight.
    pub idle_timeout_ms: u64,
    /// How long a closing socket (FIN sent, waiting for the peer) may hold its slot.
    pub close_grace_ms: u64,
}

/// The limits the guest serves with.
pub const SERVICE_LIMITS: ServiceLimits = ServiceLimits {
    connections: 8,
    // An `Infer` with the most sealed input the protocol allows: type, encapsulated key, length, ciphertext.
    max_request_len: 1 + 32 + 4 + MAX_SEALED_LEN,
    request_deadline_ms: 5_000,
    send_deadline_ms: 5_000,
    idle_timeout_ms: 15_000,
    close_grace_ms: 1_000,
};

/// Why a connection ended. Stable names: records and tests match on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed its side and everything owed was sent.
    PeerClosed,
    /// The client reset the connection.
    PeerReset,
    /// The client sent an empty frame or announced one over the limit (its body cannot be skipped safely).
    BadFrame,
    /// A request did not arrive whole within the request deadline.
    RequestDeadline,
    /// A reply made no progress within the send deadline: the client does not read.
    SendStalled,
    /// Nothing in flight for the idle timeout.
    Idle,
    /// Another client needed the slot, and this connection had made progress least recently.
    Evicted,
    /// The closing handshake did not finish within the close grace.
    CloseTimedOut,
}

impl CloseReason {
    /// A stable name for records.
    pub const fn as_str(self) -> &'static str {
        match self {
            CloseReason::PeerClosed => "peer-closed",
            CloseReason::PeerReset => "peer-reset",
            CloseReason::BadFrame => "bad-frame",
            CloseReason::RequestDeadline => "request-deadline",
            CloseReason::SendStalled => "send-stalled",
            CloseReason::Idle => "idle",
            CloseReason::Evicted => "evicted",
            CloseReason::CloseTimedOut => "close-timed-out",
        }
    }

    /// Whether the connection should be reset rather than closed politely: the client misbehaved, and waiting
    /// for its side of a closing handshake would hand it the slot again.
    pub const fn resets(self) -> bool {
        !matches!(self, CloseReason::PeerClosed | CloseReason::BadFrame | CloseReason::Idle)
    }
}

/// What the connection has for the service next.
#[derive(Debug, PartialEq, Eq)]
pub enum NextRequest<'a> {
    /// Nothing yet: an incomplete frame, a reply still waiting, or the connection is closing.
    Nothing,
    /// One whole request body.
    Request(&'a [u8]),
    /// A frame header that can never become a request: answer with an error and close.
    BadFrame(FrameError),
}

/// One connection's buffers and clocks.
#[derive(Debug)]
pub struct Connection {
    limits: ServiceLimits,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    closing: bool,
    opened_ms: u64,
    last_progress_ms: u64,
    request_started_ms: Option<u64>,
    send_waiting_since_ms: Option<u64>,
    requests: u64,
}

impl Connection {
    /// A connection accepted at `now_ms`.
    pub fn new(limits: ServiceLimits, now_ms: u64) -> Connection {
        Connection {
            limits,
            inbox: Vec::new(),
            outbox: Vec::new(),
            closing: false,
            opened_ms: now_ms,
            last_progress_ms: now_ms,
            request_started_ms: None,
            send_waiting_since_ms: None,
            requests: 0,
        }
    }

    fn frame_limit(&self) -> usize {
        HEADER_LEN + self.limits.max_request_len
    }

    /// How many bytes may be taken from the socket now: none while a reply waits or after a bad frame, otherwise
    /// what the inbox has room for (never more than one frame).
    pub fn receive_room(&self) -> usize {
        if self.closing || !self.outbox.is_empty() {
            return 0;
        }
        self.frame_limit().saturating_sub(self.inbox.len())
    }

    /// Takes bytes the client sent (at most [`Connection::receive_room`]; the rest is left for later).
    /// Returns how many were taken.
    pub fn receive(&mut self, bytes: &[u8], now_ms: u64) -> usize {
        let take = bytes.len().min(self.receive_room());
        if take > 0 && self.inbox.is_empty() {
            self.request_started_ms = Some(now_ms);
        }
        self.inbox.extend_from_slice(&bytes[..take]);
        take
    }

    /// The next whole request, if one is ready and nothing is owed to the client.
    pub fn next_request(&self) -> NextRequest<'_> {
        if self.closing || !self.outbox.is_empty() || self.inbox.len() < HEADER_LEN {
            return NextRequest::Nothing;
        }
        let header = [self.inbox[0], self.inbox[1], self.inbox[2], self.inbox[3]];
        match body_len(header, self.limits.max_request_len) {
            Err(e) => NextRequest::BadFrame(e),
            Ok(len) => match self.inbox.get(HEADER_LEN..HEADER_LEN + len) {
                Some(body) => NextRequest::Request(body),
                None => NextRequest::Nothing,
            },
        }
    }

    /// Consumes the request [`Connection::next_request`] returned and owes the client `reply` (a body).
    pub fn answer(&mut self, reply: &[u8], now_ms: u64) {
        if let NextRequest::Request(body) = self.next_request() {
            let consumed = HEADER_LEN + body.len();
            self.inbox.drain(..consumed);
            self.requests += 1;
            self.request_started_ms = (!self.inbox.is_empty()).then_some(now_ms);
            self.last_progress_ms = now_ms;
            self.owe(reply, now_ms);
        }
    }

    /// Answers a bad frame with `reply` and closes once it is sent; nothing more is read.
    pub fn refuse_frame(&mut self, reply: &[u8], now_ms: u64) {
        self.inbox.clear();
        self.request_started_ms = None;
        self.owe(reply, now_ms);
        self.closing = true;
    }

    fn owe(&mut self, reply: &[u8], now_ms: u64) {
        // A reply body is at most one frame and never empty (the service's replies are), so framing cannot fail;
        // if it ever did, the client gets nothing rather than a broken frame.
        if let Ok(framed) = frame(reply) {
            self.outbox.extend_from_slice(&framed);
            self.send_waiting_since_ms = Some(now_ms);
        }
    }

    /// What is owed to the client, to be written to the socket.
    pub fn outbox(&self) -> &[u8] {
        &self.outbox
    }

    /// Records that the socket took `n` bytes of the outbox.
    pub fn sent(&mut self, n: usize, now_ms: u64) {
        if n == 0 {
            return;
        }
        self.outbox.drain(..n.min(self.outbox.len()));
        self.send_waiting_since_ms = (!self.outbox.is_empty()).then_some(now_ms);
        if self.outbox.is_empty() {
            self.last_progress_ms = now_ms;
        }
    }

    /// Whether everything owed is sent and the connection should now close (after a bad frame).
    pub fn finished(&self) -> bool {
        self.closing && self.outbox.is_empty()
    }

    /// Whether nothing is in flight: no partial request, nothing owed.
    pub fn is_idle(&self) -> bool {
        self.inbox.is_empty() && self.outbox.is_empty()
    }

    /// The deadline this connection has passed at `now_ms`, if any.
    pub fn overdue(&self, now_ms: u64) -> Option<CloseReason> {
        let past = |since: u64, limit: u64| now_ms.saturating_sub(since) > limit;
        if let Some(since) = self.send_waiting_since_ms
            && past(since, self.limits.send_deadline_ms)
        {
            return Some(CloseReason::SendStalled);
        }
        if let Some(since) = self.request_started_ms
            && past(since, self.limits.request_deadline_ms)
        {
            return Some(CloseReason::RequestDeadline);
        }
        if self.is_idle() && past(self.last_progress_ms, self.limits.idle_timeout_ms) {
            return Some(CloseReason::Idle);
        }
        None
    }

    /// When this connection last completed something (a request received whole, a reply sent whole) or was
    /// accepted: at the cap, the smallest value is evicted.
    pub fn last_progress_ms(&self) -> u64 {
        self.last_progress_ms
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Milliseconds since the connection was accepted.
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.opened_ms)
    }
}

/// Which open connection (slot, last progress) to evict when no slot is free: the one that made progress least
/// recently (the first of equals).
pub fn eviction_candidate(last_progress: impl Iterator<Item = (usize, u64)>) -> Option<usize> {
    last_progress.min_by_key(|&(_, at)| at).map(|(slot, _)| slot)
}

#[cfg(test)]
mod tests;
