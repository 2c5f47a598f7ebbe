use super::*;
use alloc::vec;

fn samples() -> [Message; 6] {
    [
        Message::Hello { version: PROTOCOL_VERSION, tee: Tee::Plain },
        Message::Challenge { nonce: [7; NONCE_LEN] },
        Message::Attest {
            tee: Tee::Snp,
            nonce: [8; 32],
            key_id: [1; 16],
            guest_public_key: [2; 32],
            evidence: vec![3; 1184],
        },
        Message::Attest { tee: Tee::Tdx, nonce: [8; 32], key_id: [1; 16], guest_public_key: [2; 32], evidence: vec![] },
        Message::KeyRelease {
            key_id: [4; 16],
            expires_at: 1_800_000_000,
            encapped_key: [5; 32],
            sealed_key: vec![6; 48],
        },
        Message::Refused { code: RefusalCode::NonceExpired },
    ]
}

#[test]
fn every_message_round_trips() {
    for m in samples() {
        let body = m.encode().unwrap();
        assert_eq!(Message::decode(&body), Ok(m));
    }
}

#[test]
fn every_truncation_is_refused() {
    for m in samples() {
        let body = m.encode().unwrap();
        for len in 0..body.len() {
            assert_eq!(Message::decode(&body[..len]), Err(DecodeError::Truncated), "{} cut at {len}", m.name());
        }
    }
}

#[test]
fn trailing_bytes_unknown_types_and_values_are_refused() {
    let mut body = Message::Hello { version: 1, tee: Tee::Plain }.encode().unwrap();
    body.push(0);
    assert_eq!(Message::decode(&body), Err(DecodeError::TrailingBytes));
    assert_eq!(Message::decode(&[9]), Err(DecodeError::UnknownType(9)));
    assert_eq!(Message::decode(&[HELLO, 0, 1, 7]), Err(DecodeError::UnknownTee(7)));
    assert_eq!(Message::decode(&[REFUSED, 0, 99]), Err(DecodeError::UnknownRefusal(99)));
}

#[test]
fn announced_lengths_beyond_the_bound_are_refused_before_reading() {
    let mut body = vec![ATTEST, 0];
    body.extend_from_slice(&[0; 32 + 16 + 32]);
    body.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(Message::decode(&body), Err(DecodeError::TooLong));
    let too_big = Message::Attest {
        tee: Tee::Plain,
        nonce: [0; 32],
        key_id: [0; 16],
        guest_public_key: [0; 32],
        evidence: vec![0; MAX_EVIDENCE_LEN + 1],
    };
    assert_eq!(too_big.encode(), Err(DecodeError::TooLong));
    // The largest Attest still fits in one frame.
    let largest = Message::Attest {
        tee: Tee::Plain,
        nonce: [0; 32],
        key_id: [0; 16],
        guest_public_key: [0; 32],
        evidence: vec![0; MAX_EVIDENCE_LEN],
    };
    assert_eq!(largest.encode().unwrap().len(), crate::frame::MAX_FRAME_LEN);
}

#[test]
fn refusal_codes_round_trip_and_names_are_unique() {
    for (i, code) in RefusalCode::ALL.iter().enumerate() {
        assert_eq!(RefusalCode::from_u16(*code as u16), Some(*code));
        assert!(RefusalCode::ALL[i + 1..].iter().all(|c| c.as_str() != code.as_str()));
    }
}
