//! Serving clients (DESIGN.md §5): sockets listen on the service port, each carrying one client's framed requests;
//! the meaning of every request is `loader::Service`'s, and when to read, answer, wait or close is
//! `loader::connection`'s (with its limits, `SERVICE_LIMITS`). This file only moves bytes between those and smoltcp.
//! One vCPU polls every socket in turn; a request is answered in full before the next is read.
//!
//! One socket more than the connection cap always listens: when it is taken, the connection that made progress
//! least recently is evicted, so idle or slow clients cannot hold every slot. Records carry a request's name,
//! outcome and time, and a connection's close reason, never content.

use alloc::vec::Vec;

use loader::connection::{CloseReason, Connection, NextRequest, SERVICE_LIMITS, eviction_candidate};
use loader::{Attester, Service};
use protocol::endpoint::SERVICE_GUEST_PORT;
use protocol::service::{ServiceErrorCode, ServiceReply};
use protocol::session::Session;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::State;

use crate::model::LoadedModel;
use crate::net::Network;
use crate::rng::HardwareRng;
use crate::{heap, time};

/// Sockets on the service port: the connection cap and one that always listens.
const SOCKETS: usize = SERVICE_LIMITS.connections + 1;

/// One socket and the connection it carries, if any.
struct Slot {
    handle: SocketHandle,
    connection: Option<Connection>,
    /// The connection's attested session, once a client opens one; gone with the connection.
    session: Option<Session>,
    /// When the socket started closing (FIN sent or RST queued), to bound how long it holds the slot.
    closing_since_ms: Option<u64>,
}

/// Serves forever (the host ends the run).
pub fn serve<A: Attester>(network: &mut Network, service: &mut Service<A, LoadedModel>) -> ! {
    let mut slots: Vec<Slot> = (0..SOCKETS)
        .map(|_| Slot {
            handle: network.listen(SERVICE_GUEST_PORT),
            connection: None,
            session: None,
            closing_since_ms: None,
        })
        .collect();
    let limits = SERVICE_LIMITS;
    log::info!(target: "service",
        port = SERVICE_GUEST_PORT,
        connections = limits.connections,
        max_request_len = limits.max_request_len,
        request_deadline_ms = limits.request_deadline_ms,
        send_deadline_ms = limits.send_deadline_ms,
        idle_timeout_ms = limits.idle_timeout_ms;
        "serving");
    loop {
        network.poll();
        let now = time::now_ms();
        for slot in &mut slots {
            step(network, slot, service, now);
        }
        evict_if_full(network, &mut slots, now);
        core::hint::spin_loop();
    }
}

/// Keeps one socket listening. If none is, a socket still closing is reset and reused first; failing that, the
/// connection that made progress least recently is evicted.
fn evict_if_full(network: &mut Network, slots: &mut [Slot], now: u64) {
    if slots.iter().any(|s| network.tcp(s.handle).state() == State::Listen) {
        return;
    }
    if let Some(closing) = slots.iter().find(|s| s.connection.is_none() && s.closing_since_ms.is_some()) {
        network.tcp(closing.handle).abort();
        return;
    }
    let open = slots.iter().enumerate().filter_map(|(i, s)| Some((i, s.connection.as_ref()?.last_progress_ms())));
    if let Some(victim) = eviction_candidate(open) {
        close(network, &mut slots[victim], CloseReason::Evicted, now);
    }
}

fn step<A: Attester>(network: &mut Network, slot: &mut Slot, service: &mut Service<A, LoadedModel>, now: u64) {
    let state = network.tcp(slot.handle).state();
    match state {
        State::Listen | State::SynReceived => return,
        State::Closed => {
            if slot.connection.is_some() {
                close(network, slot, CloseReason::PeerReset, now);
            }
            slot.session = None;
            // A fresh socket is closed, and the port is not 0: listen cannot fail.
            let _ = network.tcp(slot.handle).listen(SERVICE_GUEST_PORT);
            slot.closing_since_ms = None;
            return;
        }
        State::Established | State::CloseWait => {}
        // Closing: the peer has a short grace to finish the handshake, then the socket is reset and reused.
        _ => {
            let since = *slot.closing_since_ms.get_or_insert(now);
            if state == State::TimeWait || now.saturating_sub(since) > SERVICE_LIMITS.close_grace_ms {
                if let Some(connection) = slot.connection.take() {
                    record_closed(&connection, CloseReason::CloseTimedOut, now);
                }
                slot.session = None;
                network.tcp(slot.handle).abort();
            }
            return;
        }
    }
    let connection = slot.connection.get_or_insert_with(|| Connection::new(SERVICE_LIMITS, now));
    let socket = network.tcp(slot.handle);
    if socket.can_recv() && connection.receive_room() > 0 {
        let _ = socket.recv(|bytes| (connection.receive(bytes, now), ()));
    }
    match connection.next_request() {
        NextRequest::Nothing => {}
        NextRequest::BadFrame(_) => {
            log::warn!(target: "service", request = "oversized-or-empty-frame"; "refused; closing the connection");
            connection.refuse_frame(&error_reply(ServiceErrorCode::Malformed), now);
        }
        NextRequest::Request(body) => {
            let started = time::rdtsc();
            let (reply, outcome) = service.handle(body, &mut slot.session, &mut HardwareRng);
            let us = time::cycles_to_us(time::rdtsc().wrapping_sub(started));
            match (outcome.error, service.model()) {
                (None, Some(model)) if matches!(outcome.request, "infer" | "embed") => {
                    let model_cycles = model.last_run_cycles();
                    log::info!(target: "service", request = outcome.request, us = us, model_cycles = model_cycles;
                        "served")
                }
                (None, _) => log::info!(target: "service", request = outcome.request, us = us; "served"),
                (Some(code), _) => {
                    log::warn!(target: "service", request = outcome.request, error = code.as_str(); "refused")
                }
            }
            connection.answer(&reply, now);
        }
    }
    let socket = network.tcp(slot.handle);
    if !connection.outbox().is_empty() && socket.can_send() {
        let sent = socket.send_slice(connection.outbox()).unwrap_or(0);
        connection.sent(sent, now);
    }
    let peer_done = socket.state() == State::CloseWait && connection.outbox().is_empty();
    if connection.finished() {
        close(network, slot, CloseReason::BadFrame, now);
    } else if peer_done {
        close(network, slot, CloseReason::PeerClosed, now);
    } else if let Some(reason) = connection.overdue(now) {
        close(network, slot, reason, now);
    }
}

/// Ends the slot's connection for `reason` (reset or polite close, as the reason says) and records it.
fn close(network: &mut Network, slot: &mut Slot, reason: CloseReason, now: u64) {
    let socket = network.tcp(slot.handle);
    if reason.resets() {
        socket.abort();
    } else {
        socket.close();
    }
    slot.closing_since_ms = Some(now);
    slot.session = None;
    if let Some(connection) = slot.connection.take() {
        record_closed(&connection, reason, now);
    }
}

fn record_closed(connection: &Connection, reason: CloseReason, now: u64) {
    let level = if reason.resets() { log::Level::Warn } else { log::Level::Info };
    log::log!(target: "service", level,
        reason = reason.as_str(),
        requests = connection.requests(),
        ms = connection.age_ms(now),
        heap_used = heap::used(),
        heap_peak = heap::peak();
        "closed");
}

fn error_reply(code: ServiceErrorCode) -> Vec<u8> {
    // An error reply is three bytes: encoding it cannot fail.
    ServiceReply::Error { code }.encode().unwrap_or_default()
}
