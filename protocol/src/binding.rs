//! The report-data binding (DESIGN.md §5): the 64 bytes the guest asks the hardware to sign tie the evidence to the
//! broker's nonce and to the guest's ephemeral public key, so evidence can neither be replayed nor have its key
//! swapped.

use sha2::{Digest, Sha512};

use crate::message::{NONCE_LEN, PublicKey};

/// The domain-separation label of evidence for the broker.
pub const REPORT_DATA_LABEL: &[u8] = b"ampoule/attest/v1";
/// The domain-separation label of evidence for clients.
pub const SERVICE_REPORT_DATA_LABEL: &[u8] = b"ampoule/service/v1";

fn labelled(label: &[u8], nonce: &[u8; NONCE_LEN], public_key: &PublicKey) -> [u8; 64] {
    let mut hash = Sha512::new();
    hash.update(label);
    hash.update(nonce);
    hash.update(public_key);
    hash.finalize().into()
}

/// `SHA-512("ampoule/attest/v1" || nonce || guest_public_key)`: the key dance's evidence.
pub fn report_data(nonce: &[u8; NONCE_LEN], guest_public_key: &PublicKey) -> [u8; 64] {
    labelled(REPORT_DATA_LABEL, nonce, guest_public_key)
}

/// `SHA-512("ampoule/service/v1" || client_nonce || service_public_key)`: the evidence a client asks for, binding
/// its nonce and the per-boot key that inputs are sealed to. The labels differ, so neither kind of evidence can
/// stand in for the other.
pub fn service_report_data(client_nonce: &[u8; NONCE_LEN], service_public_key: &PublicKey) -> [u8; 64] {
    labelled(SERVICE_REPORT_DATA_LABEL, client_nonce, service_public_key)
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
        assert_ne!(base, service_report_data(&[1; 32], &[2; 32]));
        let mut input = SERVICE_REPORT_DATA_LABEL.to_vec();
        input.extend_from_slice(&[1; 32]);
        input.extend_from_slice(&[2; 32]);
        assert_eq!(service_report_data(&[1; 32], &[2; 32]), <[u8; 64]>::from(Sha512::digest(&input)));
    }
}
