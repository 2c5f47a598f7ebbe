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

/// A 32-byte secret exported from an HPKE context, erased when dropped.
pub type ExportedSecret = Zeroizing<[u8; 32]>;

/// Encapsulates to `recipient` with `info` (HPKE base mode) and exports one 32-byte secret per label from the
/// context: the encapsulated key to send, and the secrets.
pub fn export_to<const N: usize>(
    recipient: &PublicKey,
    info: &[u8],
    labels: [&[u8]; N],
    rng: &mut impl CryptoRng,
) -> Result<([u8; 32], [ExportedSecret; N]), SealError> {
    let recipient = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient).map_err(|_| SealError::BadKey)?;
    let (encapped, context) =
        hpke::setup_sender_with_rng::<AesGcm256, HkdfSha256, Kem>(&OpModeS::Base, &recipient, info, rng)
            .map_err(|_| SealError::Seal)?;
    let secrets = exported(labels, |label, out| context.export(label, out).is_ok())?;
    Ok((encapped.to_bytes().into(), secrets))
}

/// The receiving side of [`export_to`]: the same secrets, from `pair`'s private key and `encapped_key`.
pub fn export_from<const N: usize>(
    pair: &EphemeralKeyPair,
    encapped_key: &[u8; 32],
    info: &[u8],
    labels: [&[u8]; N],
) -> Result<[ExportedSecret; N], SealError> {
    let encapped = <Kem as hpke::Kem>::EncappedKey::from_bytes(encapped_key).map_err(|_| SealError::BadKey)?;
    let context = hpke::setup_receiver::<AesGcm256, HkdfSha256, Kem>(&OpModeR::Base, &pair.private, &encapped, info)
        .map_err(|_| SealError::Open)?;
    exported(labels, |label, out| context.export(label, out).is_ok())
}

/// One secret per label, from `export`.
fn exported<const N: usize>(
    labels: [&[u8]; N],
    export: impl Fn(&[u8], &mut [u8]) -> bool,
) -> Result<[ExportedSecret; N], SealError> {
    let mut secrets: [Zeroizing<[u8; 32]>; N] = core::array::from_fn(|_| Zeroizing::new([0u8; 32]));
    for (label, secret) in labels.iter().zip(secrets.iter_mut()) {
        if !export(label, &mut secret[..]) {
            return Err(SealError::Seal);
        }
    }
    Ok(secrets)
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
pub(crate) mod tests;
