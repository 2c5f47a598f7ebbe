use super::*;
use crate::seal::tests::TestRng;
use crate::service::MAX_TOKEN_IDS;
use alloc::vec;

/// A fresh deterministic generator per call (a different seed each time).
fn rng() -> TestRng {
    static SEED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);
    TestRng(SEED.fetch_add(1, core::sync::atomic::Ordering::Relaxed))
}

/// A guest's service key, and a client's and the guest's sides of one session with it.
fn pair() -> (EphemeralKeyPair, Session, Session) {
    let service = EphemeralKeyPair::generate(&mut rng());
    let (encapped, client) = Session::open(&service.public_key(), &mut rng()).unwrap();
    let guest = Session::accept(&service, &encapped).unwrap();
    (service, client, guest)
}

#[test]
fn requests_and_replies_open_in_order_on_the_other_side() {
    let (_, mut client, mut guest) = pair();
    for n in 0..5u64 {
        let request = SessionRequest::Infer(vec![n as f32, 2.5]).encode().unwrap();
        let (number, record) = client.seal_next(&request).unwrap();
        assert_eq!(number, n);
        let opened = guest.open_next(number, &record).unwrap();
        assert_eq!(SessionRequest::decode(&opened).unwrap(), SessionRequest::Infer(vec![n as f32, 2.5]));
        let (number, record) = guest.seal_next(&encode_reply(Ok(&[0.25, 0.75])).unwrap()).unwrap();
        assert_eq!(decode_reply(&client.open_next(number, &record).unwrap()).unwrap(), Ok(vec![0.25, 0.75]));
    }
}

#[test]
fn replayed_reordered_dropped_and_foreign_records_are_refused_and_end_the_session() {
    // Replayed: the same record twice.
    let (_, mut client, mut guest) = pair();
    let (n, record) = client.seal_next(b"\x11\x00\x00").unwrap();
    guest.open_next(n, &record).unwrap();
    assert_eq!(guest.open_next(n, &record), Err(SessionError::OutOfOrder));
    assert_eq!(guest.open_next(n + 1, &record), Err(SessionError::Over), "the session is over");

    // Reordered (or the first dropped): record 1 before record 0.
    let (_, mut client, mut guest) = pair();
    let first = client.seal_next(b"a").unwrap();
    let second = client.seal_next(b"b").unwrap();
    assert_eq!(guest.open_next(second.0, &second.1), Err(SessionError::OutOfOrder));
    assert_eq!(guest.open_next(first.0, &first.1), Err(SessionError::Over));

    // Renumbered: record 1's bytes presented as record 0.
    let (_, mut client, mut guest) = pair();
    let _ = client.seal_next(b"a").unwrap();
    let (_, second) = client.seal_next(b"b").unwrap();
    assert_eq!(guest.open_next(0, &second), Err(SessionError::DidNotOpen));

    // Another session's record, even one for the same guest and number.
    let (service, mut client_a, _) = pair();
    let (encapped, _) = Session::open(&service.public_key(), &mut rng()).unwrap();
    let mut guest_b = Session::accept(&service, &encapped).unwrap();
    let (n, record) = client_a.seal_next(b"a").unwrap();
    assert_eq!(guest_b.open_next(n, &record), Err(SessionError::DidNotOpen));

    // A reply fed back to the guest as a request: other direction, other key.
    let (_, _, mut guest) = pair();
    let (n, reply) = guest.seal_next(b"r").unwrap();
    assert_eq!(guest.open_next(n, &reply), Err(SessionError::DidNotOpen));

    // Any flipped bit, a truncated record.
    for flip in [0usize, 3, 16] {
        let (_, mut client, mut guest) = pair();
        let (n, mut record) = client.seal_next(b"abc").unwrap();
        let at = flip % record.len();
        record[at] ^= 1;
        assert_eq!(guest.open_next(n, &record), Err(SessionError::DidNotOpen));
    }
    let (_, mut client, mut guest) = pair();
    let (n, record) = client.seal_next(b"abc").unwrap();
    assert_eq!(guest.open_next(n, &record[..TAG_LEN - 1]), Err(SessionError::DidNotOpen));
}

#[test]
fn a_session_with_another_guest_key_opens_nothing() {
    let service = EphemeralKeyPair::generate(&mut rng());
    let impostor = EphemeralKeyPair::generate(&mut rng());
    let (encapped, mut client) = Session::open(&service.public_key(), &mut rng()).unwrap();
    let mut guest = Session::accept(&impostor, &encapped).unwrap();
    let (n, record) = client.seal_next(b"a").unwrap();
    assert_eq!(guest.open_next(n, &record), Err(SessionError::DidNotOpen));
}

#[test]
fn plaintexts_decode_strictly() {
    let embed = SessionRequest::Embed(vec![101, 2023, 102]);
    assert_eq!(SessionRequest::decode(&embed.encode().unwrap()).unwrap(), embed);
    for bad in [&b""[..], b"\x05", b"\x11\x00", b"\x11\x00\x01\x00\x00\x80", b"\x17\x00\x01\x01\x00\x00\x00\x00"] {
        assert!(SessionRequest::decode(bad).is_err(), "{bad:?}");
    }
    assert!(SessionRequest::Embed(vec![0; MAX_TOKEN_IDS + 1]).encode().is_err());
    let refused = decode_reply(&encode_reply(Err(ServiceErrorCode::WrongValueCount)).unwrap()).unwrap();
    assert_eq!(refused, Err(ServiceErrorCode::WrongValueCount));
    for bad in [&b""[..], b"\x16\x00", b"\x16\x00\x63", b"\x09"] {
        assert!(decode_reply(bad).is_err(), "{bad:?}");
    }
    let mut session = pair().1;
    assert_eq!(session.seal_next(&vec![0; MAX_RECORD_LEN]), Err(SessionError::TooLong));
}
