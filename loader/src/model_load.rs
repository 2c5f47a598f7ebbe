//! The guest's load of a sealed model from the untrusted host (DESIGN.md §11): the blob (`protocol::sealed_blob`) is
//! outside the measured image, and the host hands it over through a [`BlobSource`] (fw_cfg or the network). Two
//! steps, so that nothing is decrypted for a blob this launch was not made for:
//!
//! 1. [`read_header`], before the key dance: the header, strictly parsed; the model it holds; the blob's size as
//!    the host declares it, equal to the header's; and the header's digest against what the launch reports as its
//!    HOST_DATA / MRCONFIGID. Its key id is the key to ask the broker for.
//! 2. [`load`], with the released key: chunk by chunk, each read into private memory and opened in place there,
//!    in order, until the last. Any failure returns no plaintext; what was opened is erased.

use alloc::vec::Vec;

use protocol::sealed_blob::{BlobError, BlobHeader, ChunkOpener, HEADER_LEN, launch_binding};
use protocol::tee::Tee;
use zeroize::Zeroizing;

/// The host did not deliver: no blob, or a read past its end or that the device refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotDelivered;

/// Where the blob comes from: the host, so every answer may be a lie, and each read is bounded by its buffer.
pub trait BlobSource {
    /// The blob's size as the host declares it.
    fn declared_len(&mut self) -> Result<u64, NotDelivered>;
    /// Copies the blob's bytes at `offset` into `into`, all of them or an error.
    fn read(&mut self, offset: u64, into: &mut [u8]) -> Result<(), NotDelivered>;
}

/// Why no model was loaded. Each has its own reason in the guest's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The host gave no blob, or a read failed.
    Unreadable,
    /// The header is not one, or the declared size is not the header's.
    Malformed,
    /// The blob holds a model the image has no graph for.
    OtherModel,
    /// The blob is larger than the guest may hold.
    TooLarge,
    /// The header's digest is not what this launch reports: the host gave another blob than it launched for.
    NotThisLaunch,
    /// A chunk did not open at its place, or had the wrong length.
    Chunk(BlobError),
    /// The memory for the weights could not be had.
    OutOfMemory,
}

impl LoadError {
    /// The reason, as the guest logs it.
    pub fn reason(self) -> &'static str {
        match self {
            LoadError::Unreadable => "blob-unreadable",
            LoadError::Malformed => "blob-malformed",
            LoadError::OtherModel => "blob-for-another-model",
            LoadError::TooLarge => "blob-too-large",
            LoadError::NotThisLaunch => "blob-not-this-launch",
            LoadError::Chunk(BlobError::ChunkLength) => "blob-chunk-length",
            LoadError::Chunk(BlobError::TooManyChunks) => "blob-too-many-chunks",
            LoadError::Chunk(_) => "blob-chunk-did-not-open",
            LoadError::OutOfMemory => "blob-out-of-memory",
        }
    }
}

/// A model the image has a graph for, as the load sees it: its id and the most plaintext a blob for it may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelBound {
    /// The id its blobs carry.
    pub model_id: [u8; 16],
    /// The largest plaintext the guest accepts for it (its manifest's bound, within the heap's).
    pub max_plaintext_len: u64,
}

/// What the launch says the blob must be: for one of the models the image has a graph for, within that model's
/// bound, and bound to the launch's HOST_DATA / MRCONFIGID (zero-extended to 48 bytes) for its TEE.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// The models the image serves.
    pub models: &'a [ModelBound],
    /// The TEE the launch reports from.
    pub tee: Tee,
    /// What the launch reports.
    pub host_data: [u8; 48],
}

/// Plain mode's HOST_DATA as run-qemu hands it over (`protocol::sealed_blob::FW_CFG_HOST_DATA`): exactly 64 hex
/// digits, else nothing.
pub fn parse_host_data_hex(text: &[u8]) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(bytes)
}

/// Step 1: the header, checked against the launch, before any key exists.
pub fn read_header(source: &mut impl BlobSource, expected: &Expected<'_>) -> Result<BlobHeader, LoadError> {
    let declared = source.declared_len().map_err(|_| LoadError::Unreadable)?;
    let mut bytes = [0u8; HEADER_LEN];
    source.read(0, &mut bytes).map_err(|_| LoadError::Unreadable)?;
    let header = BlobHeader::parse(&bytes).map_err(|_| LoadError::Malformed)?;
    if declared != header.sealed_len() {
        return Err(LoadError::Malformed);
    }
    let Some(model) = expected.models.iter().find(|m| m.model_id == header.model_id) else {
        return Err(LoadError::OtherModel);
    };
    if header.plaintext_len > model.max_plaintext_len {
        return Err(LoadError::TooLarge);
    }
    if launch_binding(expected.tee, header.digest()) != expected.host_data {
        return Err(LoadError::NotThisLaunch);
    }
    Ok(header)
}

/// Step 2: every chunk, read into private memory and opened there, in order. The weights, or nothing.
pub fn load(
    source: &mut impl BlobSource,
    header: &BlobHeader,
    key: &[u8; 32],
) -> Result<Zeroizing<Vec<u8>>, LoadError> {
    let len = usize::try_from(header.plaintext_len).map_err(|_| LoadError::OutOfMemory)?;
    let mut weights = Zeroizing::new(Vec::new());
    weights.try_reserve_exact(len).map_err(|_| LoadError::OutOfMemory)?;
    weights.resize(len, 0);
    load_into(source, header, key, &mut weights)?;
    Ok(weights)
}

/// [`load`] into the caller's buffer of exactly the plaintext's length (a model whose runtime wants its weights
/// aligned). On an error the caller erases what was written.
pub fn load_into(
    source: &mut impl BlobSource,
    header: &BlobHeader,
    key: &[u8; 32],
    out: &mut [u8],
) -> Result<(), LoadError> {
    if out.len() as u64 != header.plaintext_len {
        return Err(LoadError::OutOfMemory);
    }
    // The first chunk is the largest.
    let largest_chunk = header.sealed_chunk_len(0).unwrap_or(0);
    let mut chunk = Zeroizing::new(Vec::new());
    chunk.try_reserve_exact(largest_chunk).map_err(|_| LoadError::OutOfMemory)?;
    let mut opener = ChunkOpener::new(*header, key);
    let (mut offset, mut index, mut written) = (HEADER_LEN as u64, 0, 0);
    while let Some(len) = header.sealed_chunk_len(index) {
        chunk.resize(len, 0);
        source.read(offset, &mut chunk).map_err(|_| LoadError::Unreadable)?;
        let opened = opener.open_next(&mut chunk).map_err(LoadError::Chunk)?;
        let into = out.get_mut(written..written + opened).ok_or(LoadError::Chunk(BlobError::ChunkLength))?;
        into.copy_from_slice(&chunk[..opened]);
        (offset, index, written) = (offset + len as u64, index + 1, written + opened);
    }
    // Every chunk from the first to the last opened, in order: the blob is whole.
    Ok(())
}

#[cfg(test)]
mod tests;
