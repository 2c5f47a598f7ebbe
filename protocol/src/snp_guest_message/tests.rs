//! The guest's side of the message protocol. The firmware's side here is only what the ABI says a response is (the
//! request decrypted, a report response encrypted under the next sequence number); the simulated PSP with its
//! replay rules is in `simulated-firmware`, where the guest's attester meets it.

use super::*;
use crate::report::{SnpReport, simulated_report};

const VMPCK0: [u8; 32] = [0x42; 32];

/// Answers a report request as the firmware does, with STATUS `status`.
struct Firmware {
    status: u32,
}

fn psp() -> Firmware {
    Firmware { status: 0 }
}

impl Firmware {
    fn answer(&mut self, request: &[u8]) -> Option<Vec<u8>> {
        let (header, payload) = unprotect(&VMPCK0, request).ok()?;
        let report_data: [u8; 64] = payload.get(..64)?.try_into().ok()?;
        let response = report_response(self.status, &simulated_report(&[0xa1; 48], &report_data, 0x30000));
        let header = MessageHeader { seqno: header.seqno + 1, msg_type: MSG_REPORT_RSP, ..header };
        protect(&VMPCK0, header, &response).ok()
    }
}

fn ask(channel: &mut GuestChannel, psp: &mut Firmware, data: u8) -> Result<[u8; 64], GuestMessageError> {
    let request = channel.request(MSG_REPORT_REQ, REPORT_REQ_VERSION, &report_request(&[data; 64], 0))?;
    let response = psp.answer(&request).expect("the PSP answers");
    let payload = channel.response(&response)?;
    let report = SnpReport::new(report_from_response(&payload)?).expect("a report");
    Ok(*report.report_data())
}

#[test]
fn reports_carry_the_requested_data_and_sequence_numbers_advance_by_two() {
    let (mut channel, mut psp) = (GuestChannel::new(VMPCK0, 0, 0), psp());
    for (i, data) in [1u8, 2, 3].into_iter().enumerate() {
        assert_eq!(ask(&mut channel, &mut psp, data).unwrap(), [data; 64]);
        assert_eq!(channel.last_seqno, 2 * (i as u64 + 1));
    }
}

