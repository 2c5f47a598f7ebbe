//! Every way the host can hand over the wrong blob is refused with its reason, and nothing is decrypted; the
//! right blob loads chunk by chunk.

use alloc::vec;
use alloc::vec::Vec;

use protocol::sealed_blob::{BlobDigest, MIN_CHUNK_LEN, seal};

use super::*;

const MODEL: [u8; 16] = [0x4d; 16];
/// Another model the image serves, with a smaller bound.
const SMALL_MODEL: [u8; 16] = [0x11; 16];
const MODELS: [ModelBound; 2] = [
    ModelBound { model_id: SMALL_MODEL, max_plaintext_len: 100 },
    ModelBound { model_id: MODEL, max_plaintext_len: 1 << 20 },
];
const KEY: [u8; 32] = [0x6b; 32];

fn weights() -> Vec<u8> {
    (0..MIN_CHUNK_LEN as usize * 3 + 100).map(|i| (i * 7 % 253) as u8).collect()
}

fn blob_of(weights: &[u8], model: [u8; 16], prefix: [u8; 7]) -> Vec<u8> {
    seal(weights, model, [0x1d; 16], &KEY, prefix, MIN_CHUNK_LEN).unwrap()
}

fn blob() -> Vec<u8> {
    blob_of(&weights(), MODEL, [1; 7])
}

fn digest_of(blob: &[u8]) -> BlobDigest {
    *BlobHeader::parse(&blob[..HEADER_LEN]).unwrap().digest()
}

/// The host: a blob, the size it declares, and how far it was read.
struct Host {
    blob: Vec<u8>,
    declared: u64,
    read_up_to: u64,
}

impl Host {
    fn new(blob: Vec<u8>) -> Host {
        Host { declared: blob.len() as u64, blob, read_up_to: 0 }
    }
}

impl BlobSource for Host {
    fn declared_len(&mut self) -> Result<u64, NotDelivered> {
        Ok(self.declared)
    }

    fn read(&mut self, offset: u64, into: &mut [u8]) -> Result<(), NotDelivered> {
        let start = offset as usize;
        into.copy_from_slice(self.blob.get(start..start + into.len()).ok_or(NotDelivered)?);
        self.read_up_to = self.read_up_to.max(offset + into.len() as u64);
        Ok(())
    }
}

/// A plain launch bound to `digest`.
fn launch(digest: &BlobDigest) -> Expected<'static> {
    Expected { models: &MODELS, tee: Tee::Plain, host_data: launch_binding(Tee::Plain, digest) }
}

fn load_from(host: &mut Host, expected: &Expected) -> Result<Vec<u8>, LoadError> {
    let header = read_header(host, expected)?;
    load(host, &header, &KEY).map(|weights| weights.to_vec())
}

#[test]
fn the_blob_the_launch_is_bound_to_loads_chunk_by_chunk() {
    let blob = blob();
    let mut host = Host::new(blob.clone());
    let header = read_header(&mut host, &launch(&digest_of(&blob))).unwrap();
    assert_eq!((header.key_id, host.read_up_to), ([0x1d; 16], HEADER_LEN as u64), "the header alone, first");
    assert_eq!(load(&mut host, &header, &KEY).unwrap().to_vec(), weights());
    assert_eq!(host.read_up_to, blob.len() as u64);
    // A TD's MRCONFIGID holds the whole digest.
    let td = Expected { tee: Tee::Tdx, host_data: digest_of(&blob), ..launch(&digest_of(&blob)) };
    assert!(read_header(&mut Host::new(blob), &td).is_ok());
}

