//! A simulated TDX platform for the guest's quote path: the TDX module's TDG.MR.REPORT (a TDREPORT of the real
//! layout carrying the TD's measurements and the report data) and a VMM with a quote-generation service answering
//! GetQuote in the shared buffer, after a configurable number of polls, or failing as QEMU and a QGS can.
//!
//! Its quotes have the real layout (a version-4 TD quote whose body is the TDREPORT's) but no Intel signature: no
//! test can make one, so they are refused by the broker's verifier, which the tests show. The published quotes of
//! dcap-qvl are the signed test data.

use protocol::tdx::get_quote::{HEADER_LEN, STATUS_ERROR, STATUS_IN_FLIGHT, STATUS_QGS_UNAVAILABLE, VERSION};
use protocol::tdx::{TDREPORT_LEN, offset};

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
}

/// A TD quote's header (48 bytes): version 4, ECDSA P-256 attestation key, TEE type TDX.
fn quote_header() -> [u8; 48] {
    let mut header = [0u8; 48];
    header[0..2].copy_from_slice(&4u16.to_le_bytes());
    header[2..4].copy_from_slice(&2u16.to_le_bytes());
    header[4..8].copy_from_slice(&0x81u32.to_le_bytes());
    header
}

impl SimulatedTdx {
    /// A TD measuring `mrtd`, with QEMU's default ATTRIBUTES (SEPT_VE_DISABLE) and x87/SSE/AVX XFAM, whose quotes
    /// come after `service`'s polls; a shared buffer of `buffer_len` bytes.
    pub fn new(mrtd: [u8; 48], service: QuoteService, buffer_len: usize) -> SimulatedTdx {
        SimulatedTdx {
            mrtd,
            attributes: 1 << 28,
            xfam: 0x7,
            service,
            padding: 0,
            buffer: vec![0; buffer_len],
            polls_left: 0,
            waits: 0,
        }
    }

    /// TDG.MR.REPORT.
    pub fn report(&self, report_data: &[u8; 64]) -> [u8; TDREPORT_LEN] {
        let mut report = [0u8; TDREPORT_LEN];
        report[offset::REPORT_DATA..offset::REPORT_DATA + 64].copy_from_slice(report_data);
        report[offset::ATTRIBUTES..offset::ATTRIBUTES + 8].copy_from_slice(&self.attributes.to_le_bytes());
        report[offset::XFAM..offset::XFAM + 8].copy_from_slice(&self.xfam.to_le_bytes());
        report[offset::MRTD..offset::MRTD + 48].copy_from_slice(&self.mrtd);
        report
    }

    /// The quote a QGS would make of `report` (layout only: its signature data is zeros).
    pub fn quote(&self, report: &[u8; TDREPORT_LEN]) -> Vec<u8> {
        // TDREPORT 1.0 body: TEE_TCB_SVN, MRSEAM, MRSIGNERSEAM, SEAMATTRIBUTES (zeros here), then TDINFO's
        // ATTRIBUTES, XFAM, MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG, RTMR0..3, and REPORTDATA.
        let mut body = vec![0u8; 120];
        body.extend_from_slice(&report[offset::ATTRIBUTES..offset::RTMR0 + 4 * 48]);
        body.extend_from_slice(&report[offset::REPORT_DATA..offset::REPORT_DATA + 64]);
        assert_eq!(body.len(), 584, "TDREPORT 1.0 quote body");
        let signature_data = vec![0u8; 128];
        let mut quote = quote_header().to_vec();
        quote.extend_from_slice(&body);
        quote.extend_from_slice(&(signature_data.len() as u32).to_le_bytes());
        quote.extend_from_slice(&signature_data);
        quote
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
