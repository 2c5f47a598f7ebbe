//! The guest's TDX quote path (`loader::TdxAttester`) against the simulated TDX module and VMM: the GetQuote buffer
//! protocol, status handling, the polling bound, sizes, and what the broker's verifier makes of the result.

use loader::{AttestError, Attester, TdxAttester, TdxCalls};
use protocol::tdx::TDREPORT_LEN;
use protocol::tdx::quote_len;
use simulated_firmware::{QuoteService, SimulatedTdx};

/// The kernel's side, simulated: calls go to the simulated platform, the buffer is copied both ways.
struct Platform(SimulatedTdx);

impl TdxCalls for Platform {
    fn report(&mut self, report_data: &[u8; 64]) -> Result<[u8; TDREPORT_LEN], u64> {
        Ok(self.0.report(report_data))
    }
    fn buffer_len(&self) -> usize {
        self.0.buffer.len()
    }
    fn write_buffer(&mut self, bytes: &[u8]) {
        self.0.buffer[..bytes.len()].copy_from_slice(bytes);
    }
    fn get_quote(&mut self) -> Result<(), u64> {
        self.0.get_quote()
    }
    fn read_buffer(&mut self, into: &mut [u8]) {
        self.0.poll();
        into.copy_from_slice(&self.0.buffer[..into.len()]);
    }
    fn wait(&mut self) {
        self.0.waits += 1;
    }
}

const MRTD: [u8; 48] = [0x3d; 48];

fn attester(service: QuoteService) -> TdxAttester<Platform> {
    TdxAttester::new(Platform(SimulatedTdx::new(MRTD, service, 8 * 4096)))
}

#[test]
fn a_quote_arrives_after_some_polls_and_carries_the_report_data() {
    let mut attester = attester(QuoteService::AnswersAfter(5));
    let quote = attester.evidence(&[0x51; 64]).unwrap();
    assert_eq!(quote_len::of(&quote), Some(quote.len()));
    assert_eq!(quote_len::report_data(&quote), Some(&[0x51; 64]));
    assert_eq!(&quote[48 + 136..48 + 184], &MRTD, "MRTD in the quote body");
    assert_eq!(attester.calls().0.waits, 5);
}

#[test]
fn padding_after_the_quote_is_dropped() {
    let mut platform = SimulatedTdx::new(MRTD, QuoteService::AnswersAfter(0), 8 * 4096);
    platform.padding = 70;
    let mut attester = TdxAttester::new(Platform(platform));
    let quote = attester.evidence(&[0x52; 64]).unwrap();
    assert_eq!(quote_len::of(&quote), Some(quote.len()));
}

#[test]
fn every_failure_of_the_vmm_or_the_qgs_gives_no_evidence() {
    for service in [
        QuoteService::Fails,
        QuoteService::Unavailable,
        QuoteService::Ignores,
        QuoteService::RefusesCall(0x1),
        QuoteService::Overflows,
        QuoteService::AnswersForAnotherTd,
    ] {
        assert_eq!(attester(service).evidence(&[0x53; 64]), Err(AttestError::Platform), "{service:?}");
    }
}

#[test]
fn a_hanging_service_is_given_up_after_the_bound() {
    let mut attester = attester(QuoteService::Hangs);
    assert_eq!(attester.evidence(&[0x54; 64]), Err(AttestError::Platform));
    assert_eq!(attester.calls().0.waits, loader::tdx_attester::MAX_POLLS);
}

#[test]
fn a_buffer_too_small_for_the_request_gives_no_evidence_and_sends_nothing() {
    let mut attester = TdxAttester::new(Platform(SimulatedTdx::new(MRTD, QuoteService::AnswersAfter(0), 1000)));
    assert_eq!(attester.evidence(&[0x55; 64]), Err(AttestError::Platform));
    assert!(attester.calls().0.buffer.iter().all(|&b| b == 0));
}

#[test]
fn a_report_for_other_data_is_not_evidence() {
    struct Lying(Platform);
    impl TdxCalls for Lying {
        fn report(&mut self, _: &[u8; 64]) -> Result<[u8; TDREPORT_LEN], u64> {
            Ok(self.0.0.report(&[0; 64]))
        }
        fn buffer_len(&self) -> usize {
            self.0.buffer_len()
        }
        fn write_buffer(&mut self, bytes: &[u8]) {
            self.0.write_buffer(bytes)
        }
        fn get_quote(&mut self) -> Result<(), u64> {
            self.0.get_quote()
        }
        fn read_buffer(&mut self, into: &mut [u8]) {
            self.0.read_buffer(into)
        }
        fn wait(&mut self) {}
    }
    let platform = Platform(SimulatedTdx::new(MRTD, QuoteService::AnswersAfter(0), 8 * 4096));
    assert_eq!(TdxAttester::new(Lying(platform)).evidence(&[0x56; 64]), Err(AttestError::Platform));
}
