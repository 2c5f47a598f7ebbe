//! The guest's SNP attester (`loader::SnpAttester`) against the simulated PSP, through a hypervisor that can be
//! busy, fail, tamper or replay.

use loader::snp_attester::{GuestRequest, GuestRequestError, MAX_BUSY_RETRIES, MESSAGE_PAGE_LEN, SnpAttester};
use loader::{AttestError, Attester};
use p384::ecdsa::SigningKey;
use protocol::report::SnpReport;
use protocol::tee::Tee;
use simulated_firmware::SimulatedPsp;

const VMPCK0: [u8; 32] = [0x42; 32];

/// The hypervisor between guest and PSP: `busy` answers first, then a failure or a change to the response.
struct Hypervisor {
    psp: SimulatedPsp,
    busy: u32,
    fail: Option<u64>,
    tamper: Option<usize>,
    requests_seen: Vec<Vec<u8>>,
}

impl Hypervisor {
    fn honest() -> Hypervisor {
        let psp = SimulatedPsp::new(VMPCK0, [0xa1; 48], SigningKey::from_slice(&[0x17; 48]).unwrap());
        Hypervisor { psp, busy: 0, fail: None, tamper: None, requests_seen: Vec::new() }
    }
}

impl GuestRequest for Hypervisor {
    fn exchange(&mut self, request: &[u8], response: &mut [u8; MESSAGE_PAGE_LEN]) -> Result<(), GuestRequestError> {
        self.requests_seen.push(request.to_vec());
        if self.busy > 0 {
            self.busy -= 1;
            return Err(GuestRequestError::Busy);
        }
        if let Some(code) = self.fail {
            return Err(GuestRequestError::Failed(code));
        }
        let answer = self.psp.answer(request).ok_or(GuestRequestError::Failed(0x27))?;
        response[..answer.len()].copy_from_slice(&answer);
        if let Some(index) = self.tamper {
            response[index] ^= 1;
        }
        Ok(())
    }
}

#[test]
fn evidence_is_a_report_of_the_requested_data_and_each_request_has_its_own_numbers() {
    let mut attester = SnpAttester::new(VMPCK0, 0, Hypervisor::honest());
    for data in [1u8, 2, 3] {
        let evidence = attester.evidence(&[data; 64]).unwrap();
        let report = SnpReport::new(&evidence).unwrap();
        assert_eq!((report.report_data(), report.measurement()), (&[data; 64], &[0xa1; 48]));
    }
    assert_eq!(attester.tee(), Tee::Snp);
    assert_eq!(attester.transport().psp.last_seqno, 6);
}

#[test]
fn busy_means_the_same_bytes_again_within_the_bound() {
    let mut hypervisor = Hypervisor::honest();
    hypervisor.busy = 3;
    let mut attester = SnpAttester::new(VMPCK0, 0, hypervisor);
    attester.evidence(&[1; 64]).unwrap();
    let seen = &attester.transport().requests_seen;
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|r| r == &seen[0]), "a resent request changed");
    // Busy forever: bounded, and the key is retired.
    let mut hypervisor = Hypervisor::honest();
    hypervisor.busy = u32::MAX;
    let mut attester = SnpAttester::new(VMPCK0, 0, hypervisor);
    assert_eq!(attester.evidence(&[1; 64]).unwrap_err(), AttestError::Platform);
    assert_eq!(attester.transport().requests_seen.len() as u32, MAX_BUSY_RETRIES + 1);
    assert!(attester.is_retired());
}

#[test]
fn a_failed_or_tampered_exchange_retires_the_key_for_the_rest_of_the_boot() {
    let mut failing = Hypervisor::honest();
    failing.fail = Some(0x16);
    let mut tampering = Hypervisor::honest();
    tampering.tamper = Some(0x70);
    for hypervisor in [failing, tampering] {
        let mut attester = SnpAttester::new(VMPCK0, 0, hypervisor);
        assert_eq!(attester.evidence(&[1; 64]).unwrap_err(), AttestError::Platform);
        assert!(attester.is_retired());
        // An honest hypervisor afterwards changes nothing: no request leaves the guest.
        (attester.transport_mut().fail, attester.transport_mut().tamper) = (None, None);
        let sent = attester.transport().requests_seen.len();
        assert_eq!(attester.evidence(&[1; 64]).unwrap_err(), AttestError::Platform);
        assert_eq!(attester.transport().requests_seen.len(), sent);
    }
}

#[test]
fn a_psp_error_status_gives_no_evidence() {
    let mut hypervisor = Hypervisor::honest();
    hypervisor.psp.status = 0x16;
    let mut attester = SnpAttester::new(VMPCK0, 0, hypervisor);
    assert_eq!(attester.evidence(&[1; 64]).unwrap_err(), AttestError::Platform);
}

#[test]
fn a_replayed_old_response_is_not_evidence() {
    // The hypervisor answers the second request with the first response.
    struct Replaying(Hypervisor, Option<Vec<u8>>);
    impl GuestRequest for Replaying {
        fn exchange(&mut self, request: &[u8], response: &mut [u8; MESSAGE_PAGE_LEN]) -> Result<(), GuestRequestError> {
            match self.1.clone() {
                Some(old) => response[..old.len()].copy_from_slice(&old),
                None => {
                    self.0.exchange(request, response)?;
                    self.1 = Some(response.to_vec());
                }
            }
            Ok(())
        }
    }
    let mut attester = SnpAttester::new(VMPCK0, 0, Replaying(Hypervisor::honest(), None));
    attester.evidence(&[1; 64]).unwrap();
    assert_eq!(attester.evidence(&[2; 64]).unwrap_err(), AttestError::Platform);
    assert!(attester.is_retired());
}
