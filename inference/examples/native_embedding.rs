//! paraphrase-MiniLM-L3-v2 compiled host-native, for `cargo xtask bench` (not a test):
//!
//! - `native_embedding WEIGHTS count N IDS`: N embeddings of the token ids IDS (comma-separated) and nothing else,
//!   for callgrind: the difference between two counts is the instructions per embedding.
//! - `native_embedding WEIGHTS time N IDS`: N timed embeddings; prints `{"p50_ns": ..., "runs": N}`.
//!
//! WEIGHTS is the burnpack `cargo xtask codegen` writes under target/.

use std::hint::black_box;
use std::time::Instant;

use inference::served::minilm::MODEL_ID;
use inference::{Graph, Input, WeightsBuffer};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [weights, mode, runs, ids] = args.as_slice() else {
        eprintln!("usage: native_embedding WEIGHTS count|time N IDS");
        std::process::exit(2);
    };
    let runs: usize = runs.parse().expect("N is a count");
    let ids: Vec<u32> = ids.split(',').map(|id| id.parse().expect("a token id")).collect();
    let weights = std::fs::read(weights).expect("the generated weights");
    let buffer = WeightsBuffer::copy_of(&weights).expect("memory for the weights");
    let embedder = Graph::load(MODEL_ID, buffer).expect("the weights load");
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let embedding = embedder.run(Input::Tokens(black_box(&ids))).expect("valid token ids");
        black_box(&embedding);
        samples.push(started.elapsed().as_nanos() as u64);
    }
    if mode == "time" {
        samples.sort_unstable();
        println!("{{\"p50_ns\": {}, \"runs\": {runs}}}", samples[samples.len() / 2]);
    }
}
