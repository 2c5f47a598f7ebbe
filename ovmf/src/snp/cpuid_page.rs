//! The SNP CPUID page (SEV-SNP ABI §8.17.2, table "SNP_CPUID_FUNCTION"; its place in the image is the CPUID section
//! of the SEV metadata). The VMM fills it, the PSP checks each entry against what the hardware allows before the
//! launch, and it is measured: under SNP every CPUID raises #VC, and the guest answers from this page, never from
//! the hypervisor.
//!
//! ```text
//! COUNT u32 | reserved u32 | reserved u64 | COUNT x { EAX_IN u32, ECX_IN u32, XCR0_IN u64, XSS_IN u64,
//!                                                     EAX u32, EBX u32, ECX u32, EDX u32, reserved u64 }
//! ```

/// The most functions the page holds.
pub const MAX_FUNCTIONS: usize = 64;
const HEADER_LEN: usize = 16;
const FUNCTION_LEN: usize = 0x30;
/// The page's size.
pub const PAGE_LEN: usize = 4096;

/// The leaf that reports SEV features, the C-bit position among them (AMD64 APM vol. 3, CPUID Fn8000_001F).
pub const LEAF_SEV_FEATURES: u32 = 0x8000_001f;

/// Why a CPUID page is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuidPageError {
    /// Not one page.
    Length,
    /// COUNT is above [`MAX_FUNCTIONS`].
    Count(u32),
    /// The page has no SEV features leaf, or its C-bit position is implausible.
    NoCBit,
}

/// One function's registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuidResult {
    /// EAX.
    pub eax: u32,
    /// EBX.
    pub ebx: u32,
    /// ECX.
    pub ecx: u32,
    /// EDX.
    pub edx: u32,
}

/// A checked view of the CPUID page.
#[derive(Clone, Copy, Debug)]
pub struct CpuidPage<'a> {
    page: &'a [u8; PAGE_LEN],
    count: usize,
}

/// Whether ECX selects a subleaf of `leaf` (the leaves whose output depends on ECX), so that a lookup must match
/// ECX_IN too; for the others ECX_IN is 0 and ECX is ignored.
pub fn has_subleaves(leaf: u32) -> bool {
    matches!(
        leaf,
        0x4 | 0x7
            | 0xb
            | 0xd
            | 0xf
            | 0x10
            | 0x12
            | 0x14
            | 0x17
            | 0x18
            | 0x1d
            | 0x1f
            | 0x8000_001d
            | 0x8000_0020
            | 0x8000_0026
    )
}

