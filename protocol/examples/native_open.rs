//! The sealed blob's authenticated load host-native, for `cargo xtask bench` (not a test): `native_open WEIGHTS N`
//! seals the file WEIGHTS as `cargo xtask seal` does (1 MiB chunks; a throwaway key: nothing needs the broker's),
//! then opens every chunk N times and prints `{"mb_per_s": ...}`, the best pass's plaintext megabytes per second.
//! The same AES-256-GCM work as the guest's load, without the device and the copies.

use std::time::{Duration, Instant};

use protocol::sealed_blob::{BlobHeader, ChunkOpener, HEADER_LEN, MAX_CHUNK_LEN, seal};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [weights, passes] = args.as_slice() else {
        eprintln!("usage: native_open WEIGHTS N");
        std::process::exit(2);
    };
    let passes: usize = passes.parse().expect("N is a count");
    let weights = std::fs::read(weights).expect("the weights");
    let key = [0x5a; 32];
    let blob = seal(&weights, [1; 16], [2; 16], &key, [3; 7], MAX_CHUNK_LEN).expect("the weights seal");
    let header = BlobHeader::parse(&blob[..HEADER_LEN]).expect("a header");
    let mut best = Duration::MAX;
    for _ in 0..passes {
        let mut chunks: Vec<Vec<u8>> = header.sealed_chunks(&blob).map(<[u8]>::to_vec).collect();
        let mut opener = ChunkOpener::new(header, &key);
        let started = Instant::now();
        for chunk in &mut chunks {
            opener.open_next(chunk).expect("a chunk sealed here opens");
        }
        best = best.min(started.elapsed());
    }
    println!("{{\"mb_per_s\": {}}}", header.plaintext_len as f64 / 1e6 / best.as_secs_f64());
}
