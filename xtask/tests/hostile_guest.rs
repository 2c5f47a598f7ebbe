//! Hostile clients against a serving guest under QEMU (TCG, loopback only): a client that never reads cannot make
//! the guest queue replies without bound, idle and slow clients cannot hold every slot, a slow writer meets the
//! request deadline, and the first client is served without the 1 s ARP stall. Each ends with the guest still
//! serving (the run is stopped by the host, not ended by the guest).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::run_serving;
use protocol::console::Record;
use protocol::frame::frame;
use protocol::service::{ServiceReply, ServiceRequest};
use xtask::qemu::{Outcome, RunReport};

fn options() -> xtask::dance::BrokerOptions {
    xtask::dance::BrokerOptions::for_checkout(&xtask::paths::repo_root())
}

fn request(request: &ServiceRequest) -> Vec<u8> {
    frame(&request.encode().unwrap()).unwrap()
}

/// One health call on a fresh connection: whether the guest answered it.
fn health(guest: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&guest, Duration::from_secs(5)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream.write_all(&request(&ServiceRequest::Health)).is_err() {
        return false;
    }
    let mut header = [0u8; 4];
    if stream.read_exact(&mut header).is_err() {
        return false;
    }
    let mut body = vec![0u8; u32::from_be_bytes(header).min(64) as usize];
    stream.read_exact(&mut body).is_ok()
        && ServiceReply::decode(&body) == Ok(ServiceReply::HealthIs { attested: true, model_loaded: true })
}

fn guest(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The `closed` records' reasons.
fn close_reasons(report: &RunReport) -> Vec<String> {
    report
        .lines
        .iter()
        .filter_map(|l| Record::parse(l).ok())
        .filter(|r| r.msg == "closed")
        .map(|r| r.field("reason").unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_client_that_never_reads_cannot_exhaust_the_guest() {
    // Before: 18,946 unread replies (about 23 MB) and the guest panicked in the allocator; QEMU exited.
    let run = run_serving("never-reads", options(), |port| {
        let mut silent = TcpStream::connect(guest(port)).unwrap();
        silent.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        let evidence = request(&ServiceRequest::Evidence { client_nonce: [3; 32] });
        // More than the count that crashed it, unless the buffers between (QEMU's, the host's) fill first.
        let mut written = 0;
        while written < 40_000 && silent.write_all(&evidence).is_ok() {
            written += 1;
        }
        for _ in 0..5 {
            assert!(health(guest(port)), "another client is served while one never reads ({written} requests sent)");
        }
        // The send deadline (5 s) ends the silent connection; the guest records why. 7 s leaves room for a loaded
        // machine.
        std::thread::sleep(Duration::from_secs(7));
        assert!(health(guest(port)));
        drop(silent);
    });
    assert_eq!(run.report.outcome, Outcome::Stopped, "{:?}", run.report.lines.last());
    let reasons = close_reasons(&run.report);
    assert!(reasons.iter().any(|r| r == "send-stalled"), "{reasons:?}");
}

#[test]
fn idle_and_slow_connections_cannot_hold_every_slot() {
    // Before: 8 idle connections held all 8 slots, and 0 of 30 health calls succeeded.
    let run = run_serving("idle-holders", options(), |port| {
        let idle: Vec<TcpStream> = (0..20).filter_map(|_| TcpStream::connect(guest(port)).ok()).collect();
        let slow: Vec<TcpStream> = (0..6)
            .filter_map(|_| {
                let mut s = TcpStream::connect(guest(port)).ok()?;
                s.write_all(&[0, 0, 0x01]).ok()?;
                Some(s)
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        let served = (0..30).filter(|_| health(guest(port))).count();
        assert_eq!(served, 30, "{served} of 30 health calls with {} idle and {} slow holders", idle.len(), slow.len());
    });
    assert_eq!(run.report.outcome, Outcome::Stopped);
    assert!(close_reasons(&run.report).iter().any(|r| r == "evicted"));
}

#[test]
fn a_slow_writer_alone_meets_the_request_deadline() {
    let run = run_serving("slow-writer", options(), |port| {
        let mut slow = TcpStream::connect(guest(port)).unwrap();
        let started = Instant::now();
        let mut closed = false;
        // One byte every 250 ms of a frame that would take a minute: the 5 s request deadline resets it.
        let bytes = [&[0u8, 0, 0x10, 0][..], &[0x11; 236]].concat();
        for byte in bytes {
            if slow.write_all(&[byte]).is_err() {
                closed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        assert!(closed, "the guest kept a slow writer for {:?}", started.elapsed());
    });
    assert_eq!(run.report.outcome, Outcome::Stopped);
    assert!(close_reasons(&run.report).iter().any(|r| r == "request-deadline"));
}

#[test]
fn the_first_client_is_served_without_waiting_for_the_arp_limit() {
    // Before: "evidence verified in 1007.4 ms" on every fresh run: smoltcp's one-ARP-request-a-second limit held the
    // first SYN-ACK. The guest now resolves the gateway before it serves.
    let run = run_serving("first-connection", options(), |port| {
        let started = Instant::now();
        assert!(health(guest(port)));
        let first = started.elapsed();
        assert!(first < Duration::from_millis(900), "the first health call took {first:?}");
    });
    let gateway = run.report.record("gateway").expect("a gateway record").0;
    assert_eq!(gateway.field("resolved"), Some("true"));
    let order: Vec<&str> = run.report.lines.iter().filter_map(|l| Record::parse(l).ok()).map(|r| r.msg).collect();
    let at = |msg: &str| order.iter().position(|m| *m == msg).unwrap();
    assert!(at("gateway") < at("serving"));
}