impl<'a> CpuidPage<'a> {
    /// Checks `bytes` is one page with a COUNT of at most [`MAX_FUNCTIONS`].
    pub fn new(bytes: &'a [u8]) -> Result<CpuidPage<'a>, CpuidPageError> {
        let page: &[u8; PAGE_LEN] = bytes.try_into().map_err(|_| CpuidPageError::Length)?;
        let count = u32::from_le_bytes([page[0], page[1], page[2], page[3]]);
        if count as usize > MAX_FUNCTIONS {
            return Err(CpuidPageError::Count(count));
        }
        Ok(CpuidPage { page, count: count as usize })
    }

    fn u32_at(&self, at: usize) -> u32 {
        u32::from_le_bytes([self.page[at], self.page[at + 1], self.page[at + 2], self.page[at + 3]])
    }

    /// The registers for `leaf` and `subleaf` (ignored for leaves without subleaves), or `None` if the page has no
    /// such function: the guest then treats the leaf as reporting all zeros, as the hardware does for unknown
    /// leaves, instead of asking the hypervisor. For leaf 0xD the entry with XCR0_IN = 0x7 and XSS_IN = 0 is taken
    /// (Ampoule sets XCR0 to x87 | SSE | AVX and never XSS).
    pub fn lookup(&self, leaf: u32, subleaf: u32) -> Option<CpuidResult> {
        (0..self.count).map(|i| HEADER_LEN + i * FUNCTION_LEN).find_map(|at| {
            let (eax_in, ecx_in) = (self.u32_at(at), self.u32_at(at + 4));
            let xcr0_in = u64::from(self.u32_at(at + 8)) | u64::from(self.u32_at(at + 12)) << 32;
            let xss_in = u64::from(self.u32_at(at + 16)) | u64::from(self.u32_at(at + 20)) << 32;
            let matches = eax_in == leaf
                && (!has_subleaves(leaf) || ecx_in == subleaf)
                && (leaf != 0xd || subleaf > 1 || (xcr0_in == 0x7 && xss_in == 0));
            matches.then(|| CpuidResult {
                eax: self.u32_at(at + 24),
                ebx: self.u32_at(at + 28),
                ecx: self.u32_at(at + 32),
                edx: self.u32_at(at + 36),
            })
        })
    }

    /// The C-bit position: CPUID Fn8000_001F EBX[5:0], from the page. Refused unless it lies where physical
    /// address bits can (32..=51).
    pub fn c_bit(&self) -> Result<u8, CpuidPageError> {
        let position = (self.lookup(LEAF_SEV_FEATURES, 0).ok_or(CpuidPageError::NoCBit)?.ebx & 0x3f) as u8;
        if (32..=51).contains(&position) { Ok(position) } else { Err(CpuidPageError::NoCBit) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page with `functions` as (EAX_IN, ECX_IN, XCR0_IN, EAX, EBX, ECX, EDX).
    fn page(functions: &[(u32, u32, u64, u32, u32, u32, u32)]) -> [u8; PAGE_LEN] {
        let mut page = [0u8; PAGE_LEN];
        page[..4].copy_from_slice(&(functions.len() as u32).to_le_bytes());
        for (i, &(eax_in, ecx_in, xcr0_in, eax, ebx, ecx, edx)) in functions.iter().enumerate() {
            let at = HEADER_LEN + i * FUNCTION_LEN;
            page[at..at + 4].copy_from_slice(&eax_in.to_le_bytes());
            page[at + 4..at + 8].copy_from_slice(&ecx_in.to_le_bytes());
            page[at + 8..at + 16].copy_from_slice(&xcr0_in.to_le_bytes());
            for (j, v) in [eax, ebx, ecx, edx].into_iter().enumerate() {
                page[at + 24 + 4 * j..at + 28 + 4 * j].copy_from_slice(&v.to_le_bytes());
            }
        }
        page
    }

    #[test]
    fn lookups_match_leaf_and_only_the_subleaves_that_matter() {
        let bytes = page(&[
            (0x1, 0, 0, 0xa00f11, 0x800, 0x7ed8320b, 0x178bfbff),
            (0x7, 0, 0, 0, 0x219c97a9, 0, 0),
            (0x7, 1, 0, 0x10, 0, 0, 0),
            (0xd, 0, 0x3, 0x3, 0x240, 0x240, 0),
            (0xd, 0, 0x7, 0x7, 0x340, 0x340, 0),
            (LEAF_SEV_FEATURES, 0, 0, 0x1b, 0x4033, 0x1fd, 0x1),
        ]);
        let cpuid = CpuidPage::new(&bytes).unwrap();
        assert_eq!(cpuid.lookup(0x1, 5).unwrap().eax, 0xa00f11, "leaf 1 ignores ECX");
        assert_eq!(cpuid.lookup(0x7, 0).unwrap().ebx, 0x219c97a9);
        assert_eq!(cpuid.lookup(0x7, 1).unwrap().eax, 0x10);
        assert_eq!(cpuid.lookup(0x7, 2), None);
        assert_eq!(cpuid.lookup(0xd, 0).unwrap().ebx, 0x340, "the entry for XCR0 = 0x7");
        assert_eq!(cpuid.lookup(0x8000_0008, 0), None);
        assert_eq!(cpuid.c_bit(), Ok(51));
    }

    #[test]
    fn malformed_pages_and_missing_c_bits_are_refused() {
        assert_eq!(CpuidPage::new(&[0u8; PAGE_LEN - 1]).unwrap_err(), CpuidPageError::Length);
        let mut bytes = page(&[]);
        bytes[..4].copy_from_slice(&65u32.to_le_bytes());
        assert_eq!(CpuidPage::new(&bytes).unwrap_err(), CpuidPageError::Count(65));
        // Entries beyond COUNT are not read.
        let mut hidden = page(&[(LEAF_SEV_FEATURES, 0, 0, 0, 0x33, 0, 0)]);
        hidden[..4].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(CpuidPage::new(&hidden).unwrap().c_bit(), Err(CpuidPageError::NoCBit));
        for implausible in [0, 31, 52, 63] {
            let bytes = page(&[(LEAF_SEV_FEATURES, 0, 0, 0, implausible, 0, 0)]);
            assert_eq!(CpuidPage::new(&bytes).unwrap().c_bit(), Err(CpuidPageError::NoCBit), "{implausible}");
        }
        // A full page of 64 functions is fine.
        let full: [_; MAX_FUNCTIONS] = core::array::from_fn(|i| (i as u32, 0, 0, 0, 0, 0, 0));
        assert!(CpuidPage::new(&page(&full)).unwrap().lookup(63, 0).is_some());
    }
}
