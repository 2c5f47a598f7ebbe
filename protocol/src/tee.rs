//! Which kind of TEE a guest runs in, as it travels on the wire (one byte).

/// The TEE a guest claims and its evidence must prove.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tee {
    /// No TEE: simulated evidence only, trusted only with `allow_simulated`.
    Plain = 0,
    /// AMD SEV-SNP.
    Snp = 1,
    /// Intel TDX.
    Tdx = 2,
}

impl Tee {
    /// The value for a wire byte.
    pub const fn from_u8(value: u8) -> Option<Tee> {
        match value {
            0 => Some(Tee::Plain),
            1 => Some(Tee::Snp),
            2 => Some(Tee::Tdx),
            _ => None,
        }
    }

    /// The name in records and configuration: `plain`, `snp`, `tdx`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tee::Plain => "plain",
            Tee::Snp => "snp",
            Tee::Tdx => "tdx",
        }
    }
}
