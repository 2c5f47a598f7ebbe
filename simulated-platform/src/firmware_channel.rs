//! The byte channel between the hypervisor and the simulated PSP that xtask serves (`simulated-firmware`): the
//! platform keeps its firmware's keys (the VCEK that signs reports) out of the hypervisor image, as a real PSP
//! keeps them out of the host.
//!
//! Every message is `[kind u8][length u32 LE][length bytes]`:
//!
//! | kind | direction | body |
//! |------|-----------|------|
//! | 1 `LAUNCHED` | hypervisor -> PSP | MEASUREMENT[48], POLICY u64, HOST_DATA[32], VMPCK0[32] |
//! | 2 `GUEST_REQUEST` | hypervisor -> PSP | the guest's request message (header and payload) |
//! | 3 `RESPONSE` | PSP -> hypervisor | STATUS u32 (0: the answer follows; else the firmware's error) |
//! | 4 `TD_LAUNCHED` | hypervisor -> TDX module | MRTD[48], ATTRIBUTES u64, XFAM u64 |
//! | 5 `TD_REPORT` | hypervisor -> TDX module | REPORTDATA[64]: TDG.MR.REPORT, answered with the TDREPORT |
//! | 6 `TD_QUOTE` | hypervisor -> quote service | a TDREPORT: GetQuote, answered with the quote |
//!
//! For a TD the same channel reaches the TDX module's reporting and the quote-generation service that xtask
//! serves with `simulated_firmware::SimulatedTdx`.

/// The largest body: 16 KiB plus the status word. A guest message is a page; a TD quote with its PCK certificate
/// chain is about 5 KiB (Intel's, and the simulated platform's).
pub const MAX_BODY: usize = 16 * 1024 + 4;
/// The header: kind and length.
pub const HEADER_LEN: usize = 5;

/// Message kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The launch finished: what the PSP's reports will say.
    Launched = 1,
    /// A guest message for the PSP.
    GuestRequest = 2,
    /// The PSP's answer to a guest message.
    Response = 3,
    /// The TD was built: what its reports will say.
    TdLaunched = 4,
    /// TDG.MR.REPORT.
    TdReport = 5,
    /// GetQuote.
    TdQuote = 6,
}

impl Kind {
    /// The kind for a byte.
    pub fn from_u8(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Launched),
            2 => Some(Kind::GuestRequest),
            3 => Some(Kind::Response),
            4 => Some(Kind::TdLaunched),
            5 => Some(Kind::TdReport),
            6 => Some(Kind::TdQuote),
            _ => None,
        }
    }
}

/// Why a header is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelError {
    /// An unknown kind.
    Kind(u8),
    /// A body longer than [`MAX_BODY`].
    Length(u32),
}

/// The header for a `kind` message of `length` bytes.
pub fn header(kind: Kind, length: usize) -> [u8; HEADER_LEN] {
    let mut bytes = [0u8; HEADER_LEN];
    bytes[0] = kind as u8;
    bytes[1..].copy_from_slice(&(length as u32).to_le_bytes());
    bytes
}

/// Reads a header: the kind and the body's length, checked against [`MAX_BODY`].
pub fn parse_header(bytes: [u8; HEADER_LEN]) -> Result<(Kind, usize), ChannelError> {
    let kind = Kind::from_u8(bytes[0]).ok_or(ChannelError::Kind(bytes[0]))?;
    let length = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    if length as usize > MAX_BODY {
        return Err(ChannelError::Length(length));
    }
    Ok((kind, length as usize))
}

/// The body of `LAUNCHED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Launched {
    /// MEASUREMENT.
    pub measurement: [u8; 48],
    /// POLICY.
    pub policy: u64,
    /// HOST_DATA.
    pub host_data: [u8; 32],
    /// VMPCK0, as the firmware wrote it into the secrets page.
    pub vmpck0: [u8; 32],
}

impl Launched {
    /// The body's length.
    pub const LEN: usize = 48 + 8 + 32 + 32;

    /// The body's bytes.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut bytes = [0u8; Self::LEN];
        bytes[..48].copy_from_slice(&self.measurement);
        bytes[48..56].copy_from_slice(&self.policy.to_le_bytes());
        bytes[56..88].copy_from_slice(&self.host_data);
        bytes[88..].copy_from_slice(&self.vmpck0);
        bytes
    }

    /// Reads a body; `None` unless it is exactly [`Launched::LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Option<Launched> {
        let bytes: &[u8; Self::LEN] = bytes.try_into().ok()?;
        let mut launched = Launched { measurement: [0; 48], policy: 0, host_data: [0; 32], vmpck0: [0; 32] };
        launched.measurement.copy_from_slice(&bytes[..48]);
        launched.policy = u64::from_le_bytes(bytes[48..56].try_into().ok()?);
        launched.host_data.copy_from_slice(&bytes[56..88]);
        launched.vmpck0.copy_from_slice(&bytes[88..]);
        Some(launched)
    }
}

/// The body of `TD_LAUNCHED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdLaunched {
    /// MRTD.
    pub mrtd: [u8; 48],
    /// ATTRIBUTES.
    pub attributes: u64,
    /// XFAM.
    pub xfam: u64,
    /// MRCONFIGID, as the host configured the TD.
    pub mr_config_id: [u8; 48],
}

impl TdLaunched {
    /// The body's length.
    pub const LEN: usize = 48 + 8 + 8 + 48;

    /// The body's bytes.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut bytes = [0u8; Self::LEN];
        bytes[..48].copy_from_slice(&self.mrtd);
        bytes[48..56].copy_from_slice(&self.attributes.to_le_bytes());
        bytes[56..64].copy_from_slice(&self.xfam.to_le_bytes());
        bytes[64..].copy_from_slice(&self.mr_config_id);
        bytes
    }

    /// Reads a body; `None` unless it is exactly [`TdLaunched::LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Option<TdLaunched> {
        let bytes: &[u8; Self::LEN] = bytes.try_into().ok()?;
        Some(TdLaunched {
            mrtd: bytes[..48].try_into().ok()?,
            attributes: u64::from_le_bytes(bytes[48..56].try_into().ok()?),
            xfam: u64::from_le_bytes(bytes[56..64].try_into().ok()?),
            mr_config_id: bytes[64..].try_into().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_bound_the_body() {
        assert_eq!(parse_header(header(Kind::GuestRequest, 4096)), Ok((Kind::GuestRequest, 4096)));
        assert_eq!(parse_header(header(Kind::Response, MAX_BODY + 1)), Err(ChannelError::Length(MAX_BODY as u32 + 1)));
        assert_eq!(parse_header([9, 0, 0, 0, 0]), Err(ChannelError::Kind(9)));
    }

    #[test]
    fn td_launched_round_trips() {
        let launched = TdLaunched { mrtd: [9; 48], attributes: 1 << 28, xfam: 0x7, mr_config_id: [4; 48] };
        assert_eq!(TdLaunched::parse(&launched.to_bytes()), Some(launched));
        assert_eq!(TdLaunched::parse(&[0; 10]), None);
        assert_eq!(parse_header(header(Kind::TdQuote, 1024)), Ok((Kind::TdQuote, 1024)));
    }

    #[test]
    fn launched_round_trips_and_refuses_other_lengths() {
        let launched = Launched { measurement: [1; 48], policy: 0x3_0000, host_data: [2; 32], vmpck0: [3; 32] };
        assert_eq!(Launched::parse(&launched.to_bytes()), Some(launched));
        assert_eq!(Launched::parse(&launched.to_bytes()[1..]), None);
    }
}
