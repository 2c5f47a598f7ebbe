//! A simulated PSP: it answers SNP guest messages as the firmware does. It decrypts requests with VMPCK0, refuses a sequence number it has seen (or a lower one), and
//! answers MSG_REPORT_REQ with a report of the real layout (VERSION 2, ECDSA P-384 with SHA-384) carrying the
//! request's REPORT_DATA, signed by a test VCEK, under the next sequence number.

use p384::ecdsa::signature::hazmat::PrehashSigner;
use p384::ecdsa::{Signature, SigningKey};
use sha2::{Digest, Sha384};

use protocol::report::{REPORT_LEN, SIGNATURE_ALGO_ECDSA_P384_SHA384, SIGNATURE_OFFSET, policy};
use protocol::snp_guest_message::{MSG_REPORT_REQ, MSG_REPORT_RSP, MessageHeader, protect, report_response, unprotect};

/// The firmware's side of the channel, with what its reports say.
pub struct SimulatedPsp {
    /// VMPCK0.
    pub vmpck0: [u8; 32],
    /// The highest sequence number used so far, in either direction.
    pub last_seqno: u64,
    /// The STATUS of report responses (0: success).
    pub status: u32,
    /// MEASUREMENT.
    pub measurement: [u8; 48],
    /// POLICY.
    pub policy: u64,
    /// HOST_DATA: what the host gave at launch (zero unless it gave something).
    pub host_data: [u8; 32],
    /// REPORTED_TCB, raw.
    pub reported_tcb: [u8; 8],
    /// CHIP_ID.
    pub chip_id: [u8; 64],
    /// The test VCEK that signs reports.
    pub vcek: SigningKey,
}

impl SimulatedPsp {
    /// A PSP with `vmpck0` whose reports measure `measurement` and are signed by `vcek` (SMT allowed, debug and
    /// migration agent off; a Milan-layout TCB: boot loader 3, TEE 0, SNP 8, microcode 115; a made-up CHIP_ID).
    pub fn new(vmpck0: [u8; 32], measurement: [u8; 48], vcek: SigningKey) -> SimulatedPsp {
        SimulatedPsp {
            vmpck0,
            last_seqno: 0,
            status: 0,
            measurement,
            policy: policy::RESERVED_MUST_BE_ONE | policy::SMT,
            host_data: [0; 32],
            reported_tcb: [3, 0, 0, 0, 0, 0, 8, 115],
            chip_id: [0xc1; 64],
            vcek,
        }
    }

    /// Answers one request message, or refuses it as the firmware would (`None`: no response).
    pub fn answer(&mut self, request: &[u8]) -> Option<Vec<u8>> {
        let (header, payload) = unprotect(&self.vmpck0, request).ok()?;
        if header.seqno <= self.last_seqno || header.msg_type != MSG_REPORT_REQ || header.vmpck != 0 {
            return None;
        }
        let report_data: [u8; 64] = payload.get(..64)?.try_into().ok()?;
        // A guest at VMPL0 may ask for a report of any VMPL; this PSP only makes VMPL0 reports.
        if payload.get(64..68)? != [0; 4] {
            return None;
        }
        let response = report_response(self.status, &self.report(&report_data));
        let seqno = header.seqno + 1;
        self.last_seqno = seqno;
        let header = MessageHeader { seqno, msg_type: MSG_REPORT_RSP, msg_sz: 0, ..header };
        protect(&self.vmpck0, header, &response).ok()
    }

    /// A signed report carrying `report_data`.
    pub fn report(&self, report_data: &[u8; 64]) -> [u8; REPORT_LEN] {
        let mut report = [0u8; REPORT_LEN];
        report[0x00..0x04].copy_from_slice(&2u32.to_le_bytes());
        report[0x08..0x10].copy_from_slice(&self.policy.to_le_bytes());
        report[0x34..0x38].copy_from_slice(&SIGNATURE_ALGO_ECDSA_P384_SHA384.to_le_bytes());
        report[0x50..0x90].copy_from_slice(report_data);
        report[0x90..0xc0].copy_from_slice(&self.measurement);
        report[0xc0..0xe0].copy_from_slice(&self.host_data);
        report[0x180..0x188].copy_from_slice(&self.reported_tcb);
        report[0x1a0..0x1e0].copy_from_slice(&self.chip_id);
        self.sign(&mut report);
        report
    }

    /// Signs `report` (again) as the PSP does: ECDSA P-384 over SHA-384 of its first 0x2A0 bytes, R and S
    /// little-endian in 72-byte fields, the rest of SIGNATURE zero. Tests that change a field re-sign with this.
    pub fn sign(&self, report: &mut [u8; REPORT_LEN]) {
        let digest = Sha384::digest(&report[..SIGNATURE_OFFSET]);
        let signature: Signature = self.vcek.sign_prehash(&digest).expect("a 48-byte digest signs");
        let (r, s) = signature.split_bytes();
        report[SIGNATURE_OFFSET..].fill(0);
        for (i, b) in r.iter().rev().enumerate() {
            report[SIGNATURE_OFFSET + i] = *b;
        }
        for (i, b) in s.iter().rev().enumerate() {
            report[SIGNATURE_OFFSET + 72 + i] = *b;
        }
    }
}

#[cfg(test)]
mod tests {
    use protocol::snp_guest_message::{GuestChannel, REPORT_REQ_VERSION, report_request};

    use super::*;

    #[test]
    fn a_sequence_number_seen_before_gets_no_answer() {
        let mut psp = SimulatedPsp::new([0x42; 32], [0xa1; 48], SigningKey::from_slice(&[0x17; 48]).unwrap());
        let mut channel = GuestChannel::new([0x42; 32], 0, 0);
        let request = channel.request(MSG_REPORT_REQ, REPORT_REQ_VERSION, &report_request(&[1; 64], 0)).unwrap();
        channel.response(&psp.answer(&request).unwrap()).unwrap();
        assert!(psp.answer(&request).is_none(), "the PSP answered a replayed request");
        // A guest that reused its numbers (a channel that forgot its counter) is refused the same way.
        let mut forgetful = GuestChannel::new([0x42; 32], 0, 0);
        let reused = forgetful.request(MSG_REPORT_REQ, REPORT_REQ_VERSION, &report_request(&[2; 64], 0)).unwrap();
        assert!(psp.answer(&reused).is_none());
        // Under another VMPCK0: no answer either.
        let mut stranger = GuestChannel::new([0x43; 32], 0, 10);
        let foreign = stranger.request(MSG_REPORT_REQ, REPORT_REQ_VERSION, &report_request(&[3; 64], 0)).unwrap();
        assert!(psp.answer(&foreign).is_none());
    }
}
