//! HPKE (RFC 9180) base mode with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and AES-256-GCM: how the broker seals a
//! model key to a guest's ephemeral public key (and, later, how clients seal inputs to the guest).
//!
//! The key release's metadata (key id and expiry) is the AAD, so a sealed key cannot be relabelled.

use alloc::vec::Vec;

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
pub use hpke::rand_core::{self, CryptoRng};
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use crate::message::{KeyId, PublicKey};

type Kem = X25519HkdfSha256;
type PrivateKey = <Kem as hpke::Kem>::PrivateKey;

/// The HPKE `info` of a key release.
pub const KEY_RELEASE_INFO: &[u8] = b"ampoule/key-release/v1";

/// Why sealing or opening failed. Deliberately without detail: a failed open says nothing about why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealError {
    /// A public key or encapsulated key is not a valid X25519 point encoding.
    BadKey,
    /// Encryption failed.
    Seal,
    /// Decryption failed: wrong key, tampered ciphertext or AAD.
    Open,
}

/// The AAD of a key release: `key_id || expires_at` (big-endian).
pub fn key_release_aad(key_id: &KeyId, expires_at: u64) -> [u8; 24] {
    let mut aad = [0u8; 24];
    aad[..16].copy_from_slice(key_id);
    aad[16..].copy_from_slice(&expires_at.to_be_bytes());
    aad
}

/// An ephemeral X25519 key pair. The private key stays inside and is erased when dropped.
pub struct EphemeralKeyPair {
    private: PrivateKey,
    public: PublicKey,
}

impl EphemeralKeyPair {
    /// A fresh key pair from `rng`.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let (private, public) = Kem::gen_keypair_with_rng(rng);
        Self { private, public: public.to_bytes().into() }
    }

    /// The public key to send.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Opens what was sealed to this key pair with `info` and `aad`.
    pub fn open(
        &self,
        encapped_key: &[u8; 32],
        ciphertext: &[u8],
        info: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let encapped = <Kem as hpke::Kem>::EncappedKey::from_bytes(encapped_key).map_err(|_| SealError::BadKey)?;
        hpke::single_shot_open::<AesGcm256, HkdfSha256, Kem>(
            &OpModeR::Base,
            &self.private,
            &encapped,
            info,
            ciphertext,
            aad,
        )
        .map(Zeroizing::new)
        .map_err(|_| SealError::Open)
    }
}

/// Seals `plaintext` to `recipient` with `info` and `aad`; returns the encapsulated key and the ciphertext.
pub fn seal(
    recipient: &PublicKey,
    plaintext: &[u8],
    info: &[u8],
    aad: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<([u8; 32], Vec<u8>), SealError> {
    let recipient = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient).map_err(|_| SealError::BadKey)?;
    let (encapped, ciphertext) = hpke::single_shot_seal_with_rng::<AesGcm256, HkdfSha256, Kem>(
        &OpModeS::Base,
        &recipient,
        info,
        plaintext,
        aad,
        rng,
    )
    .map_err(|_| SealError::Seal)?;
    Ok((encapped.to_bytes().into(), ciphertext))
}

#[cfg(test)]
mod tests;
