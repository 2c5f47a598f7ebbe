//! The TDX attester: a TDREPORT from the TDX module (TDG.MR.REPORT) carrying the report data, turned into a quote
//! by the VMM's quote-generation service through the GetQuote TDVMCALL (GHCI 1.5) and a shared buffer, polled a
//! bounded number of times (QEMU ignores malformed requests and gives up after 30 s: DESIGN.md §9).
//!
//! The buffer is shared with the VMM, so it is only ever copied: the request is written into it whole, and each
//! poll copies it out before anything reads it ([`TdxCalls`]).

use alloc::vec;
use alloc::vec::Vec;

use protocol::tdx::get_quote::{QuoteStatus, read_response, write_request};
use protocol::tdx::{TDREPORT_LEN, TdReport, quote_len};
use protocol::tee::Tee;

use crate::attester::{AttestError, Attester};

/// How often the buffer is polled before the request is given up. With the kernel's 10 ms wait, about 40 s: more
/// than QEMU's own 30 s limit.
pub const MAX_POLLS: u32 = 4000;

/// What the attester needs from the platform (the kernel: TDCALL and TDVMCALL, shared pages, a timer).
pub trait TdxCalls {
    /// TDG.MR.REPORT: the TDREPORT carrying `report_data`, or the TDX module's error code.
    fn report(&mut self, report_data: &[u8; 64]) -> Result<[u8; TDREPORT_LEN], u64>;
    /// The shared buffer's size.
    fn buffer_len(&self) -> usize;
    /// Copies `bytes` (at most [`TdxCalls::buffer_len`]) to the start of the shared buffer.
    fn write_buffer(&mut self, bytes: &[u8]);
    /// TDG.VP.VMCALL<GetQuote> with the shared buffer; the VMM's error code if it refuses the call.
    fn get_quote(&mut self) -> Result<(), u64>;
    /// Copies the shared buffer into `into` (its length).
    fn read_buffer(&mut self, into: &mut [u8]);
    /// Waits before the next poll.
    fn wait(&mut self);
}

/// Quotes for a TD.
pub struct TdxAttester<C> {
    calls: C,
}

impl<C: TdxCalls> TdxAttester<C> {
    /// An attester over `calls`.
    pub fn new(calls: C) -> Self {
        Self { calls }
    }

    /// The platform calls (tests inspect them).
    pub fn calls(&self) -> &C {
        &self.calls
    }
}

impl<C: TdxCalls> Attester for TdxAttester<C> {
    fn tee(&self) -> Tee {
        Tee::Tdx
    }

    fn evidence(&mut self, report_data: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
        let report = self.calls.report(report_data).map_err(|_| AttestError::Platform)?;
        let view = TdReport::new(&report).ok_or(AttestError::Platform)?;
        if view.report_data() != report_data {
            return Err(AttestError::Platform);
        }
        let mut buffer = vec![0u8; self.calls.buffer_len()];
        write_request(&mut buffer, &report).ok_or(AttestError::Platform)?;
        self.calls.write_buffer(&buffer);
        self.calls.get_quote().map_err(|_| AttestError::Platform)?;
        for _ in 0..MAX_POLLS {
            self.calls.read_buffer(&mut buffer);
            match read_response(&buffer) {
                QuoteStatus::InFlight => self.calls.wait(),
                QuoteStatus::Done(quote) => return quote_for(quote, report_data),
                QuoteStatus::Failed | QuoteStatus::Unavailable | QuoteStatus::Malformed => break,
            }
        }
        Err(AttestError::Platform)
    }

    /// MRCONFIGID from a TDREPORT (the TDX module's own, no quote needed).
    fn launch_binding(&mut self) -> Result<[u8; 48], AttestError> {
        let report = self.calls.report(&[0; 64]).map_err(|_| AttestError::Platform)?;
        let view = TdReport::new(&report).ok_or(AttestError::Platform)?;
        Ok(*view.mr_config_id())
    }
}

/// The quote alone (the VMM may leave padding after it), if it is a TD quote carrying `report_data`.
fn quote_for(answer: &[u8], report_data: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
    let len = quote_len::of(answer).ok_or(AttestError::Platform)?;
    let quote = &answer[..len];
    if quote_len::report_data(quote) != Some(report_data) {
        return Err(AttestError::Platform);
    }
    Ok(quote.to_vec())
}

// Tested against the simulated TDX module in simulated-firmware/tests/tdx_attester.rs.
