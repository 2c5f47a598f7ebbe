//! The sealed model: the weights as they are compiled into the image, encrypted with the model key (AES-256-GCM,
//! AAD = model id || plaintext digest; DESIGN.md §5). `cargo xtask seal` makes one with a fresh key per sealing; the
//! guest opens it with the key the broker releases. Plaintext weights are never in the image.
//!
//! ```text
//! magic "AMPSEAL1" | model_id [16] | key_id [16] | plaintext_digest [48] (SHA-384) | nonce [12]
//!                  | ciphertext_len u32 (big-endian) | ciphertext (plaintext + 16-byte tag)
//! ```
//!
//! The key id says which key to ask the broker for; it is not authenticated here, because a changed id only asks
//! for a key that cannot open the blob (or is refused).

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use alloc::vec::Vec;
use sha2::{Digest, Sha384};
use zeroize::Zeroizing;

use crate::message::KeyId;

/// The format's magic and version.
pub const MAGIC: [u8; 8] = *b"AMPSEAL1";
/// The header's size.
pub const HEADER_LEN: usize = 8 + 16 + 16 + 48 + 12 + 4;
/// The AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// The largest plaintext a sealed model may hold (the weights of a small model fit with room to spare).
pub const MAX_PLAINTEXT_LEN: usize = 16 * 1024 * 1024;

/// Why a blob is not a sealed model, or did not open. Deliberately coarse for `Open`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsealError {
    /// Not the magic, truncated, trailing bytes, or a length beyond the bound.
    Malformed,
    /// Decryption failed (wrong key, tampered ciphertext, model id or digest), or the digest did not match.
    Open,
}

impl core::fmt::Display for UnsealError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            UnsealError::Malformed => "the sealed model is malformed",
            UnsealError::Open => "the sealed model did not open",
        })
    }
}

impl core::error::Error for UnsealError {}

/// A parsed (not yet opened) sealed model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealedModel<'a> {
    /// Which model (and version) this is.
    pub model_id: [u8; 16],
    /// The key the broker must release for it.
    pub key_id: KeyId,
    /// SHA-384 of the plaintext.
    pub plaintext_digest: [u8; 48],
    nonce: [u8; 12],
    ciphertext: &'a [u8],
}

fn aad(model_id: &[u8; 16], digest: &[u8; 48]) -> [u8; 64] {
    let mut aad = [0u8; 64];
    aad[..16].copy_from_slice(model_id);
    aad[16..].copy_from_slice(digest);
    aad
}

