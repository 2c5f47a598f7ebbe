use alloc::vec;
use alloc::vec::Vec;

use super::*;

const LIMITS: ServiceLimits = SERVICE_LIMITS;

fn framed(body: &[u8]) -> Vec<u8> {
    frame(body).unwrap()
}

/// Answers every ready request with `reply`, as the kernel does; returns how many were answered.
fn answer_all(c: &mut Connection, reply: &[u8], now: u64) -> usize {
    let mut n = 0;
    while let NextRequest::Request(_) = c.next_request() {
        c.answer(reply, now);
        n += 1;
    }
    n
}

#[test]
fn a_request_is_answered_once_whole_and_not_before() {
    let mut c = Connection::new(LIMITS, 0);
    let bytes = framed(b"\x12");
    assert_eq!(c.receive(&bytes[..3], 1), 3);
    assert_eq!(c.next_request(), NextRequest::Nothing);
    c.receive(&bytes[3..], 2);
    assert_eq!(c.next_request(), NextRequest::Request(b"\x12"));
    c.answer(b"reply", 3);
    assert_eq!(c.outbox(), framed(b"reply").as_slice());
    assert_eq!(c.requests(), 1);
    c.sent(c.outbox().len(), 4);
    assert!(c.is_idle() && c.outbox().is_empty());
}

#[test]
fn a_client_that_never_reads_is_not_read_either_and_the_outbox_holds_one_reply() {
    // The defect this replaces: replies queued without limit until the allocator failed (18,946 of them).
    let mut c = Connection::new(LIMITS, 0);
    let mut stream = Vec::new();
    for _ in 0..100 {
        stream.extend_from_slice(&framed(b"\x10evidence-request-of-any-length"));
    }
    let mut offered = &stream[..];
    for now in 0..1000 {
        let taken = c.receive(offered, now);
        offered = &offered[taken..];
        answer_all(&mut c, &[0xAB; 1500], now);
        // The socket takes nothing: the client never reads.
        assert!(c.outbox().len() <= HEADER_LEN + 1500, "the outbox holds at most one reply");
        assert!(c.receive_room() == 0, "nothing more is read while a reply waits");
    }
    assert_eq!(c.requests(), 1, "one request answered, the rest left in the socket");
    assert_eq!(c.overdue(LIMITS.send_deadline_ms), None);
    assert_eq!(c.overdue(LIMITS.send_deadline_ms + 1), Some(CloseReason::SendStalled));
    assert!(CloseReason::SendStalled.resets());
}

#[test]
fn a_slow_writer_meets_the_request_deadline_however_often_it_sends_a_byte() {
    let mut c = Connection::new(LIMITS, 0);
    let bytes = framed(&[0x11; 2000]);
    let mut now = 100;
    for byte in bytes.chunks(1).take(50) {
        c.receive(byte, now);
        assert_eq!(c.overdue(now), None);
        now += 100;
    }
    assert_eq!(c.overdue(100 + LIMITS.request_deadline_ms + 1), Some(CloseReason::RequestDeadline));
}

#[test]
fn the_request_deadline_restarts_with_each_request_and_only_if_bytes_are_pending() {
    let mut c = Connection::new(LIMITS, 0);
    let mut two = framed(b"\x12");
    two.extend_from_slice(&framed(b"\x12\x00")[..2]);
    c.receive(&two, 10);
    c.answer(b"ok", 4000);
    c.sent(6, 4000);
    // The second request's first bytes arrived with the first; its clock starts when the first was consumed.
    assert_eq!(c.overdue(4000 + LIMITS.request_deadline_ms), None);
    assert_eq!(c.overdue(4001 + LIMITS.request_deadline_ms), Some(CloseReason::RequestDeadline));
    let mut c = Connection::new(LIMITS, 0);
    c.receive(&framed(b"\x12"), 10);
    c.answer(b"ok", 20);
    c.sent(6, 20);
    assert_eq!(c.overdue(20 + LIMITS.request_deadline_ms + 1), None, "nothing pending: no request deadline");
}

#[test]
fn an_idle_connection_times_out_and_progress_resets_the_clock() {
    let mut c = Connection::new(LIMITS, 1000);
    assert_eq!(c.overdue(1000 + LIMITS.idle_timeout_ms), None);
    assert_eq!(c.overdue(1001 + LIMITS.idle_timeout_ms), Some(CloseReason::Idle));
    c.receive(&framed(b"\x12"), 5000);
    c.answer(b"ok", 5000);
    c.sent(6, 6000);
    assert_eq!(c.last_progress_ms(), 6000);
    assert_eq!(c.overdue(6000 + LIMITS.idle_timeout_ms), None);
    assert_eq!(c.overdue(6001 + LIMITS.idle_timeout_ms), Some(CloseReason::Idle));
    assert!(!CloseReason::Idle.resets());
}

#[test]
fn oversized_and_empty_frames_are_refused_and_close_after_the_reply() {
    for header in [[0xff; 4], [0, 0, 0, 0], (LIMITS.max_request_len as u32 + 1).to_be_bytes()] {
        let mut c = Connection::new(LIMITS, 0);
        c.receive(&header, 0);
        assert!(matches!(c.next_request(), NextRequest::BadFrame(_)), "{header:?}");
        c.refuse_frame(b"error", 0);
        assert_eq!(c.receive_room(), 0);
        assert_eq!(c.receive(b"more", 1), 0, "nothing is read after a bad frame");
        assert_eq!(c.next_request(), NextRequest::Nothing);
        assert!(!c.finished());
        c.sent(c.outbox().len(), 1);
        assert!(c.finished());
    }
    let mut c = Connection::new(LIMITS, 0);
    c.receive(&(LIMITS.max_request_len as u32).to_be_bytes(), 0);
    assert_eq!(c.next_request(), NextRequest::Nothing, "the largest request is waited for");
}

#[test]
fn the_inbox_never_holds_more_than_one_frame() {
    let mut c = Connection::new(LIMITS, 0);
    let flood = vec![0u8; 10 * (HEADER_LEN + LIMITS.max_request_len)];
    let mut header = (LIMITS.max_request_len as u32).to_be_bytes().to_vec();
    header.extend_from_slice(&flood);
    let taken = c.receive(&header, 0);
    assert_eq!(taken, HEADER_LEN + LIMITS.max_request_len);
    assert_eq!(c.receive(&flood, 0), 0);
}

#[test]
fn at_the_cap_the_least_recently_progressing_connection_is_evicted() {
    assert_eq!(eviction_candidate([(0, 5), (1, 1), (2, 9)].into_iter()), Some(1));
    assert_eq!(eviction_candidate([(3, 4), (4, 4)].into_iter()), Some(3), "the first of equals");
    assert_eq!(eviction_candidate(core::iter::empty()), None);
    // A slow-loris never completes a request: its progress stays at its accept time, older than a working client's.
    let mut loris = Connection::new(LIMITS, 100);
    loris.receive(&[0, 0, 1], 200);
    let mut worker = Connection::new(LIMITS, 50);
    worker.receive(&framed(b"\x12"), 300);
    worker.answer(b"ok", 300);
    worker.sent(6, 310);
    let slots = [(0, loris.last_progress_ms()), (1, worker.last_progress_ms())];
    assert_eq!(eviction_candidate(slots.into_iter()), Some(0));
}

#[test]
fn every_reason_has_a_distinct_name() {
    use CloseReason::*;
    let all = [PeerClosed, PeerReset, BadFrame, RequestDeadline, SendStalled, Idle, Evicted, CloseTimedOut];
    let mut names: Vec<_> = all.iter().map(|r| r.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len());
}
