//! What the sev crate's chain check (signatures only) leaves out, checked here for every ARK -> ASK -> VCEK:
//!
//! - **names**: the ARK is self-issued, the ASK is issued by the ARK's subject, the VCEK by the ASK's subject, and
//!   the VCEK's common name is `SEV-VCEK` (AMD's "VCEK Certificate and KDS Interface Specification": the ARK is
//!   `ARK-<product>`, the ASK `SEV-<product>`, the VCEK `SEV-VCEK`; a VLEK, signed by another key, is `SEV-VLEK`);
//! - **validity**: every certificate's period contains the verifier's time (an explicit input, as for TDX
//!   collateral). The chain's window is the intersection of the three.

use anyhow::{Result, ensure};
use x509_cert::Certificate;
use x509_cert::name::Name;

/// The common name a VCEK certificate carries.
pub const VCEK_COMMON_NAME: &str = "SEV-VCEK";

/// The period a whole chain is valid over, in Unix seconds, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The latest notBefore of the chain.
    pub not_before: u64,
    /// The earliest notAfter of the chain.
    pub not_after: u64,
}

impl Window {
    /// Whether `now` (Unix seconds) lies in the window.
    pub fn contains(&self, now: u64) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

fn common_name(name: &Name) -> Option<String> {
    name.to_string().split(',').find_map(|rdn| rdn.trim().strip_prefix("CN=").map(str::to_string))
}

/// Checks the issuer and subject names along the chain.
pub fn check_names(ark: &Certificate, ask: &Certificate, vcek: &Certificate) -> Result<()> {
    let (ark_tbs, ask_tbs, vcek_tbs) = (&ark.tbs_certificate, &ask.tbs_certificate, &vcek.tbs_certificate);
    ensure!(ark_tbs.issuer == ark_tbs.subject, "the ARK is not self-issued (issuer {})", ark_tbs.issuer);
    ensure!(
        ask_tbs.issuer == ark_tbs.subject,
        "the ASK's issuer {} is not the ARK {}",
        ask_tbs.issuer,
        ark_tbs.subject
    );
    ensure!(
        vcek_tbs.issuer == ask_tbs.subject,
        "the VCEK's issuer {} is not the ASK {}",
        vcek_tbs.issuer,
        ask_tbs.subject
    );
    let name = common_name(&vcek_tbs.subject);
    ensure!(
        name.as_deref() == Some(VCEK_COMMON_NAME),
        "the VCEK's subject {} is not a VCEK ({VCEK_COMMON_NAME})",
        vcek_tbs.subject
    );
    Ok(())
}

/// The window over which every certificate of the chain is valid; refuses a chain whose periods do not overlap.
pub fn window(chain: [&Certificate; 3]) -> Result<Window> {
    let mut window = Window { not_before: 0, not_after: u64::MAX };
    for certificate in chain {
        let validity = &certificate.tbs_certificate.validity;
        window.not_before = window.not_before.max(validity.not_before.to_unix_duration().as_secs());
        window.not_after = window.not_after.min(validity.not_after.to_unix_duration().as_secs());
    }
    ensure!(window.not_before <= window.not_after, "the chain's validity periods do not overlap");
    Ok(window)
}

#[cfg(test)]
mod tests;
