//! Serving clients (DESIGN.md §5): sockets listen on the service port, each carrying one client's framed requests;
//! the meaning of every request is `loader::Service`'s, and when to read, answer, wait or close is
//! `loader::connection`'s (with its limits, `SERVICE_LIMITS`), and when to run the waiting `Infer`s as one batch
//! is `loader::batch`'s. This file only moves bytes between those and smoltcp. One vCPU polls every socket in turn;
//! a connection's request is answered in full before its next is read, and an `Infer` waits in its slot for the
//! batch, which runs after a pass over every socket once the batch limits say it is due.
//!
//! One socket more than the connection cap always listens: when it is taken, the connection that made progress
//! least recently is evicted, so idle or slow clients cannot hold every slot. Records carry a request's name,
//! outcome and time, and a connection's close reason, never content.

use alloc::vec::Vec;

use loader::batch::{BATCH_LIMITS, BadBatchLimits, BatchLimits, FW_CFG_BATCH};
use loader::connection::{CloseReason, Connection, NextRequest, SERVICE_LIMITS, eviction_candidate};
use loader::{Attester, Begun, Outcome, PendingInfer, Service};
use protocol::endpoint::SERVICE_GUEST_PORT;
use protocol::service::{ServiceErrorCode, ServiceReply};
use protocol::session::Session;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::State;

use crate::model::LoadedModel;
use crate::net::Network;
use crate::rng::HardwareRng;
use crate::{fw_cfg, heap, time};

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
    /// The connection's `Infer`, opened and waiting for the batch; dropped (erased) if the connection ends first.
    waiting: Option<Waiting>,
}

/// An `Infer` in a slot, waiting for the batch.
struct Waiting {
    infer: PendingInfer,
    /// When its request was begun (TSC).
    since: u64,
}

/// The host's batch limits (fw_cfg `loader::batch::FW_CFG_BATCH`), or the default if it set none or refused ones.
pub fn batch_limits() -> BatchLimits {
    // The longest valid text is "8,10000\n": a file that fills the buffer is too long, and is not cut to fit.
    let mut text = [0u8; 32];
    let Some(len) = fw_cfg::read_file(FW_CFG_BATCH, &mut text) else { return BATCH_LIMITS };
    let limits = if len < text.len() { BatchLimits::parse(&text[..len]) } else { Err(BadBatchLimits::Unreadable) };
    limits.unwrap_or_else(|error| {
        log::warn!(target: "service", error = error.as_str(); "batch limits refused; serving with the default");
        BATCH_LIMITS
    })
}

