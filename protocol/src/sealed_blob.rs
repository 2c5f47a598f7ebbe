//! The sealed model as a deploy artifact outside the measured image (DESIGN.md §11): a header, then the weights in
//! AES-256-GCM chunks in a STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, "Online Authenticated-Encryption
//! and its Nonce-Reuse Misuse-Resistance", §7), so that the guest can load and authenticate a large model chunk by
//! chunk, and truncation, reordering, duplication and splicing all fail.
//!
//! ```text
//! header (64 bytes, big-endian numbers):
//!   magic "AMPBLOB1" | model_id [16] | key_id [16] | nonce_prefix [7] | reserved u8 = 0
//!   | chunk_len u32 (plaintext bytes per chunk but the last) | chunk_count u32 | plaintext_len u64
//! chunk i (0 <= i < chunk_count): ciphertext of min(chunk_len, what is left) bytes | tag [16]
//!   nonce = nonce_prefix | i (u32) | last (1 for the final chunk, else 0); AAD = the blob digest
//! ```
//!
//! The **blob digest** is SHA-384 of the header. It is what binds the blob to a launch: the launch's HOST_DATA (SNP,
//! its first 32 bytes) or MRCONFIGID (TDX, all 48), and what the broker releases the key for, with the measurement.
//! The guest compares it with its own report before it decrypts anything. The header commits to every chunk through
//! the key, which is fresh for every sealing and released only for this digest: no one without it can make a chunk
//! that authenticates, and each chunk authenticates only at its own place in its own blob.

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Tag};
use sha2::{Digest, Sha384};

use crate::message::KeyId;
use crate::tee::Tee;

/// The format's magic and version.
pub const MAGIC: [u8; 8] = *b"AMPBLOB1";
/// The header's length.
pub const HEADER_LEN: usize = 64;
/// The AES-GCM tag after each chunk.
pub const TAG_LEN: usize = 16;
/// The smallest and largest plaintext chunk: bounded reads for the guest, few tags for a large model.
pub const MIN_CHUNK_LEN: u32 = 4 * 1024;
/// See [`MIN_CHUNK_LEN`].
pub const MAX_CHUNK_LEN: u32 = 1024 * 1024;
/// The largest model a blob may hold (a 69 MB sentence-embedding model fits with room).
pub const MAX_PLAINTEXT_LEN: u64 = 512 * 1024 * 1024;

/// The fw_cfg file (QEMU's `-fw_cfg name=...,file=...`) through which the host hands the guest its blob.
pub const FW_CFG_MODEL: &str = "opt/ampoule/model";
/// Plain mode only: the fw_cfg file with the launch's simulated HOST_DATA, 64 hex digits (real platforms put
/// HOST_DATA / MRCONFIGID in the report, where the host cannot change it after launch).
pub const FW_CFG_HOST_DATA: &str = "opt/ampoule/host-data";

/// The digest that binds a blob to a launch: SHA-384 of its header.
pub type BlobDigest = [u8; 48];

/// What a launch bound to the blob with `digest` reports, as 48 bytes: SNP's (and plain mode's simulated) HOST_DATA
/// holds 32 bytes, the digest's first 32 (the rest zero here); TDX's MRCONFIGID holds all 48. The guest compares
/// its own report's field with this before it decrypts anything; the broker, before it releases a key.
pub fn launch_binding(tee: Tee, digest: &BlobDigest) -> [u8; 48] {
    let mut binding = *digest;
    if tee != Tee::Tdx {
        binding[32..].fill(0);
    }
    binding
}

/// Why a blob, or one of its chunks, is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobError {
    /// The header is not one: the magic, a reserved byte, a length or count out of bounds or inconsistent.
    Malformed,
    /// A chunk of the wrong length for its place.
    ChunkLength,
    /// A chunk did not authenticate at its place (wrong key, tampered, reordered, duplicated or from another blob).
    ChunkOpen,
    /// A chunk after the last one.
    TooManyChunks,
}

