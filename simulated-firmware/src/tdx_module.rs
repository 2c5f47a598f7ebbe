//! A simulated TDX platform for the guest's quote path: the TDX module's TDG.MR.REPORT (a TDREPORT of the real
//! layout carrying the module's TCB, the TD's measurements and the report data) and a VMM with a quote-generation
//! service answering GetQuote in the shared buffer, after a configurable number of polls, or failing as QEMU and a
//! QGS can.
//!
//! Its quotes are DCAP quotes, version 4, signed by the simulated platform's quoting enclave under the simulated
//! Intel PKI ([`crate::dcap`]): the broker's real verifier accepts them when given that PKI's root CA and
//! collateral, and refuses them otherwise.

use protocol::tdx::get_quote::{HEADER_LEN, STATUS_ERROR, STATUS_IN_FLIGHT, STATUS_QGS_UNAVAILABLE, VERSION};
use protocol::tdx::{TDREPORT_LEN, offset};

use crate::dcap::pki::SimulatedIntelPki;
use crate::dcap::quoting_enclave::{QuotingEnclave, TD_QUOTE_BODY_LEN};
use crate::dcap::{MRSEAM, MRSIGNERSEAM, SIMULATED_PLATFORM};

/// TEE_TCB_INFO in TDREPORT_STRUCT (Intel TDX module ABI, "TEE_TCB_INFO", at offset 256): VALID (8 bytes), then
/// TEE_TCB_SVN, MRSEAM, MRSIGNERSEAM and ATTRIBUTES, the module's part of a quote's body.
mod tee_tcb_info {
    pub const VALID: usize = 256;
    pub const TEE_TCB_SVN: usize = VALID + 8;
    pub const MRSEAM: usize = TEE_TCB_SVN + 16;
    pub const MRSIGNERSEAM: usize = MRSEAM + 48;
    /// SEAMATTRIBUTES ends the quoted part.
    pub const END: usize = MRSIGNERSEAM + 48 + 8;
}

/// How the simulated VMM answers GetQuote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuoteService {
    /// A quote after this many polls see "in flight".
    AnswersAfter(u32),
    /// Never done (a QGS that hangs): in flight forever.
    Hangs,
    /// Status "error".
    Fails,
    /// Status "QGS unavailable".
    Unavailable,
    /// Ignores the call and leaves the buffer as the TD wrote it (QEMU with a malformed request).
    Ignores,
    /// Refuses the TDVMCALL itself with this code.
    RefusesCall(u64),
    /// Answers with an out_len beyond the buffer.
    Overflows,
    /// Answers with another TD's quote (other report data).
    AnswersForAnotherTd,
}

/// The TDX module and the VMM, with what the TD's reports say.
pub struct SimulatedTdx {
    /// MRTD.
    pub mrtd: [u8; 48],
    /// ATTRIBUTES.
    pub attributes: u64,
    /// XFAM.
    pub xfam: u64,
    /// MRCONFIGID, as the host configured the TD (zero unless set).
    pub mr_config_id: [u8; 48],
    /// How GetQuote is answered.
    pub service: QuoteService,
    /// Zero bytes the VMM leaves after the quote (a QGS's padding).
    pub padding: usize,
    /// The shared buffer.
    pub buffer: Vec<u8>,
    /// Polls left before the answer appears.
    polls_left: u32,
    /// How many times the TD waited.
    pub waits: u32,
    /// The platform's quoting enclave.
    quoting_enclave: QuotingEnclave,
}

impl SimulatedTdx {
    /// A TD measuring `mrtd`, with QEMU's default ATTRIBUTES (SEPT_VE_DISABLE) and x87/SSE/AVX XFAM, whose quotes
    /// come after `service`'s polls; a shared buffer of `buffer_len` bytes.
    pub fn new(mrtd: [u8; 48], service: QuoteService, buffer_len: usize) -> SimulatedTdx {
        SimulatedTdx {
            mrtd,
            attributes: 1 << 28,
            xfam: 0x7,
            mr_config_id: [0; 48],
            service,
            padding: 0,
            buffer: vec![0; buffer_len],
            polls_left: 0,
            waits: 0,
            quoting_enclave: QuotingEnclave::new(&SimulatedIntelPki::new(&SIMULATED_PLATFORM), &SIMULATED_PLATFORM),
        }
    }

    /// The same platform with its quoting enclave certified by `pki` (a test's PKI, wrong in one way).
    pub fn certified_by(self, pki: &SimulatedIntelPki) -> SimulatedTdx {
        SimulatedTdx { quoting_enclave: QuotingEnclave::new(pki, &SIMULATED_PLATFORM), ..self }
    }

