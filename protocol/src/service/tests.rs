extern crate std;

use alloc::vec;

use super::*;

fn requests() -> Vec<ServiceRequest> {
    vec![
        ServiceRequest::Evidence { client_nonce: [7; 32] },
        ServiceRequest::Infer { encapped_key: [1; 32], sealed_input: vec![2; 50] },
        ServiceRequest::Health,
        ServiceRequest::Embed { encapped_key: [8; 32], sealed_input: vec![9; 70] },
        ServiceRequest::SessionOpen { encapped_key: [10; 32] },
        ServiceRequest::SessionRecord { number: u64::MAX, record: vec![11; 30] },
    ]
}

fn replies() -> Vec<ServiceReply> {
    vec![
        ServiceReply::EvidenceIs { tee: Tee::Plain, service_public_key: [3; 32], evidence: vec![4; 100] },
        ServiceReply::Result { encapped_key: [5; 32], sealed_output: vec![6; 24] },
        ServiceReply::HealthIs { attested: true, model_loaded: false },
        ServiceReply::Error { code: ServiceErrorCode::ValueOutOfRange },
        ServiceReply::SessionOpened,
        ServiceReply::SessionReply { number: 7, record: vec![3; 40] },
    ]
}

#[test]
fn every_message_round_trips_and_every_truncation_is_refused() {
    for request in requests() {
        let body = request.encode().unwrap();
        assert_eq!(ServiceRequest::decode(&body).unwrap(), request);
        for len in 0..body.len() {
            assert!(ServiceRequest::decode(&body[..len]).is_err(), "{} cut at {len}", request.name());
        }
        let mut longer = body.clone();
        longer.push(0);
        assert_eq!(ServiceRequest::decode(&longer), Err(DecodeError::TrailingBytes));
    }
    for reply in replies() {
        let body = reply.encode().unwrap();
        assert_eq!(ServiceReply::decode(&body).unwrap(), reply);
        for len in 0..body.len() {
            assert!(ServiceReply::decode(&body[..len]).is_err(), "{reply:?} cut at {len}");
        }
    }
}

#[test]
fn the_two_message_families_do_not_mix() {
    let hello = crate::message::Message::Hello { version: 1, tee: Tee::Plain }.encode().unwrap();
    assert_eq!(ServiceRequest::decode(&hello), Err(DecodeError::UnknownType(1)));
    let health = ServiceRequest::Health.encode().unwrap();
    assert!(crate::message::Message::decode(&health).is_err());
    assert!(ServiceReply::decode(&health).is_err());
}

#[test]
fn bounds_flags_and_codes_are_enforced() {
    let mut body = vec![INFER];
    body.extend_from_slice(&[0; 32]);
    body.extend_from_slice(&((MAX_SEALED_LEN + 1) as u32).to_be_bytes());
    assert_eq!(ServiceRequest::decode(&body), Err(DecodeError::TooLong));
    assert_eq!(ServiceReply::decode(&[HEALTH_IS, 1, 2]), Err(DecodeError::BadFlag(2)));
    assert_eq!(ServiceReply::decode(&[ERROR, 0, 99]), Err(DecodeError::UnknownServiceError(99)));
    assert_eq!(ServiceReply::decode(&[ERROR, 0, 15]), Err(DecodeError::UnknownServiceError(15)));
    for code in 1..=14 {
        assert_eq!(ServiceErrorCode::from_u16(code).unwrap() as u16, code);
    }
}

#[test]
fn values_and_inputs_decode_strictly() {
    let input = InferInput { reply_public_key: [9; 32], values: vec![1.5, -0.0, 3e9] };
    let bytes = input.encode().unwrap();
    assert_eq!(InferInput::decode(&bytes).unwrap(), input);
    assert_eq!(InferInput::decode(&bytes[..bytes.len() - 1]), Err(DecodeError::Truncated));
    assert_eq!(InferInput::decode(&[bytes.as_slice(), &[0]].concat()), Err(DecodeError::TrailingBytes));
    assert_eq!(decode_values(&((MAX_VALUES + 1) as u16).to_be_bytes()), Err(DecodeError::TooLong));
    assert_eq!(encode_values(&vec![0.0; MAX_VALUES + 1]), Err(DecodeError::TooLong));
    // NaN survives encoding bit for bit: the guest, not the codec, decides what values are acceptable.
    let nan = decode_values(&encode_values(&[f32::NAN]).unwrap()).unwrap();
    assert!(nan[0].is_nan());
}

#[test]
fn embed_inputs_decode_strictly() {
    let input = EmbedInput { reply_public_key: [9; 32], token_ids: vec![101, 30_521, u32::MAX, 102] };
    let bytes = input.encode().unwrap();
    assert_eq!(bytes.len(), 32 + 2 + 4 * 4);
    assert_eq!(EmbedInput::decode(&bytes).unwrap(), input);
    assert_eq!(EmbedInput::decode(&bytes[..bytes.len() - 1]), Err(DecodeError::Truncated));
    assert_eq!(EmbedInput::decode(&[bytes.as_slice(), &[0]].concat()), Err(DecodeError::TrailingBytes));
    let too_many = EmbedInput { reply_public_key: [9; 32], token_ids: vec![1; MAX_TOKEN_IDS + 1] };
    assert_eq!(too_many.encode(), Err(DecodeError::TooLong));
    let mut declared = vec![0u8; 32];
    declared.extend_from_slice(&((MAX_TOKEN_IDS + 1) as u16).to_be_bytes());
    assert_eq!(EmbedInput::decode(&declared), Err(DecodeError::TooLong));
    // The largest sealed input fits an Embed request.
    let largest = EmbedInput { reply_public_key: [9; 32], token_ids: vec![1; MAX_TOKEN_IDS] };
    assert!(largest.encode().unwrap().len() + 16 <= MAX_SEALED_LEN);
}