impl core::fmt::Display for BlobError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            BlobError::Malformed => "the sealed blob's header is malformed",
            BlobError::ChunkLength => "a chunk of the sealed blob has the wrong length",
            BlobError::ChunkOpen => "a chunk of the sealed blob did not open at its place",
            BlobError::TooManyChunks => "the sealed blob has a chunk after its last",
        })
    }
}

impl core::error::Error for BlobError {}

/// A parsed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobHeader {
    /// Which model (and version) the blob holds.
    pub model_id: [u8; 16],
    /// The key the broker must release for it.
    pub key_id: KeyId,
    nonce_prefix: [u8; 7],
    /// Plaintext bytes per chunk (the last may hold fewer).
    pub chunk_len: u32,
    /// How many chunks follow the header.
    pub chunk_count: u32,
    /// The plaintext's length.
    pub plaintext_len: u64,
    digest: BlobDigest,
}

impl BlobHeader {
    /// Parses exactly [`HEADER_LEN`] bytes, strictly.
    pub fn parse(bytes: &[u8]) -> Result<BlobHeader, BlobError> {
        let bytes: &[u8; HEADER_LEN] = bytes.try_into().map_err(|_| BlobError::Malformed)?;
        let field = |from: usize, to: usize| &bytes[from..to];
        if field(0, 8) != MAGIC || bytes[47] != 0 {
            return Err(BlobError::Malformed);
        }
        let chunk_len = u32::from_be_bytes(field(48, 52).try_into().expect("4 bytes"));
        let chunk_count = u32::from_be_bytes(field(52, 56).try_into().expect("4 bytes"));
        let plaintext_len = u64::from_be_bytes(field(56, 64).try_into().expect("8 bytes"));
        let chunk_len_ok = (MIN_CHUNK_LEN..=MAX_CHUNK_LEN).contains(&chunk_len);
        if !chunk_len_ok || !(1..=MAX_PLAINTEXT_LEN).contains(&plaintext_len) {
            return Err(BlobError::Malformed);
        }
        if u64::from(chunk_count) != plaintext_len.div_ceil(u64::from(chunk_len)) {
            return Err(BlobError::Malformed);
        }
        Ok(BlobHeader {
            model_id: field(8, 24).try_into().expect("16 bytes"),
            key_id: field(24, 40).try_into().expect("16 bytes"),
            nonce_prefix: field(40, 47).try_into().expect("7 bytes"),
            chunk_len,
            chunk_count,
            plaintext_len,
            digest: Sha384::digest(bytes).into(),
        })
    }

    /// The blob digest: SHA-384 of the header.
    pub fn digest(&self) -> &BlobDigest {
        &self.digest
    }

    /// The plaintext length of chunk `index`, if the blob has one.
    pub fn plaintext_chunk_len(&self, index: u32) -> Option<usize> {
        if index >= self.chunk_count {
            return None;
        }
        let start = u64::from(index) * u64::from(self.chunk_len);
        Some((self.plaintext_len - start).min(u64::from(self.chunk_len)) as usize)
    }

    /// The sealed length of chunk `index` (its plaintext length and the tag).
    pub fn sealed_chunk_len(&self, index: u32) -> Option<usize> {
        self.plaintext_chunk_len(index).map(|len| len + TAG_LEN)
    }

    /// The whole blob's length: the header and every sealed chunk.
    pub fn sealed_len(&self) -> u64 {
        HEADER_LEN as u64 + self.plaintext_len + u64::from(self.chunk_count) * TAG_LEN as u64
    }

    /// The sealed chunks of a whole blob in memory (`blob` from its first byte), in order, as far as the bytes
    /// reach: for host tools, tests and the fuzzer; the guest reads chunk by chunk instead.
    pub fn sealed_chunks<'a>(&self, blob: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let header = *self;
        let mut at = HEADER_LEN;
        (0..self.chunk_count).map_while(move |index| {
            let len = header.sealed_chunk_len(index)?;
            let chunk = blob.get(at..at.checked_add(len)?)?;
            at += len;
            Some(chunk)
        })
    }

    fn nonce(&self, index: u32) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[..7].copy_from_slice(&self.nonce_prefix);
        nonce[7..11].copy_from_slice(&index.to_be_bytes());
        nonce[11] = u8::from(index + 1 == self.chunk_count);
        nonce
    }
}

