//! Serving clients (DESIGN.md §5): [`CONNECTIONS`] sockets listen on the service port, each carrying one client's
//! framed requests at a time; the meaning of every request is `loader::Service`'s. One vCPU polls them all in
//! turn; a request is answered in full before the next is read, so no request waits on another's inference.
//!
//! A frame header announcing more than [`MAX_REQUEST_LEN`] (or an empty frame) gets an error reply and the
//! connection is closed: its body cannot be skipped safely. Anything else bad gets an error reply and the connection
//! goes on. Records carry the request's name, outcome and time, never content.

use alloc::vec::Vec;

use loader::{Attester, Service};
use protocol::endpoint::SERVICE_GUEST_PORT;
use protocol::frame::{HEADER_LEN, body_len, frame};
use protocol::service::{MAX_SEALED_LEN, ServiceErrorCode, ServiceReply};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::State;

use crate::model::ServedModel;
use crate::net::Network;
use crate::rng::HardwareRng;
use crate::time;

/// Concurrent client connections.
pub const CONNECTIONS: usize = 8;
/// The largest request body: an `Infer` with the most sealed input the protocol allows.
const MAX_REQUEST_LEN: usize = 1 + 32 + 4 + MAX_SEALED_LEN;

struct Connection {
    handle: SocketHandle,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    close_when_sent: bool,
}

/// Serves forever (the host ends the run).
pub fn serve<A: Attester>(network: &mut Network, service: &mut Service<A, ServedModel>) -> ! {
    let mut connections: Vec<Connection> = (0..CONNECTIONS)
        .map(|_| Connection {
            handle: network.listen(SERVICE_GUEST_PORT),
            inbox: Vec::new(),
            outbox: Vec::new(),
            close_when_sent: false,
        })
        .collect();
    log::info!(target: "service", port = SERVICE_GUEST_PORT, connections = CONNECTIONS; "serving");
    loop {
        network.poll();
        for connection in &mut connections {
            step(network, connection, service);
        }
        core::hint::spin_loop();
    }
}

fn step<A: Attester>(network: &mut Network, connection: &mut Connection, service: &mut Service<A, ServedModel>) {
    let socket = network.tcp(connection.handle);
    if socket.state() == State::Closed {
        connection.inbox.clear();
        connection.outbox.clear();
        connection.close_when_sent = false;
        let _ = socket.listen(SERVICE_GUEST_PORT);
        return;
    }
    let room = HEADER_LEN + MAX_REQUEST_LEN - connection.inbox.len();
    if socket.can_recv() && room > 0 && !connection.close_when_sent {
        let _ = socket.recv(|bytes| {
            let take = bytes.len().min(room);
            connection.inbox.extend_from_slice(&bytes[..take]);
            (take, ())
        });
    }
    while !connection.close_when_sent && connection.inbox.len() >= HEADER_LEN {
        let header = [connection.inbox[0], connection.inbox[1], connection.inbox[2], connection.inbox[3]];
        let len = match body_len(header, MAX_REQUEST_LEN) {
            Ok(len) => len,
            Err(_) => {
                log::warn!(target: "service", request = "oversized-or-empty-frame"; "refused; closing the connection");
                queue(
                    connection,
                    &ServiceReply::Error { code: ServiceErrorCode::Malformed }.encode().unwrap_or_default(),
                );
                connection.close_when_sent = true;
                break;
            }
        };
        if connection.inbox.len() < HEADER_LEN + len {
            break;
        }
        let started = time::rdtsc();
        let (reply, outcome) = service.handle(&connection.inbox[HEADER_LEN..HEADER_LEN + len], &mut HardwareRng);
        connection.inbox.drain(..HEADER_LEN + len);
        let us = time::cycles_to_us(time::rdtsc().wrapping_sub(started));
        match (outcome.error, service.model()) {
            (None, Some(model)) if outcome.request == "infer" => {
                let model_cycles = model.last_run_cycles();
                log::info!(target: "service", request = outcome.request, us = us, model_cycles = model_cycles; "served")
            }
            (None, _) => log::info!(target: "service", request = outcome.request, us = us; "served"),
            (Some(code), _) => {
                log::warn!(target: "service", request = outcome.request, error = code.as_str(); "refused")
            }
        }
        queue(connection, &reply);
    }
    let socket = network.tcp(connection.handle);
    if !connection.outbox.is_empty() && socket.can_send() {
        let sent = socket.send_slice(&connection.outbox).unwrap_or(0);
        connection.outbox.drain(..sent);
    }
    if connection.outbox.is_empty() && (connection.close_when_sent || socket.state() == State::CloseWait) {
        socket.close();
    }
}

/// Frames a reply body onto the connection's outbox. A reply body is at most a few KiB and never empty: framing it
/// cannot fail.
fn queue(connection: &mut Connection, reply: &[u8]) {
    connection.outbox.extend_from_slice(&frame(reply).unwrap_or_default());
}
