//! One connection: `Hello` -> `Challenge` -> `Attest` -> `KeyRelease` or `Refused`. Any malformed, oversized or
//! out-of-order frame is refused (and audited), and the connection closed; the broker serves on.

use std::io::{Read, Write};
use std::time::Instant;

use protocol::frame::{FrameError, ReadFrameError, frame, read_frame};
use protocol::message::{Message, PROTOCOL_VERSION};
use protocol::refusal::RefusalCode;
use protocol::tee::Tee;

use crate::Broker;
use crate::decision::{AttestRequest, Decision};
use crate::log::Value;

/// Why a session ended without a decision worth auditing (the peer went away or timed out).
#[derive(Debug)]
pub struct Disconnected;

/// Told when the session starts and stops waiting for a client's message, so that the server can put a deadline on
/// whole messages and knows which connections are only waiting (evictable) and which are deciding.
pub trait MessageWatch {
    /// The session is about to wait for a message.
    fn awaiting_message(&self);
    /// The awaited message arrived whole (or the wait ended).
    fn message_arrived(&self);
}

/// A watch that watches nothing (connections that the caller bounds itself).
struct Unwatched;

impl MessageWatch for Unwatched {
    fn awaiting_message(&self) {}
    fn message_arrived(&self) {}
}

impl Broker {
    /// A fresh nonce for `connection` (what a `Challenge` carries).
    pub fn issue_challenge(&self, connection: u64) -> std::io::Result<[u8; protocol::message::NONCE_LEN]> {
        self.nonces.issue(connection, self.now_ms())
    }

    /// Serves one connection to completion.
    pub fn serve_connection<S: Read + Write>(&self, stream: &mut S, peer: &str) {
        self.serve_watched(stream, peer, &Unwatched);
    }

    /// Serves one connection to completion, telling `watch` when it waits for a message.
    pub fn serve_watched<S: Read + Write>(&self, stream: &mut S, peer: &str, watch: &dyn MessageWatch) {
        let connection = self.next_connection();
        let _ = self.session(stream, peer, connection, watch);
    }

    fn read_message<S: Read>(
        &self,
        stream: &mut S,
        watch: &dyn MessageWatch,
    ) -> Result<Result<Message, RefusalCode>, Disconnected> {
        watch.awaiting_message();
        let read = read_frame(self.config.max_frame_len, |buf| stream.read_exact(buf));
        watch.message_arrived();
        match read {
            Ok(body) => Ok(Message::decode(&body).map_err(|_| RefusalCode::MalformedMessage)),
            Err(ReadFrameError::Frame(FrameError::TooLong { .. })) => Ok(Err(RefusalCode::Oversized)),
            Err(ReadFrameError::Frame(FrameError::Empty)) => Ok(Err(RefusalCode::MalformedMessage)),
            Err(ReadFrameError::Io(_)) => Err(Disconnected),
        }
    }

    fn send<S: Write>(stream: &mut S, message: &Message) -> Result<(), Disconnected> {
        let body = message.encode().map_err(|_| Disconnected)?;
        let bytes = frame(&body).map_err(|_| Disconnected)?;
        stream.write_all(&bytes).and_then(|()| stream.flush()).map_err(|_| Disconnected)
    }

    /// Audits and counts a decision, then sends the reply, which becomes a refusal if the audit failed.
    /// `started`: when the message decided on arrived.
    fn conclude<S: Write>(
        &self,
        stream: &mut S,
        (peer, tee): (&str, Option<Tee>),
        reply: Message,
        decision: Decision,
        started: Instant,
    ) {
        let now = self.now_ms();
        let (reply, decision) = match self.record(now, peer, tee, &decision) {
            Ok(()) => (reply, decision),
            Err(_) => {
                self.stats.metrics.audit_failure();
                let failed = Decision { version: None, outcome: Err(RefusalCode::Internal), ..decision };
                (Message::Refused { code: RefusalCode::Internal }, failed)
            }
        };
        let verified = tee.zip(decision.tcb.as_deref());
        self.stats.count(&decision.outcome, verified, started.elapsed());
        let (decision_name, reason) = match decision.outcome {
            Ok(_) => ("released", None),
            Err(code) => ("refused", Some(code.as_str())),
        };
        let (released_total, refused_total) = self.stats.totals();
        self.log(
            protocol::console::Level::Info,
            "decision",
            &[
                ("peer", Value::Str(peer)),
                ("tee", Value::Str(tee.map_or("-", Tee::as_str))),
                ("decision", Value::Str(decision_name)),
                ("reason", Value::Str(reason.unwrap_or("-"))),
                ("released_total", Value::U64(released_total)),
                ("refused_total", Value::U64(refused_total)),
            ],
        );
        let _ = Self::send(stream, &reply);
    }

    fn refuse<S: Write>(&self, stream: &mut S, peer: &str, tee: Option<Tee>, code: RefusalCode) {
        let decision = Decision { measurement: None, tcb: None, version: None, outcome: Err(code) };
        self.conclude(stream, (peer, tee), Message::Refused { code }, decision, Instant::now());
    }

    fn session<S: Read + Write>(
        &self,
        stream: &mut S,
        peer: &str,
        connection: u64,
        watch: &dyn MessageWatch,
    ) -> Result<(), Disconnected> {
        let tee = match self.read_message(stream, watch)? {
            Ok(Message::Hello { version, tee }) if version == PROTOCOL_VERSION => tee,
            Ok(Message::Hello { tee, .. }) => {
                self.refuse(stream, peer, Some(tee), RefusalCode::ProtocolVersion);
                return Ok(());
            }
            Ok(_) => {
                self.refuse(stream, peer, None, RefusalCode::MalformedMessage);
                return Ok(());
            }
            Err(code) => {
                self.refuse(stream, peer, None, code);
                return Ok(());
            }
        };
        let nonce = match self.issue_challenge(connection) {
            Ok(nonce) => nonce,
            Err(_) => {
                self.refuse(stream, peer, Some(tee), RefusalCode::Internal);
                return Ok(());
            }
        };
        Self::send(stream, &Message::Challenge { nonce })?;
        match self.read_message(stream, watch)? {
            Ok(Message::Attest { tee: claimed, nonce, key_id, guest_public_key, evidence }) => {
                let started = Instant::now();
                let request = AttestRequest {
                    tee: claimed,
                    nonce: &nonce,
                    key_id: &key_id,
                    guest_public_key: &guest_public_key,
                    evidence: &evidence,
                };
                let (reply, decision) = self.decide(connection, tee, &request, self.now_ms());
                self.conclude(stream, (peer, Some(tee)), reply, decision, started);
            }
            Ok(_) => self.refuse(stream, peer, Some(tee), RefusalCode::MalformedMessage),
            Err(code) => self.refuse(stream, peer, Some(tee), code),
        }
        Ok(())
    }
}
