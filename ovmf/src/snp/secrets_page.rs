//! The SNP secrets page (SEV-SNP ABI §8.17.2.5 "PAGE_TYPE_SECRETS"; its guest OS area per the GHCB specification
//! §2.7): the PSP writes the VM platform communication keys (VMPCK0-3) into it at launch, at the address the SEV
//! metadata's SECRETS section names. Ampoule's guest runs at VMPL0 and uses VMPCK0; the sequence-number counters in
//! the OS area are the guest's own (zero at launch).
//!
//! ```text
//! 0x000 VERSION u32 | 0x004 IMI_EN u32 | 0x008 FMS u32 | 0x00C reserved | 0x010 GOSVW [16]
//! 0x020 VMPCK0 [32] | 0x040 VMPCK1 | 0x060 VMPCK2 | 0x080 VMPCK3
//! 0x0A0 OS area: msg_seqno_0..3 (low halves, u32 each) | 0x0B0 AP jump table u64 | 0x0B8 msg_seqno_0..3 (high halves)
//! ```

/// The page's size.
pub const PAGE_LEN: usize = 4096;
const VERSION: usize = 0x000;
const VMPCK0: usize = 0x020;
const VMPCK_LEN: usize = 32;
const MSG_SEQNO_LOW: usize = 0x0a0;
const MSG_SEQNO_HIGH: usize = 0x0b8;
/// The oldest layout with VMPCK0-3 at these offsets.
pub const MIN_VERSION: u32 = 2;

/// Why a secrets page or a key in it is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretsPageError {
    /// Not one page.
    Length,
    /// VERSION is older than [`MIN_VERSION`].
    Version(u32),
    /// No such VMPCK (0..=3).
    NoSuchKey,
    /// The key is all zeros: disabled (a guest erases a VMPCK it must stop using).
    KeyDisabled,
}

/// A checked view of the secrets page.
pub struct SecretsPage<'a> {
    page: &'a [u8; PAGE_LEN],
}

impl<'a> SecretsPage<'a> {
    /// Checks `bytes` is one page of a known version.
    pub fn new(bytes: &'a [u8]) -> Result<SecretsPage<'a>, SecretsPageError> {
        let page: &[u8; PAGE_LEN] = bytes.try_into().map_err(|_| SecretsPageError::Length)?;
        let version = u32::from_le_bytes([page[VERSION], page[VERSION + 1], page[VERSION + 2], page[VERSION + 3]]);
        if version < MIN_VERSION {
            return Err(SecretsPageError::Version(version));
        }
        Ok(SecretsPage { page })
    }

    /// VMPCK`n`, refused when disabled (all zeros).
    pub fn vmpck(&self, n: usize) -> Result<&'a [u8; 32], SecretsPageError> {
        if n > 3 {
            return Err(SecretsPageError::NoSuchKey);
        }
        let at = VMPCK0 + n * VMPCK_LEN;
        let key: &[u8; 32] = self.page[at..at + VMPCK_LEN].try_into().map_err(|_| SecretsPageError::Length)?;
        if key.iter().all(|&b| b == 0) {
            return Err(SecretsPageError::KeyDisabled);
        }
        Ok(key)
    }

    /// The last sequence number used with VMPCK`n` (0..=3), from the OS area's two halves.
    pub fn msg_seqno(&self, n: usize) -> Result<u64, SecretsPageError> {
        if n > 3 {
            return Err(SecretsPageError::NoSuchKey);
        }
        let u32_at = |at: usize| u32::from_le_bytes(self.page[at..at + 4].try_into().expect("4 bytes"));
        Ok(u64::from(u32_at(MSG_SEQNO_HIGH + 4 * n)) << 32 | u64::from(u32_at(MSG_SEQNO_LOW + 4 * n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(version: u32) -> [u8; PAGE_LEN] {
        let mut page = [0u8; PAGE_LEN];
        page[..4].copy_from_slice(&version.to_le_bytes());
        for n in 0..4 {
            page[VMPCK0 + 32 * n..VMPCK0 + 32 * (n + 1)].fill(0x10 + n as u8);
        }
        page
    }

    #[test]
    fn keys_and_counters_are_read_at_their_offsets() {
        let mut bytes = page(3);
        bytes[0xa0..0xa4].copy_from_slice(&7u32.to_le_bytes());
        bytes[0xb8..0xbc].copy_from_slice(&1u32.to_le_bytes());
        bytes[0xa4..0xa8].copy_from_slice(&9u32.to_le_bytes());
        let secrets = SecretsPage::new(&bytes).unwrap();
        assert_eq!(secrets.vmpck(0).unwrap(), &[0x10; 32]);
        assert_eq!(secrets.vmpck(3).unwrap(), &[0x13; 32]);
        assert_eq!(secrets.msg_seqno(0), Ok((1 << 32) | 7));
        assert_eq!(secrets.msg_seqno(1), Ok(9));
        assert_eq!(secrets.vmpck(4).unwrap_err(), SecretsPageError::NoSuchKey);
    }

    #[test]
    fn old_short_and_disabled_are_refused() {
        assert!(matches!(SecretsPage::new(&page(1)), Err(SecretsPageError::Version(1))));
        assert!(matches!(SecretsPage::new(&page(2)[..PAGE_LEN - 1]), Err(SecretsPageError::Length)));
        let mut bytes = page(2);
        bytes[VMPCK0..VMPCK0 + 32].fill(0);
        assert_eq!(SecretsPage::new(&bytes).unwrap().vmpck(0).unwrap_err(), SecretsPageError::KeyDisabled);
    }
}