#[test]
fn the_header_matches_the_abi_byte_for_byte() {
    let header = MessageHeader { seqno: 0x0102_0304_0506_0708, msg_type: 5, msg_version: 1, msg_sz: 0x60, vmpck: 0 };
    let bytes = header.encode();
    assert_eq!(&bytes[0x20..0x28], &[8, 7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(&bytes[0x30..0x38], &[1, 1, 0x60, 0, 5, 1, 0x60, 0]);
    assert_eq!(MessageHeader::decode(&bytes), Ok(header));
    let request = report_request(&[0xee; 64], 3);
    assert_eq!((&request[..64], &request[64..68], &request[68..]), (&[0xee; 64][..], &[3, 0, 0, 0][..], &[0; 28][..]));
}

#[test]
fn a_replayed_response_is_refused_and_retires_the_key() {
    let (mut channel, mut psp) = (GuestChannel::new(VMPCK0, 0, 0), psp());
    let first = channel.request(MSG_REPORT_REQ, REPORT_REQ_VERSION, &report_request(&[1; 64], 0)).unwrap();
    let old_response = psp.answer(&first).unwrap();
    channel.response(&old_response).unwrap();
    let second = channel.request(MSG_REPORT_REQ, REPORT_REQ_VERSION, &report_request(&[2; 64], 0)).unwrap();
    assert_eq!(channel.response(&old_response).unwrap_err(), GuestMessageError::NotTheResponse);
    assert!(channel.is_retired());
    // Even the genuine answer is not read now, and no new request can be made.
    let genuine = psp.answer(&second).unwrap();
    assert_eq!(channel.response(&genuine).unwrap_err(), GuestMessageError::Retired);
    assert_eq!(channel.request(MSG_REPORT_REQ, 1, &[0; 96]).unwrap_err(), GuestMessageError::Retired);
}

#[test]
fn every_flipped_bit_of_a_response_is_refused() {
    let (channel, mut psp) = (GuestChannel::new(VMPCK0, 0, 0), psp());
    let mut template = channel;
    let request = template.request(MSG_REPORT_REQ, REPORT_REQ_VERSION, &report_request(&[1; 64], 0)).unwrap();
    let response = psp.answer(&request).unwrap();
    // The tag, the authenticated header, the payload; the reserved bytes 0x28..0x30 are neither (the ABI leaves
    // them out of the AAD), and the unused 16 bytes of authtag are ignored.
    let checked = (0..TAG_LEN).chain(0x20..0x28).chain(AAD_OFFSET..response.len()).step_by(7);
    for index in checked {
        let mut channel = GuestChannel::new(VMPCK0, 0, 0);
        channel.request(MSG_REPORT_REQ, REPORT_REQ_VERSION, &report_request(&[1; 64], 0)).unwrap();
        let mut corrupted = response.clone();
        corrupted[index] ^= 0x10;
        assert!(channel.response(&corrupted).is_err(), "a flip at {index:#x} went unnoticed");
        assert!(channel.is_retired());
    }
}

#[test]
fn truncated_responses_are_refused() {
    let mut psp = psp();
    let mut channel = GuestChannel::new(VMPCK0, 0, 0);
    let request = channel.request(MSG_REPORT_REQ, REPORT_REQ_VERSION, &report_request(&[1; 64], 0)).unwrap();
    let response = psp.answer(&request).unwrap();
    for len in [0, 1, HEADER_LEN - 1, HEADER_LEN, response.len() - 1] {
        let mut channel = GuestChannel::new(VMPCK0, 0, 0);
        channel.request(MSG_REPORT_REQ, REPORT_REQ_VERSION, &report_request(&[1; 64], 0)).unwrap();
        assert!(channel.response(&response[..len]).is_err(), "{len} bytes accepted");
    }
}

#[test]
fn a_response_of_the_wrong_type_version_or_key_is_refused() {
    let request_header = |channel: &mut GuestChannel| {
        let request = channel.request(MSG_REPORT_REQ, REPORT_REQ_VERSION, &report_request(&[1; 64], 0)).unwrap();
        MessageHeader::decode(&request).unwrap()
    };
    let payload = [0u8; REPORT_RSP_LEN];
    for change in [
        |h: &mut MessageHeader| h.msg_type = MSG_REPORT_REQ,
        |h: &mut MessageHeader| h.msg_version = 2,
        |h: &mut MessageHeader| h.vmpck = 1,
        |h: &mut MessageHeader| h.seqno += 2,
    ] {
        let mut channel = GuestChannel::new(VMPCK0, 0, 0);
        let mut header = request_header(&mut channel);
        header.seqno += 1;
        header.msg_type = MSG_REPORT_RSP;
        change(&mut header);
        let response = protect(&VMPCK0, header, &payload).unwrap();
        assert!(channel.response(&response).is_err());
        assert!(channel.is_retired());
    }
    // Under another key: forged.
    let mut channel = GuestChannel::new(VMPCK0, 0, 0);
    let mut header = request_header(&mut channel);
    (header.seqno, header.msg_type) = (header.seqno + 1, MSG_REPORT_RSP);
    let forged = protect(&[0x43; 32], header, &payload).unwrap();
    assert_eq!(channel.response(&forged).unwrap_err(), GuestMessageError::Forged);
}

#[test]
fn a_firmware_error_or_a_wrong_report_size_yields_no_report() {
    let mut psp = psp();
    psp.status = 0x16;
    let mut channel = GuestChannel::new(VMPCK0, 0, 0);
    assert_eq!(ask(&mut channel, &mut psp, 1).unwrap_err(), GuestMessageError::FirmwareStatus(0x16));
    let mut payload = [0u8; REPORT_RSP_LEN];
    payload[4..8].copy_from_slice(&0x4a1u32.to_le_bytes());
    assert_eq!(report_from_response(&payload).unwrap_err(), GuestMessageError::Malformed);
    assert_eq!(report_from_response(&payload[1..]).unwrap_err(), GuestMessageError::Malformed);
}

#[test]
fn one_request_at_a_time_and_busy_means_the_same_bytes_again() {
    let mut channel = GuestChannel::new(VMPCK0, 0, 0);
    let request = channel.request(MSG_REPORT_REQ, REPORT_REQ_VERSION, &report_request(&[1; 64], 0)).unwrap();
    let again = channel.request(MSG_REPORT_REQ, REPORT_REQ_VERSION, &report_request(&[1; 64], 0));
    assert_eq!(again.unwrap_err(), GuestMessageError::RequestPending);
    // The hypervisor said busy: the guest resends `request` unchanged, and the PSP answers it once.
    let mut psp = psp();
    let response = psp.answer(&request).unwrap();
    assert!(channel.response(&response).is_ok());
    assert_eq!(channel.response(&response).unwrap_err(), GuestMessageError::NoRequestPending);
    assert!(!channel.is_retired());
}

#[test]
fn sequence_numbers_never_wrap() {
    let mut channel = GuestChannel::new(VMPCK0, 0, u64::MAX - 1);
    assert_eq!(channel.request(MSG_REPORT_REQ, 1, &[0; 96]).unwrap_err(), GuestMessageError::Retired);
    assert!(channel.is_retired());
    let oversized = GuestChannel::new(VMPCK0, 0, 0).request(MSG_REPORT_REQ, 1, &[0; MAX_PAYLOAD_LEN + 1]);
    assert_eq!(oversized.unwrap_err(), GuestMessageError::PayloadTooLarge);
}
