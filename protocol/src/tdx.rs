//! Intel TDX formats the guest makes and the broker reads, one definition for both:
//!
//! - [`TdReport`]: TDREPORT_STRUCT, what TDG.MR.REPORT returns (Intel TDX module ABI, "TDREPORT_STRUCT").
//! - [`get_quote`]: the shared buffer of the GetQuote TDVMCALL (GHCI 1.5, "TDG.VP.VMCALL<GetQuote>").
//! - [`quote_len`]: the length of one DCAP quote from its own size fields.

pub mod get_quote;
pub mod quote_len;

/// TDREPORT_STRUCT's size.
pub const TDREPORT_LEN: usize = 1024;

/// Offsets in TDREPORT_STRUCT: REPORTMACSTRUCT (256 bytes) with REPORTDATA at 128, TEE_TCB_INFO (239), reserved,
/// then TDINFO_STRUCT at 512: ATTRIBUTES, XFAM, MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG, RTMR0..3.
const REPORT_DATA: usize = 128;
const TD_INFO: usize = 512;
const ATTRIBUTES: usize = TD_INFO;
const XFAM: usize = TD_INFO + 8;
const MRTD: usize = TD_INFO + 16;
const RTMR0: usize = TD_INFO + 16 + 4 * 48;

/// A view of a TDREPORT_STRUCT.
#[derive(Clone, Copy, Debug)]
pub struct TdReport<'a>(&'a [u8; TDREPORT_LEN]);

impl<'a> TdReport<'a> {
    /// Reads `bytes` as a TDREPORT (exactly [`TDREPORT_LEN`] bytes).
    pub fn new(bytes: &'a [u8]) -> Option<TdReport<'a>> {
        bytes.try_into().ok().map(TdReport)
    }

    fn field<const N: usize>(&self, at: usize) -> &'a [u8; N] {
        self.0[at..at + N].try_into().expect("inside the report")
    }

    /// REPORTDATA: the 64 bytes the TD asked the report to carry.
    pub fn report_data(&self) -> &'a [u8; 64] {
        self.field(REPORT_DATA)
    }

    /// The TD's ATTRIBUTES.
    pub fn attributes(&self) -> u64 {
        u64::from_le_bytes(*self.field(ATTRIBUTES))
    }

    /// XFAM.
    pub fn xfam(&self) -> u64 {
        u64::from_le_bytes(*self.field(XFAM))
    }

    /// MRTD: the build-time measurement.
    pub fn mrtd(&self) -> &'a [u8; 48] {
        self.field(MRTD)
    }

    /// RTMR `index` (0..4).
    pub fn rtmr(&self, index: usize) -> &'a [u8; 48] {
        assert!(index < 4, "RTMR0..3");
        self.field(RTMR0 + 48 * index)
    }
}

/// Offsets of the fields above, for the simulated TDX module that writes reports.
pub mod offset {
    /// REPORTDATA.
    pub const REPORT_DATA: usize = super::REPORT_DATA;
    /// ATTRIBUTES.
    pub const ATTRIBUTES: usize = super::ATTRIBUTES;
    /// XFAM.
    pub const XFAM: usize = super::XFAM;
    /// MRTD.
    pub const MRTD: usize = super::MRTD;
    /// RTMR0 (RTMR1..3 follow, 48 bytes each).
    pub const RTMR0: usize = super::RTMR0;
}