/// Opens a blob's chunks in order, each in place. Its cipher state (the AES round keys and the GHASH key) is erased
/// when it is dropped: aes-gcm's `zeroize` feature.
pub struct ChunkOpener {
    cipher: Aes256Gcm,
    header: BlobHeader,
    next: u32,
}

impl ChunkOpener {
    /// An opener for the chunks of `header`'s blob, under `key` (which the caller erases).
    pub fn new(header: BlobHeader, key: &[u8; 32]) -> ChunkOpener {
        ChunkOpener { cipher: Aes256Gcm::new(key.into()), header, next: 0 }
    }

    /// Opens the next chunk in place: `chunk` holds its ciphertext and tag, and its first bytes (their number is
    /// returned) hold the plaintext afterwards. On any error nothing of `chunk` is plaintext and the opener is
    /// spent: every later chunk is refused too.
    pub fn open_next(&mut self, chunk: &mut [u8]) -> Result<usize, BlobError> {
        let index = self.next;
        let expected = self.header.sealed_chunk_len(index).ok_or(BlobError::TooManyChunks)?;
        self.next = u32::MAX;
        if chunk.len() != expected {
            return Err(BlobError::ChunkLength);
        }
        let (text, tag) = chunk.split_at_mut(expected - TAG_LEN);
        let tag = Tag::try_from(&*tag).map_err(|_| BlobError::ChunkLength)?;
        let nonce = self.header.nonce(index);
        self.cipher
            .decrypt_inout_detached(&nonce.into(), &self.header.digest, text.into(), &tag)
            .map_err(|_| BlobError::ChunkOpen)?;
        self.next = index + 1;
        Ok(text.len())
    }

    /// Whether every chunk has opened.
    pub fn finished(&self) -> bool {
        self.next == self.header.chunk_count
    }
}

/// Seals `plaintext` as `model_id` under `key` (named `key_id`) in chunks of `chunk_len` bytes. `nonce_prefix`
/// must never repeat for a key; `cargo xtask seal` makes a fresh key and prefix for every sealing.
pub fn seal(
    plaintext: &[u8],
    model_id: [u8; 16],
    key_id: KeyId,
    key: &[u8; 32],
    nonce_prefix: [u8; 7],
    chunk_len: u32,
) -> Result<alloc::vec::Vec<u8>, BlobError> {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC);
    header[8..24].copy_from_slice(&model_id);
    header[24..40].copy_from_slice(&key_id);
    header[40..47].copy_from_slice(&nonce_prefix);
    header[48..52].copy_from_slice(&chunk_len.to_be_bytes());
    let chunk_count = (plaintext.len() as u64).div_ceil(u64::from(chunk_len.max(1)));
    header[52..56].copy_from_slice(&u32::try_from(chunk_count).map_err(|_| BlobError::Malformed)?.to_be_bytes());
    header[56..64].copy_from_slice(&(plaintext.len() as u64).to_be_bytes());
    let parsed = BlobHeader::parse(&header)?;
    let cipher = Aes256Gcm::new(key.into());
    let mut blob = alloc::vec::Vec::with_capacity(parsed.sealed_len() as usize);
    blob.extend_from_slice(&header);
    for (index, piece) in (0u32..).zip(plaintext.chunks(chunk_len as usize)) {
        let start = blob.len();
        blob.extend_from_slice(piece);
        let nonce = parsed.nonce(index);
        let tag = cipher
            .encrypt_inout_detached(&nonce.into(), &parsed.digest, (&mut blob[start..]).into())
            .map_err(|_| BlobError::ChunkOpen)?;
        blob.extend_from_slice(&tag);
    }
    Ok(blob)
}

#[cfg(test)]
mod tests;