/// Serves forever (the host ends the run).
pub fn serve<A: Attester>(network: &mut Network, service: &mut Service<A, LoadedModel>, batch: BatchLimits) -> ! {
    let mut slots: Vec<Slot> = (0..SOCKETS)
        .map(|_| Slot {
            handle: network.listen(SERVICE_GUEST_PORT),
            connection: None,
            session: None,
            closing_since_ms: None,
            waiting: None,
        })
        .collect();
    let limits = SERVICE_LIMITS;
    log::info!(target: "service",
        port = SERVICE_GUEST_PORT,
        connections = limits.connections,
        max_request_len = limits.max_request_len,
        request_deadline_ms = limits.request_deadline_ms,
        send_deadline_ms = limits.send_deadline_ms,
        idle_timeout_ms = limits.idle_timeout_ms,
        batch_requests = batch.max_requests,
        batch_wait_us = batch.max_wait_us;
        "serving");
    loop {
        network.poll();
        let now = time::now_ms();
        for slot in &mut slots {
            step(network, slot, service, now);
        }
        run_batch_if_due(network, &mut slots, service, batch, now);
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
            slot.waiting = None;
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
                slot.waiting = None;
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
    // A connection whose `Infer` waits for the batch is not read on.
    let next = if slot.waiting.is_some() { NextRequest::Nothing } else { connection.next_request() };
    match next {
        NextRequest::Nothing => {}
        NextRequest::BadFrame(_) => {
            log::warn!(target: "service", request = "oversized-or-empty-frame"; "refused; closing the connection");
            connection.refuse_frame(&error_reply(ServiceErrorCode::Malformed), now);
        }
        NextRequest::Request(body) => {
            let since = time::rdtsc();
            match service.begin(body, &mut slot.session, &mut HardwareRng) {
                Begun::Answered(reply, outcome) => {
                    let embedded = outcome.request == "embed";
                    record_served(
                        outcome,
                        since,
                        service.model().filter(|_| embedded).map(|m| (1, m.last_run_cycles())),
                    );
                    connection.answer(&reply, now);
                }
                Begun::Infer(infer) => slot.waiting = Some(Waiting { infer, since }),
            }
        }
    }
    send_and_close_if_done(network, slot, now);
}

/// Sends what the slot's connection owes, as far as the socket takes it, and closes the connection if it is done
/// (a refused frame answered, the peer gone with nothing owed, or a deadline passed).
fn send_and_close_if_done(network: &mut Network, slot: &mut Slot, now: u64) {
    let Some(connection) = slot.connection.as_mut() else { return };
    let socket = network.tcp(slot.handle);
    if !connection.outbox().is_empty() && socket.can_send() {
        let sent = socket.send_slice(connection.outbox()).unwrap_or(0);
        connection.sent(sent, now);
    }
    let peer_done = socket.state() == State::CloseWait && connection.outbox().is_empty() && slot.waiting.is_none();
    if connection.finished() {
        close(network, slot, CloseReason::BadFrame, now);
    } else if peer_done {
        close(network, slot, CloseReason::PeerClosed, now);
    } else if let Some(reason) = connection.overdue(now) {
        close(network, slot, reason, now);
    }
}

/// Runs the waiting `Infer`s as one batch if `limits` say it is due (oldest first, at most `max_requests`), then
/// answers each on its own connection.
fn run_batch_if_due<A: Attester>(
    network: &mut Network,
    slots: &mut [Slot],
    service: &mut Service<A, LoadedModel>,
    limits: BatchLimits,
    now: u64,
) {
    let waiting = slots.iter().filter(|s| s.waiting.is_some()).count();
    let could_join = slots.iter().filter(|s| s.connection.is_some() && s.waiting.is_none()).count();
    let oldest = slots.iter().filter_map(|s| Some(s.waiting.as_ref()?.since)).min().unwrap_or(0);
    let waited_us = time::cycles_to_us(time::rdtsc().wrapping_sub(oldest));
    if !limits.due(waiting, waited_us, could_join) {
        return;
    }
    // The oldest `max_requests`: a request left out is among the oldest next time.
    let mut order: Vec<(u64, usize)> =
        slots.iter().enumerate().filter_map(|(i, s)| Some((s.waiting.as_ref()?.since, i))).collect();
    order.sort_unstable();
    order.truncate(limits.max_requests);
    let in_batch = |i: usize| order.iter().any(|&(_, j)| j == i);
    let mut batch: Vec<&mut PendingInfer> = slots
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| in_batch(*i))
        .filter_map(|(_, s)| Some(&mut s.waiting.as_mut()?.infer))
        .collect();
    let size = batch.len();
    service.run_batch(&mut batch);
    drop(batch);
    let model_cycles = service.model().map_or(0, LoadedModel::last_run_cycles);
    for &(_, i) in &order {
        let slot = &mut slots[i];
        let (Some(waiting), Some(connection)) = (slot.waiting.take(), slot.connection.as_mut()) else { continue };
        let (reply, outcome) = service.finish(waiting.infer, &mut slot.session, &mut HardwareRng);
        record_served(outcome, waiting.since, Some((size, model_cycles)));
        connection.answer(&reply, now);
        send_and_close_if_done(network, slot, now);
    }
}

/// The record of one request answered: its name, outcome and time since it was begun (for an `Infer`, waiting for
/// and running its batch included), and for a model run its batch's size and the run's TSC cycles.
fn record_served(outcome: Outcome, since: u64, batch: Option<(usize, u64)>) {
    let us = time::cycles_to_us(time::rdtsc().wrapping_sub(since));
    match (outcome.error, batch) {
        (None, Some((batch, model_cycles))) => log::info!(target: "service",
            request = outcome.request, us = us, batch = batch, model_cycles = model_cycles; "served"),
        (None, None) => log::info!(target: "service", request = outcome.request, us = us; "served"),
        (Some(code), _) => {
            log::warn!(target: "service", request = outcome.request, error = code.as_str(); "refused")
        }
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
    slot.waiting = None;
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