    /// TDG.MR.REPORT.
    pub fn report(&self, report_data: &[u8; 64]) -> [u8; TDREPORT_LEN] {
        use tee_tcb_info as tcb;
        let mut report = [0u8; TDREPORT_LEN];
        report[offset::REPORT_DATA..offset::REPORT_DATA + 64].copy_from_slice(report_data);
        report[tcb::VALID..tcb::VALID + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        report[tcb::TEE_TCB_SVN..tcb::TEE_TCB_SVN + 16].copy_from_slice(&SIMULATED_PLATFORM.tee_tcb_svn);
        report[tcb::MRSEAM..tcb::MRSEAM + 48].copy_from_slice(&MRSEAM);
        report[tcb::MRSIGNERSEAM..tcb::MRSIGNERSEAM + 48].copy_from_slice(&MRSIGNERSEAM);
        report[offset::ATTRIBUTES..offset::ATTRIBUTES + 8].copy_from_slice(&self.attributes.to_le_bytes());
        report[offset::XFAM..offset::XFAM + 8].copy_from_slice(&self.xfam.to_le_bytes());
        report[offset::MRTD..offset::MRTD + 48].copy_from_slice(&self.mrtd);
        report[offset::MRCONFIGID..offset::MRCONFIGID + 48].copy_from_slice(&self.mr_config_id);
        report
    }

    /// The quote a QGS makes of `report`: the TD 1.0 quote body (TEE_TCB_SVN, MRSEAM, MRSIGNERSEAM and
    /// SEAMATTRIBUTES from TEE_TCB_INFO; ATTRIBUTES through RTMR3 from TDINFO; REPORTDATA), signed by the
    /// platform's quoting enclave.
    pub fn quote(&self, report: &[u8; TDREPORT_LEN]) -> Vec<u8> {
        let mut body = Vec::with_capacity(TD_QUOTE_BODY_LEN);
        body.extend_from_slice(&report[tee_tcb_info::TEE_TCB_SVN..tee_tcb_info::END]);
        body.extend_from_slice(&report[offset::ATTRIBUTES..offset::RTMR0 + 4 * 48]);
        body.extend_from_slice(&report[offset::REPORT_DATA..offset::REPORT_DATA + 64]);
        let body: [u8; TD_QUOTE_BODY_LEN] = body.try_into().expect("a TD 1.0 quote body");
        self.quoting_enclave.quote(&body)
    }

    fn set_status(&mut self, status: u64, out_len: u32) {
        self.buffer[8..16].copy_from_slice(&status.to_le_bytes());
        self.buffer[20..24].copy_from_slice(&out_len.to_le_bytes());
    }

    /// GetQuote: checks the request as QEMU does (version 1, a TDREPORT) and starts serving it.
    pub fn get_quote(&mut self) -> Result<(), u64> {
        if let QuoteService::RefusesCall(code) = self.service {
            return Err(code);
        }
        let well_formed = self.buffer.get(..8) == Some(&VERSION.to_le_bytes()[..])
            && self.buffer.get(16..20) == Some(&(TDREPORT_LEN as u32).to_le_bytes()[..]);
        if !well_formed || self.service == QuoteService::Ignores {
            return Ok(());
        }
        self.set_status(STATUS_IN_FLIGHT, 0);
        self.polls_left = match self.service {
            QuoteService::AnswersAfter(polls) => polls,
            _ => 0,
        };
        Ok(())
    }

    /// One poll of the buffer by the TD: the VMM's progress happens here.
    pub fn poll(&mut self) {
        if self.buffer[8..16] != STATUS_IN_FLIGHT.to_le_bytes() {
            return;
        }
        match self.service {
            QuoteService::Hangs => {}
            QuoteService::Fails => self.set_status(STATUS_ERROR, 0),
            QuoteService::Unavailable => self.set_status(STATUS_QGS_UNAVAILABLE, 0),
            QuoteService::Overflows => self.set_status(0, self.buffer.len() as u32),
            _ if self.polls_left > 0 => self.polls_left -= 1,
            _ => {
                let mut report: [u8; TDREPORT_LEN] =
                    self.buffer[HEADER_LEN..HEADER_LEN + TDREPORT_LEN].try_into().unwrap();
                if self.service == QuoteService::AnswersForAnotherTd {
                    report[offset::REPORT_DATA] ^= 1;
                }
                let mut answer = self.quote(&report);
                answer.resize(answer.len() + self.padding, 0);
                self.buffer[HEADER_LEN..HEADER_LEN + answer.len()].copy_from_slice(&answer);
                self.set_status(0, answer.len() as u32);
            }
        }
    }
}
