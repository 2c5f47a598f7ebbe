//! Intel TDX formats the guest makes and the broker reads, one definition for both:
//!
//! - [`TdReport`]: TDREPORT_STRUCT, what TDG.MR.REPORT returns (Intel TDX module ABI, "TDREPORT_STRUCT").
//! - [`get_quote`]: the shared buffer of the GetQuote TDVMCALL (GHCI 1.5, "TDG.VP.VMCALL<GetQuote>").
//! - [`quote_len`]: the length of one DCAP quote from its own size fields.

pub mod get_quote;
pub mod quote_len;

/// TDREPORT_STRUCT's size.
pub const TDREPORT_LEN: usize = 1024;

/// Offsets in TDREPORT_STRUCT (also for the simulated TDX module that writes reports): REPORTMACSTRUCT (256 bytes)
/// with REPORTDATA at 128, TEE_TCB_INFO (239), reserved, then TDINFO_STRUCT at 512: ATTRIBUTES, XFAM, MRTD,
/// MRCONFIGID, MROWNER, MROWNERCONFIG, RTMR0..3.
pub mod offset {
    const TD_INFO: usize = 512;
    /// REPORTDATA.
    pub const REPORT_DATA: usize = 128;
    /// ATTRIBUTES.
    pub const ATTRIBUTES: usize = TD_INFO;
    /// XFAM.
    pub const XFAM: usize = TD_INFO + 8;
    /// MRTD.
    pub const MRTD: usize = TD_INFO + 16;
    /// MRCONFIGID: 48 bytes the host sets at launch (QEMU's `mrconfigid`); Ampoule's sealed-model binding.
    pub const MRCONFIGID: usize = TD_INFO + 16 + 48;
    /// RTMR0 (RTMR1..3 follow, 48 bytes each).
    pub const RTMR0: usize = TD_INFO + 16 + 4 * 48;
}

/// The little-endian `N`-byte field at `at`, if `bytes` holds it (the quote and GetQuote-buffer readers).
fn le_field<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn u16_at(bytes: &[u8], at: usize) -> Option<usize> {
    le_field(bytes, at).map(|b| u16::from_le_bytes(b).into())
}

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    le_field(bytes, at).and_then(|b| usize::try_from(u32::from_le_bytes(b)).ok())
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    le_field(bytes, at).map(u64::from_le_bytes)
}

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
        self.field(offset::REPORT_DATA)
    }

    /// The TD's ATTRIBUTES.
    pub fn attributes(&self) -> u64 {
        u64::from_le_bytes(*self.field(offset::ATTRIBUTES))
    }

    /// XFAM.
    pub fn xfam(&self) -> u64 {
        u64::from_le_bytes(*self.field(offset::XFAM))
    }

    /// MRTD: the build-time measurement.
    pub fn mrtd(&self) -> &'a [u8; 48] {
        self.field(offset::MRTD)
    }

    /// MRCONFIGID: what the host configured the TD with at launch.
    pub fn mr_config_id(&self) -> &'a [u8; 48] {
        self.field(offset::MRCONFIGID)
    }

    /// RTMR `index` (0..4).
    pub fn rtmr(&self, index: usize) -> &'a [u8; 48] {
        assert!(index < 4, "RTMR0..3");
        self.field(offset::RTMR0 + 48 * index)
    }
}
