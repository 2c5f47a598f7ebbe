//! Fuzzes the decoders of `protocol` that read bytes from outside the guest or the broker: messages (with a
//! re-encode round trip), frames (with the bound), the SNP report view (with the simulated signature check), and
//! the sealed model's parser (with an open under a fixed key, which must fail for anything the fuzzer makes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::frame::{MAX_FRAME_LEN, read_frame};
use protocol::message::Message;
use protocol::report::SnpReport;
use protocol::sealed_model::SealedModel;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else { return };
    match selector % 4 {
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
        3 => {
            if let Ok(sealed) = SealedModel::parse(data) {
                assert!(sealed.open(&[0x5a; 32]).is_err(), "a fuzzed blob opened");
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
