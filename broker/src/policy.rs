//! The evidence policy, one function shared by the broker (before it releases a key) and `ampoule-client` (before
//! it sends a guest anything): the evidence verifies, binds the expected report data, comes from a guest launched
//! without debugging (unless allowed), measures as an allowlisted image of that TEE, and was launched bound to the
//! sealed model that entry names (or to none).

use protocol::refusal::RefusalCode;
use protocol::tee::Tee;

use crate::config::{Allowed, Config};
use crate::verify::{SimulatedVerifier, SnpVerifier, TdxVerifier, Verified, Verifier};

/// What evidence must satisfy.
pub struct Policy {
    /// One verifier per TEE accepted.
    pub verifiers: Vec<Box<dyn Verifier>>,
    /// Accept guests launched with debugging allowed.
    pub allow_debug: bool,
    /// The measurements accepted, each with its TEE (and, for the broker, its key).
    pub allowlist: Vec<Allowed>,
}

impl Policy {
    /// The policy a broker configuration describes.
    pub fn from_config(config: &Config) -> anyhow::Result<Policy> {
        let mut verifiers: Vec<Box<dyn Verifier>> =
            vec![Box::new(SimulatedVerifier { allowed: config.allow_simulated })];
        if let Some(snp) = &config.snp {
            // The chain must be valid now: the system's time, in seconds.
            verifiers.push(Box::new(SnpVerifier::from_config(snp, crate::system_seconds())?));
        }
        if let Some(tdx) = &config.tdx {
            // The collateral must be valid now: the system's time, in seconds (dcap-qvl's unit).
            verifiers.push(Box::new(TdxVerifier::from_config(tdx, crate::system_seconds())?));
        }
        Ok(Policy { verifiers, allow_debug: config.allow_debug, allowlist: config.allowlist()? })
    }

    /// Checks `evidence` of `tee` that must carry `report_data`, in this order: a verifier for the TEE accepts it
    /// (format, signature, simulation allowed), the report data matches, debugging is off (or allowed), the
    /// measurement is allowlisted for this TEE, the launch's HOST_DATA / MRCONFIGID is that entry's model binding.
    /// Returns the facts and the allowlist entry.
    pub fn check(
        &self,
        tee: Tee,
        evidence: &[u8],
        report_data: &[u8; 64],
    ) -> Result<(Verified, &Allowed), RefusalCode> {
        let verified = self.verify(tee, evidence)?;
        let allowed = self.judge(&verified, report_data)?;
        Ok((verified, allowed))
    }

    /// The first step of [`Policy::check`]: a verifier for `tee` accepts the evidence.
    pub fn verify(&self, tee: Tee, evidence: &[u8]) -> Result<Verified, RefusalCode> {
        let verifier = self.verifiers.iter().find(|v| v.tee() == tee).ok_or(RefusalCode::TeeNotSupported)?;
        verifier.verify(evidence)
    }

    /// The other steps of [`Policy::check`], on verified facts.
    pub fn judge(&self, verified: &Verified, report_data: &[u8; 64]) -> Result<&Allowed, RefusalCode> {
        self.judge_launch(verified, report_data)?;
        let mut same = self.allowlist.iter().filter(|a| a.measurement == verified.measurement).peekable();
        same.peek().ok_or(RefusalCode::UnknownMeasurement)?;
        let mut same_tee = same.filter(|a| a.tee == verified.tee).peekable();
        same_tee.peek().ok_or(RefusalCode::WrongTee)?;
        same_tee.find(|a| a.expected_host_data() == verified.host_data).ok_or(RefusalCode::HostDataMismatch)
    }
}

impl Policy {
    /// The checks of [`Policy::judge`] that need no allowlist: the report data matches, debugging is off (or
    /// allowed). A broker whose keys are in the registry checks the launch against the registry's bindings next.
    pub fn judge_launch(&self, verified: &Verified, report_data: &[u8; 64]) -> Result<(), RefusalCode> {
        if &verified.report_data != report_data {
            return Err(RefusalCode::BindingMismatch);
        }
        if verified.debug && !self.allow_debug {
            return Err(RefusalCode::DebugPolicy);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
