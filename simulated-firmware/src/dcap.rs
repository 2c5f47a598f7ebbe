//! A simulated Intel DCAP platform: what stands behind a TD quote on a real host, made with keys of our own so that
//! the broker's real TDX verifier (dcap-qvl) can check the simulated TD's quotes end to end.
//!
//! - [`pki`]: Intel's PKI in its real shape. A root CA issues the PCK Platform CA (which issues the platform's PCK
//!   certificate, with the SGX extension naming its FMSPC and TCB) and the TCB-signing certificate. Each CA
//!   publishes a CRL.
//! - [`collateral`]: what Intel's PCS serves for the platform: TCB info (version 3, TDX) and the TD quoting
//!   enclave's identity, signed with the TCB-signing key and dated, plus the two CRLs, in the JSON dcap-qvl reads.
//! - [`quoting_enclave`]: the TD quoting enclave. Its attestation key signs the quote. Its QE report, signed with
//!   the PCK key, binds that key. The PCK chain travels in the quote, as Intel's QE sends it.
//!
//! Every key is a fixed test key: nothing of the simulated platform is secret, and the broker trusts it only when
//! it is given the simulated root CA (`root_ca` in `[tdx]`), never by default.

pub mod collateral;
pub mod pki;
pub mod quoting_enclave;

/// The simulated platform's identity and TCB, which its PCK certificate, the collateral and its quotes all name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlatformTcb {
    /// FMSPC: the platform's family, model, stepping and platform type (a made-up value).
    pub fmspc: [u8; 6],
    /// PCE-ID.
    pub pce_id: [u8; 2],
    /// CPUSVN: the SGX TCB components.
    pub cpu_svn: [u8; 16],
    /// PCESVN.
    pub pce_svn: u16,
    /// TEE_TCB_SVN: the TDX module's SVN (byte 0), its major version (byte 1), then the other TDX components.
    pub tee_tcb_svn: [u8; 16],
    /// The TD quoting enclave's ISVSVN.
    pub qe_svn: u16,
}

/// The simulated platform: up to date against its own collateral. The TDX module is version 1, SVN 3, so the TCB
/// info's module identity `TDX_01` judges it, as on Intel's current platforms.
pub const SIMULATED_PLATFORM: PlatformTcb = PlatformTcb {
    fmspc: [0x5a, 0x4d, 0x50, 0x00, 0x00, 0x00],
    pce_id: [0, 0],
    cpu_svn: [2, 2, 2, 2, 3, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0],
    pce_svn: 11,
    tee_tcb_svn: [3, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    qe_svn: 4,
};

/// The TD quoting enclave's identity (Intel SGX REPORT fields), which the QE identity collateral names.
pub mod quoting_enclave_identity {
    /// MRSIGNER: the key that signed the simulated QE (made up; Intel's is its own).
    pub const MRSIGNER: [u8; 32] = [0x9e; 32];
    /// ISVPRODID of a TD quoting enclave.
    pub const ISVPRODID: u16 = 2;
    /// ATTRIBUTES: INIT and MODE64BIT, not DEBUG (SGX ATTRIBUTES, byte 0).
    pub const ATTRIBUTES: [u8; 16] = [0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    /// MISCSELECT.
    pub const MISCSELECT: u32 = 0;
}

/// What the platform's TDX module reports about itself (TEE_TCB_INFO): MRSIGNERSEAM is zero for Intel's own
/// module, and the TCB info's `tdxModule` says so.
pub const MRSIGNERSEAM: [u8; 48] = [0; 48];
/// MRSEAM: the module's measurement (made up).
pub const MRSEAM: [u8; 48] = [0x5e; 48];

/// A span of time in seconds since the Unix epoch: from `issued`, valid until `next_update`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dates {
    /// When it was issued.
    pub issued: u64,
    /// When it must be replaced.
    pub next_update: u64,
}

impl Dates {
    /// Issued an hour before `now` and valid 30 days, as Intel's PCS dates the TCB info, QE identity and PCK CRL.
    pub fn current(now: u64) -> Dates {
        Dates { issued: now.saturating_sub(3600), next_update: now + 30 * 24 * 3600 }
    }
}

#[cfg(test)]
mod tests;
