//! The report-data binding (DESIGN.md §5): the 64 bytes the guest asks the hardware to sign tie the evidence to the
//! broker's nonce and to the guest's ephemeral public key, so evidence can neither be replayed nor have its key
//! swapped.

use sha2::{Digest, Sha512};

use crate::message::{NONCE_LEN, PublicKey};

/// The domain-separation label.
pub const REPORT_DATA_LABEL: &[u8] = b"ampoule/attest/v1";

/// `SHA-512("ampoule/attest/v1" || nonce || guest_public_key)`.
pub fn report_data(nonce: &[u8; NONCE_LEN], guest_public_key: &PublicKey) -> [u8; 64] {
    let mut hash = Sha512::new();
    hash.update(REPORT_DATA_LABEL);
    hash.update(nonce);
    hash.update(guest_public_key);
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn binds_both_inputs() {
        let base = report_data(&[1; 32], &[2; 32]);
        assert_ne!(base, report_data(&[9; 32], &[2; 32]));
        assert_ne!(base, report_data(&[1; 32], &[9; 32]));
        // Independently: SHA-512 of the concatenation.
        let mut input = REPORT_DATA_LABEL.to_vec();
        input.extend_from_slice(&[1; 32]);
        input.extend_from_slice(&[2; 32]);
        assert_eq!(base, <[u8; 64]>::from(Sha512::digest(&input)));
    }
}