#[test]
fn a_blob_this_launch_was_not_made_for_is_refused_from_its_header() {
    let blob = blob();
    let other = blob_of(&weights(), MODEL, [2; 7]);
    let small = blob_of(&weights(), SMALL_MODEL, [3; 7]);
    for (given, expected, error) in [
        // Another sealing of the same model: another digest.
        (other.clone(), launch(&digest_of(&blob)), LoadError::NotThisLaunch),
        // A launch bound to no blob at all.
        (blob.clone(), Expected { host_data: [0; 48], ..launch(&digest_of(&blob)) }, LoadError::NotThisLaunch),
        // The right digest, read as another TEE's field.
        (blob.clone(), Expected { tee: Tee::Tdx, ..launch(&digest_of(&blob)) }, LoadError::NotThisLaunch),
        (blob_of(&weights(), [0x4e; 16], [1; 7]), launch(&digest_of(&blob)), LoadError::OtherModel),
        // Each model has its own bound: these weights are too large for the small model, not for the other.
        (small.clone(), launch(&digest_of(&small)), LoadError::TooLarge),
        (vec![0; 64], launch(&digest_of(&blob)), LoadError::Malformed),
        (blob[..10].to_vec(), launch(&digest_of(&blob)), LoadError::Unreadable),
    ] {
        let mut host = Host::new(given);
        assert_eq!(read_header(&mut host, &expected), Err(error));
        assert!(host.read_up_to <= HEADER_LEN as u64, "{error:?}: nothing past the header was read");
    }
    // A declared size that is not the header's: truncated, or with something riding along.
    for declared in [blob.len() as u64 - 1, blob.len() as u64 + 1] {
        let mut host = Host { declared, ..Host::new(blob.clone()) };
        assert_eq!(read_header(&mut host, &launch(&digest_of(&blob))), Err(LoadError::Malformed));
    }
}

/// The sealed chunks of `blob`.
fn chunks(blob: &[u8]) -> Vec<Vec<u8>> {
    BlobHeader::parse(&blob[..HEADER_LEN]).unwrap().sealed_chunks(blob).map(<[u8]>::to_vec).collect()
}

fn reassembled(header_of: &[u8], chunks: &[Vec<u8>]) -> Vec<u8> {
    [&header_of[..HEADER_LEN], &chunks.concat()].concat()
}

#[test]
fn chunks_swapped_repeated_spliced_or_cut_load_nothing() {
    let blob = blob();
    let expected = launch(&digest_of(&blob));
    let original = chunks(&blob);
    let stranger = chunks(&blob_of(&weights(), MODEL, [2; 7]));
    let mut reordered = original.clone();
    reordered.swap(0, 1);
    let mut duplicated = original.clone();
    duplicated[1] = original[0].clone();
    let mut spliced = original.clone();
    spliced[2] = stranger[2].clone();
    let mut flipped = original.clone();
    flipped[3][5] ^= 1;
    for (name, chunks) in
        [("reordered", reordered), ("duplicated", duplicated), ("spliced", spliced), ("flipped", flipped)]
    {
        let mut host = Host::new(reassembled(&blob, &chunks));
        assert_eq!(load_from(&mut host, &expected), Err(LoadError::Chunk(BlobError::ChunkOpen)), "{name}");
    }
    // The host cuts the last chunk short but declares the full size: the read fails.
    let mut host = Host { declared: blob.len() as u64, ..Host::new(blob[..blob.len() - 1].to_vec()) };
    assert_eq!(load_from(&mut host, &expected), Err(LoadError::Unreadable));
    // The wrong key opens nothing.
    let mut host = Host::new(blob.clone());
    let header = read_header(&mut host, &expected).unwrap();
    assert_eq!(load(&mut host, &header, &[0; 32]).map(|w| w.len()), Err(LoadError::Chunk(BlobError::ChunkOpen)));
}

#[test]
fn plain_host_data_is_exactly_64_hex_digits() {
    let text = b"00ff10aB".repeat(8);
    let parsed = parse_host_data_hex(&text).unwrap();
    assert_eq!(parsed[..4], [0x00, 0xff, 0x10, 0xab]);
    assert_eq!(parse_host_data_hex(&text[..62]), None);
    assert_eq!(parse_host_data_hex(&[text.as_slice(), b"\n"].concat()), None);
    let mut bad = text.clone();
    bad[7] = b'g';
    assert_eq!(parse_host_data_hex(&bad), None);
    assert_eq!(parse_host_data_hex(b"+1".repeat(32).as_slice()), None);
}
