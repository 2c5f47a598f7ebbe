//! Plain mode's simulated evidence: an SNP-layout report marked simulated and HMAC-signed with the public simulation
//! key (`protocol::report`). Refused unless the configuration allows simulated evidence.

use protocol::refusal::RefusalCode;
use protocol::report::{ReportError, SnpReport, policy};
use protocol::tee::Tee;

use super::{Verified, Verifier};

/// Verifies simulated reports.
pub struct SimulatedVerifier {
    /// Whether simulated evidence may be trusted at all (`allow_simulated`).
    pub allowed: bool,
}

impl Verifier for SimulatedVerifier {
    fn tee(&self) -> Tee {
        Tee::Plain
    }

    fn verify(&self, evidence: &[u8]) -> Result<Verified, RefusalCode> {
        let report = SnpReport::new(evidence).map_err(|_| RefusalCode::MalformedEvidence)?;
        if !report.is_simulated() {
            // A real report presented as plain-mode evidence.
            return Err(RefusalCode::WrongTee);
        }
        if !self.allowed {
            return Err(RefusalCode::SimulatedNotAllowed);
        }
        report.verify_simulated().map_err(|e| match e {
            ReportError::BadSimulatedSignature => RefusalCode::BadSignature,
            ReportError::Length(_) | ReportError::NotSimulated => RefusalCode::MalformedEvidence,
        })?;
        if report.vmpl() != 0 {
            return Err(RefusalCode::MalformedEvidence);
        }
        Ok(Verified {
            tee: Tee::Plain,
            measurement: report.measurement().to_vec(),
            report_data: *report.report_data(),
            debug: report.policy() & policy::DEBUG != 0,
            host_data: super::snp_host_data(report.host_data()),
            tcb: "simulated".into(),
        })
    }
}
