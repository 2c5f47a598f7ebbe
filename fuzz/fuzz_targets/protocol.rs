//! Fuzzes the decoders of `protocol` that read bytes from outside the guest or the broker: key-dance messages and
//! the client service's requests and replies (each with a re-encode round trip), an Infer's and an Embed's plaintext and
//! a result's values (round trips too), frames (with the bound), the SNP report view (with the simulated signature
//! check), the sealed blob's header and chunks (under a fixed key, no chunk may open), and SNP guest-message
//! responses (which must never authenticate and must retire the key). The first byte picks the decoder (3 and 7,
//! once the in-image sealed model's, now reach the report view).
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::frame::{MAX_FRAME_LEN, read_frame};
use protocol::message::Message;
use protocol::report::SnpReport;
use protocol::sealed_blob::{BlobHeader, ChunkOpener, HEADER_LEN};
use protocol::service::{EmbedInput, InferInput, ServiceReply, ServiceRequest, decode_values, encode_values};
use protocol::snp_guest_message::{
    GuestChannel, MSG_REPORT_REQ, MessageHeader, REPORT_REQ_VERSION, report_from_response, report_request,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else { return };
    match selector % 10 {
        0 => {
            if let Ok(message) = Message::decode(data) {
                let encoded = message.encode().expect("a decoded message encodes");
                assert_eq!(encoded, data, "decoding is exact, so re-encoding gives the same bytes");
            }
        }
        1 => {
            let mut at = 0;
            let limit = usize::from(data.first().copied().unwrap_or(0)) * 256;
            let _ = read_frame(limit, |buf: &mut [u8]| -> Result<(), ()> {
                let end = at + buf.len();
                buf.copy_from_slice(data.get(at..end).ok_or(())?);
                at = end;
                Ok(())
            })
            .map(|body| assert!(body.len() <= limit.min(MAX_FRAME_LEN)));
        }
        4 => {
            if let Ok(request) = ServiceRequest::decode(data) {
                assert_eq!(request.encode().expect("a decoded request encodes"), data, "decoding is exact");
            }
        }
        5 => {
            if let Ok(reply) = ServiceReply::decode(data) {
                assert_eq!(reply.encode().expect("a decoded reply encodes"), data, "decoding is exact");
            }
        }
        6 => {
            if let Ok(input) = InferInput::decode(data) {
                assert_eq!(input.encode().expect("a decoded input encodes"), data, "decoding is exact");
            }
            if let Ok(input) = EmbedInput::decode(data) {
                assert_eq!(input.encode().expect("a decoded input encodes"), data, "decoding is exact");
            }
            if let Ok(values) = decode_values(data) {
                assert_eq!(encode_values(&values).expect("decoded values encode"), data, "decoding is exact");
            }
        }
        8 => {
            // What the hypervisor hands back as the PSP's response page.
            let _ = (MessageHeader::decode(data), report_from_response(data));
            let mut channel = GuestChannel::new([0x5a; 32], 0, 0);
            let _ = channel.request(MSG_REPORT_REQ, REPORT_REQ_VERSION, &report_request(&[0; 64], 0));
            assert!(channel.response(data).is_err(), "a fuzzed response authenticated");
            assert!(channel.is_retired());
        }
        9 => {
            let Some(header) = data.get(..HEADER_LEN) else { return };
            let Ok(header) = BlobHeader::parse(header) else { return };
            assert!(header.sealed_len() >= HEADER_LEN as u64 + header.plaintext_len);
            // Under a fixed key no chunk may open; each attempt on a fresh opener (a failure spends one).
            for chunk in header.sealed_chunks(data) {
                let mut opener = ChunkOpener::new(header, &[0x5a; 32]);
                assert!(opener.open_next(&mut chunk.to_vec()).is_err(), "a fuzzed chunk opened");
            }
        }
        _ => {
            if let Ok(report) = SnpReport::new(data) {
                let _ = (report.measurement(), report.report_data(), report.policy(), report.vmpl());
                let _ = report.verify_simulated();
            }
        }
    }
});
