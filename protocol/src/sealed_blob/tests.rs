use alloc::vec::Vec;

use super::*;

const KEY: [u8; 32] = [7; 32];
const CHUNK: u32 = MIN_CHUNK_LEN;

/// 2.5 chunks of recognisable plaintext.
fn weights() -> Vec<u8> {
    (0..CHUNK as usize * 5 / 2).map(|i| (i % 251) as u8).collect()
}

fn blob_with(plaintext: &[u8], prefix: [u8; 7]) -> Vec<u8> {
    seal(plaintext, [1; 16], [2; 16], &KEY, prefix, CHUNK).unwrap()
}

fn blob() -> Vec<u8> {
    blob_with(&weights(), [3; 7])
}

/// The sealed chunks of `blob`, in order.
fn chunks(blob: &[u8]) -> Vec<Vec<u8>> {
    let header = BlobHeader::parse(&blob[..HEADER_LEN]).unwrap();
    let chunks: Vec<Vec<u8>> = header.sealed_chunks(blob).map(<[u8]>::to_vec).collect();
    assert_eq!(chunks.len(), header.chunk_count as usize);
    chunks
}

/// Opens `chunks` in the order given as the chunks of `blob`'s header; the plaintext, or the first error.
fn open(header_of: &[u8], chunks: &[Vec<u8>], key: &[u8; 32]) -> Result<(Vec<u8>, bool), BlobError> {
    let header = BlobHeader::parse(&header_of[..HEADER_LEN])?;
    let mut opener = ChunkOpener::new(header, key);
    let mut plaintext = Vec::new();
    for chunk in chunks {
        let mut chunk = chunk.clone();
        let len = opener.open_next(&mut chunk)?;
        plaintext.extend_from_slice(&chunk[..len]);
    }
    Ok((plaintext, opener.finished()))
}

#[test]
fn a_blob_opens_chunk_by_chunk_with_its_key_only() {
    let blob = blob();
    let header = BlobHeader::parse(&blob[..HEADER_LEN]).unwrap();
    assert_eq!((header.chunk_count, header.plaintext_len), (3, u64::from(CHUNK) * 5 / 2));
    assert_eq!(header.sealed_len(), blob.len() as u64);
    assert_eq!(header.sealed_chunk_len(2), Some(CHUNK as usize / 2 + TAG_LEN));
    assert_eq!(header.sealed_chunk_len(3), None);
    assert_eq!(*header.digest(), <[u8; 48]>::from(Sha384::digest(&blob[..HEADER_LEN])));
    assert_eq!(open(&blob, &chunks(&blob), &KEY), Ok((weights(), true)));
    assert_eq!(open(&blob, &chunks(&blob), &[8; 32]), Err(BlobError::ChunkOpen));
    // The plaintext is nowhere in the blob.
    assert!(!blob.windows(16).any(|w| w == &weights()[..16]));
}

#[test]
fn truncation_reordering_duplication_and_extension_are_refused() {
    let blob = blob();
    let [first, second, last]: [Vec<u8>; 3] = chunks(&blob).try_into().unwrap();
    // Truncated: the opener is not finished (the guest refuses the model).
    assert_eq!(open(&blob, &[first.clone(), second.clone()], &KEY).map(|(_, done)| done), Ok(false));
    // A chunk cut short.
    assert_eq!(open(&blob, &[first[..100].to_vec()], &KEY), Err(BlobError::ChunkLength));
    // Reordered, duplicated.
    assert_eq!(open(&blob, &[second.clone(), first.clone()], &KEY), Err(BlobError::ChunkOpen));
    assert_eq!(open(&blob, &[first.clone(), first.clone()], &KEY), Err(BlobError::ChunkOpen));
    // A chunk after the last.
    let extended = [first.clone(), second.clone(), last.clone(), last.clone()];
    assert_eq!(open(&blob, &extended, &KEY), Err(BlobError::TooManyChunks));
    // Every byte of every chunk is authenticated.
    for (index, chunk) in [&first, &second, &last].into_iter().enumerate() {
        for at in (0..chunk.len()).step_by(97).chain([chunk.len() - 1]) {
            let mut chunks = chunks(&blob);
            chunks[index][at] ^= 1;
            assert_eq!(open(&blob, &chunks, &KEY), Err(BlobError::ChunkOpen), "chunk {index} byte {at}");
        }
    }
}