impl<'a> SealedModel<'a> {
    /// Parses `blob` strictly: the magic, the exact length, the bound.
    pub fn parse(blob: &'a [u8]) -> Result<SealedModel<'a>, UnsealError> {
        let header = blob.get(..HEADER_LEN).ok_or(UnsealError::Malformed)?;
        if header[..8] != MAGIC {
            return Err(UnsealError::Malformed);
        }
        let field = |from: usize, to: usize| &header[from..to];
        let len = u32::from_be_bytes(field(100, 104).try_into().expect("4 bytes")) as usize;
        if !(TAG_LEN..=MAX_PLAINTEXT_LEN + TAG_LEN).contains(&len) || blob.len() != HEADER_LEN + len {
            return Err(UnsealError::Malformed);
        }
        Ok(SealedModel {
            model_id: field(8, 24).try_into().expect("16 bytes"),
            key_id: field(24, 40).try_into().expect("16 bytes"),
            plaintext_digest: field(40, 88).try_into().expect("48 bytes"),
            nonce: field(88, 100).try_into().expect("12 bytes"),
            ciphertext: &blob[HEADER_LEN..],
        })
    }

    /// Parses the sealed model at the start of an image's slot (`ovmf::layout::SEALED_MODEL`): the blob, then zeros
    /// to the end of the slot, so nothing else can ride along in the measured image unnoticed.
    pub fn from_slot(slot: &'a [u8]) -> Result<SealedModel<'a>, UnsealError> {
        let header = slot.get(..HEADER_LEN).ok_or(UnsealError::Malformed)?;
        let len = u32::from_be_bytes(header[100..104].try_into().expect("4 bytes")) as usize;
        let end = HEADER_LEN.checked_add(len).ok_or(UnsealError::Malformed)?;
        let (blob, rest) = slot.split_at_checked(end).ok_or(UnsealError::Malformed)?;
        if rest.iter().any(|&b| b != 0) {
            return Err(UnsealError::Malformed);
        }
        SealedModel::parse(blob)
    }

    /// Decrypts with `key` and checks the plaintext against its digest. The plaintext is erased when dropped.
    pub fn open(&self, key: &[u8; 32]) -> Result<Zeroizing<Vec<u8>>, UnsealError> {
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| UnsealError::Open)?;
        let aad = aad(&self.model_id, &self.plaintext_digest);
        let plaintext = cipher
            .decrypt(&self.nonce.into(), Payload { msg: self.ciphertext, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| UnsealError::Open)?;
        if <[u8; 48]>::from(Sha384::digest(&plaintext[..])) != self.plaintext_digest {
            return Err(UnsealError::Open);
        }
        Ok(plaintext)
    }
}

/// Seals `plaintext` as `model_id` under `key` (named `key_id`), with `nonce`, which must never repeat for a key
/// (`cargo xtask seal` makes a fresh key for every sealing, so one nonce per key).
pub fn seal(
    plaintext: &[u8],
    model_id: [u8; 16],
    key_id: KeyId,
    key: &[u8; 32],
    nonce: [u8; 12],
) -> Result<Vec<u8>, UnsealError> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(UnsealError::Malformed);
    }
    let digest: [u8; 48] = Sha384::digest(plaintext).into();
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| UnsealError::Open)?;
    let ciphertext = cipher
        .encrypt(&nonce.into(), Payload { msg: plaintext, aad: &aad(&model_id, &digest) })
        .map_err(|_| UnsealError::Open)?;
    let mut blob = Vec::with_capacity(HEADER_LEN + ciphertext.len());
    blob.extend_from_slice(&MAGIC);
    blob.extend_from_slice(&model_id);
    blob.extend_from_slice(&key_id);
    blob.extend_from_slice(&digest);
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&(ciphertext.len() as u32).to_be_bytes());
    blob.extend_from_slice(&ciphertext);
    Ok(blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn blob() -> Vec<u8> {
        seal(b"weights, as burn records them", [1; 16], [2; 16], &KEY, [3; 12]).unwrap()
    }

    #[test]
    fn a_sealed_model_opens_with_its_key_only() {
        let blob = blob();
        let sealed = SealedModel::parse(&blob).unwrap();
        assert_eq!((sealed.model_id, sealed.key_id), ([1; 16], [2; 16]));
        assert_eq!(&sealed.open(&KEY).unwrap()[..], b"weights, as burn records them");
        assert_eq!(sealed.open(&[8; 32]), Err(UnsealError::Open));
        // The plaintext is not in the blob.
        assert!(!blob.windows(7).any(|w| w == b"weights"));
    }

    #[test]
    fn tampering_with_the_authenticated_parts_prevents_opening() {
        let blob = blob();
        // Model id, digest, nonce, every ciphertext byte.
        for at in (8..24).chain(40..100).chain(HEADER_LEN..blob.len()) {
            let mut tampered = blob.clone();
            tampered[at] ^= 1;
            let sealed = SealedModel::parse(&tampered).unwrap();
            assert_eq!(sealed.open(&KEY), Err(UnsealError::Open), "byte {at}");
        }
    }

    #[test]
    fn malformed_blobs_are_refused_before_decrypting() {
        let blob = blob();
        assert_eq!(SealedModel::parse(&blob[..HEADER_LEN - 1]), Err(UnsealError::Malformed));
        assert_eq!(SealedModel::parse(&blob[..blob.len() - 1]), Err(UnsealError::Malformed));
        let mut longer = blob.clone();
        longer.push(0);
        assert_eq!(SealedModel::parse(&longer), Err(UnsealError::Malformed));
        let mut bad_magic = blob.clone();
        bad_magic[0] ^= 1;
        assert_eq!(SealedModel::parse(&bad_magic), Err(UnsealError::Malformed));
        let mut huge = blob;
        huge[100..104].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(SealedModel::parse(&huge), Err(UnsealError::Malformed));
        assert_eq!(SealedModel::from_slot(&huge), Err(UnsealError::Malformed));
    }

    #[test]
    fn a_slot_holds_the_blob_then_only_zeros() {
        let blob = blob();
        let mut slot = blob.clone();
        slot.resize(4096, 0);
        assert_eq!(SealedModel::from_slot(&slot).unwrap(), SealedModel::parse(&blob).unwrap());
        slot[4095] = 1;
        assert_eq!(SealedModel::from_slot(&slot), Err(UnsealError::Malformed));
        assert_eq!(SealedModel::from_slot(&[0; 4096]), Err(UnsealError::Malformed));
        assert_eq!(SealedModel::from_slot(&blob[..blob.len() - 1]), Err(UnsealError::Malformed));
    }
}
