//! Why the broker released nothing: one code a refusal, on the wire, in the audit log and in the counters.

/// A refusal reason. The broker sends the code and nothing else.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefusalCode {
    /// The measurement is not in the allowlist.
    UnknownMeasurement = 1,
    /// The nonce was never issued, or was already used (a replay).
    NonceUnknown = 2,
    /// The nonce expired before the evidence arrived.
    NonceExpired = 3,
    /// The nonce was issued to another connection.
    NonceOtherConnection = 4,
    /// The report data does not bind the nonce and the guest's public key.
    BindingMismatch = 5,
    /// The evidence's signature does not verify (tampered, or signed by the wrong key).
    BadSignature = 6,
    /// Simulated evidence, and the policy does not allow it.
    SimulatedNotAllowed = 7,
    /// The guest was launched with debugging allowed.
    DebugPolicy = 8,
    /// The evidence is from another TEE than the session announced, or than the allowlist entry names.
    WrongTee = 9,
    /// The evidence cannot be parsed.
    MalformedEvidence = 10,
    /// A message or frame cannot be parsed, or came out of order.
    MalformedMessage = 11,
    /// A frame exceeds the size limit.
    Oversized = 12,
    /// The requested key is not the one the allowlist binds to this measurement.
    KeyNotForMeasurement = 13,
    /// The guest speaks another protocol version.
    ProtocolVersion = 14,
    /// No verifier for this TEE is configured on the broker.
    TeeNotSupported = 15,
    /// The broker failed internally (the audit log was not writable, ...): fail closed.
    Internal = 16,
    /// The platform's TCB (firmware and microcode versions the report was signed under) is below the minimum.
    TcbTooLow = 17,
    /// The guest policy the guest was launched with is not acceptable (migration agent, SMT, minimum ABI).
    GuestPolicy = 18,
    /// The report was requested from a VMPL other than the one required.
    WrongVmpl = 19,
    /// The launch's HOST_DATA (SNP, plain) or MRCONFIGID (TDX) is not the sealed model's digest the allowlist binds
    /// to this measurement: the guest was launched for another model, or for none.
    HostDataMismatch = 20,
}

impl RefusalCode {
    /// Every code.
    pub const ALL: [RefusalCode; 20] = [
        RefusalCode::UnknownMeasurement,
        RefusalCode::NonceUnknown,
        RefusalCode::NonceExpired,
        RefusalCode::NonceOtherConnection,
        RefusalCode::BindingMismatch,
        RefusalCode::BadSignature,
        RefusalCode::SimulatedNotAllowed,
        RefusalCode::DebugPolicy,
        RefusalCode::WrongTee,
        RefusalCode::MalformedEvidence,
        RefusalCode::MalformedMessage,
        RefusalCode::Oversized,
        RefusalCode::KeyNotForMeasurement,
        RefusalCode::ProtocolVersion,
        RefusalCode::TeeNotSupported,
        RefusalCode::Internal,
        RefusalCode::TcbTooLow,
        RefusalCode::GuestPolicy,
        RefusalCode::WrongVmpl,
        RefusalCode::HostDataMismatch,
    ];

    /// The code for a wire value.
    pub fn from_u16(value: u16) -> Option<RefusalCode> {
        Self::ALL.into_iter().find(|c| *c as u16 == value)
    }

    /// A stable snake_case name, for logs and counters.
    pub const fn as_str(self) -> &'static str {
        match self {
            RefusalCode::UnknownMeasurement => "unknown_measurement",
            RefusalCode::NonceUnknown => "nonce_unknown",
            RefusalCode::NonceExpired => "nonce_expired",
            RefusalCode::NonceOtherConnection => "nonce_other_connection",
            RefusalCode::BindingMismatch => "binding_mismatch",
            RefusalCode::BadSignature => "bad_signature",
            RefusalCode::SimulatedNotAllowed => "simulated_not_allowed",
            RefusalCode::DebugPolicy => "debug_policy",
            RefusalCode::WrongTee => "wrong_tee",
            RefusalCode::MalformedEvidence => "malformed_evidence",
            RefusalCode::MalformedMessage => "malformed_message",
            RefusalCode::Oversized => "oversized",
            RefusalCode::KeyNotForMeasurement => "key_not_for_measurement",
            RefusalCode::ProtocolVersion => "protocol_version",
            RefusalCode::TeeNotSupported => "tee_not_supported",
            RefusalCode::Internal => "internal",
            RefusalCode::TcbTooLow => "tcb_too_low",
            RefusalCode::GuestPolicy => "guest_policy",
            RefusalCode::WrongVmpl => "wrong_vmpl",
            RefusalCode::HostDataMismatch => "host_data_mismatch",
        }
    }
}