#[test]
fn a_chunk_from_another_blob_or_a_moved_last_flag_is_refused() {
    let blob = blob();
    // Another sealing under the same key (which `cargo xtask seal` never does: a fresh key each time): another
    // prefix, or the same prefix for another model (another header, so another AAD).
    let other_prefix = blob_with(&weights(), [4; 7]);
    let other_model = seal(&weights(), [9; 16], [2; 16], &KEY, [3; 7], CHUNK).unwrap();
    for stranger in [&other_prefix, &other_model] {
        let mut spliced = chunks(&blob);
        spliced[1] = chunks(stranger)[1].clone();
        assert!(open(&blob, &spliced, &KEY) == Err(BlobError::ChunkOpen), "a chunk of another blob opened");
    }
    // A blob that ends one chunk early, its new last chunk flagged as last: its header differs, so its chunks
    // carry another AAD; and the middle chunk of the original, flagged as last, does not open at its place.
    let shorter = blob_with(&weights()[..CHUNK as usize * 2], [3; 7]);
    let mut spliced = chunks(&blob);
    spliced[1] = chunks(&shorter)[1].clone();
    assert_eq!(open(&blob, &spliced, &KEY), Err(BlobError::ChunkOpen));
    let header = BlobHeader::parse(&blob[..HEADER_LEN]).unwrap();
    let mut flagged = weights()[CHUNK as usize..CHUNK as usize * 2].to_vec();
    let mut nonce = header.nonce(1);
    nonce[11] = 1;
    let tag = Aes256Gcm::new((&KEY).into())
        .encrypt_inout_detached(&nonce.into(), header.digest(), (&mut flagged[..]).into())
        .unwrap();
    flagged.extend_from_slice(&tag);
    let mut spliced = chunks(&blob);
    spliced[1] = flagged;
    assert_eq!(open(&blob, &spliced, &KEY), Err(BlobError::ChunkOpen));
}

#[test]
fn a_changed_header_changes_the_digest_and_no_chunk_opens() {
    let blob = blob();
    for at in 8..HEADER_LEN {
        let mut header = blob[..HEADER_LEN].to_vec();
        header[at] ^= 1;
        match BlobHeader::parse(&header) {
            // Still a header: another digest, so the first chunk does not open (or has another length).
            Ok(parsed) => {
                assert_ne!(parsed.digest(), BlobHeader::parse(&blob[..HEADER_LEN]).unwrap().digest());
                assert!(open(&header, &chunks(&blob)[..1], &KEY).is_err(), "byte {at}");
            }
            Err(error) => assert_eq!(error, BlobError::Malformed, "byte {at}"),
        }
    }
}

#[test]
fn malformed_headers_are_refused() {
    let blob = blob();
    let header = |edit: &dyn Fn(&mut [u8])| {
        let mut header = blob[..HEADER_LEN].to_vec();
        edit(&mut header);
        BlobHeader::parse(&header)
    };
    assert_eq!(BlobHeader::parse(&blob[..HEADER_LEN - 1]), Err(BlobError::Malformed));
    assert_eq!(BlobHeader::parse(&blob[..HEADER_LEN + 1]), Err(BlobError::Malformed));
    assert_eq!(header(&|h| h[0] ^= 1), Err(BlobError::Malformed));
    assert_eq!(header(&|h| h[47] = 1), Err(BlobError::Malformed));
    let set_u32 = |at: usize, value: u32| move |h: &mut [u8]| h[at..at + 4].copy_from_slice(&value.to_be_bytes());
    assert_eq!(header(&set_u32(48, MIN_CHUNK_LEN - 1)), Err(BlobError::Malformed));
    assert_eq!(header(&set_u32(48, MAX_CHUNK_LEN + 1)), Err(BlobError::Malformed));
    assert_eq!(header(&set_u32(52, 4)), Err(BlobError::Malformed));
    assert_eq!(header(&set_u32(52, 2)), Err(BlobError::Malformed));
    let set_len = |value: u64| move |h: &mut [u8]| h[56..64].copy_from_slice(&value.to_be_bytes());
    assert_eq!(header(&set_len(0)), Err(BlobError::Malformed));
    assert_eq!(header(&set_len(MAX_PLAINTEXT_LEN + 1)), Err(BlobError::Malformed));
    assert_eq!(seal(&[], [1; 16], [2; 16], &KEY, [3; 7], CHUNK), Err(BlobError::Malformed));
    assert_eq!(seal(&weights(), [1; 16], [2; 16], &KEY, [3; 7], 16), Err(BlobError::Malformed));
}

#[test]
fn a_launch_carries_as_much_of_the_digest_as_its_field_holds() {
    let digest: BlobDigest = core::array::from_fn(|i| i as u8 + 1);
    assert_eq!(launch_binding(Tee::Tdx, &digest), digest);
    for tee in [Tee::Snp, Tee::Plain] {
        let binding = launch_binding(tee, &digest);
        assert_eq!((&binding[..32], &binding[32..]), (&digest[..32], &[0u8; 16][..]));
    }
}
