//! paraphrase-MiniLM-L3-v2, compiled from the ONNX file as shipped and loaded with its weights (69 MB, generated
//! under target/ by `cargo xtask codegen`; `cargo xtask test` makes them first), against the embeddings onnxruntime
//! computed from the same ONNX file for the same token ids (`cargo xtask minilm-reference`).
//!
//! Tolerance: 1e-5 absolute per value, and cosine similarity above 0.99999 per sentence. Why that is right: the
//! embedding is the mean over tokens of the last of 3 transformer layers, each a chain of 384- and 1536-term f32
//! dot products, layer norms, an erf-GELU and a softmax over at most 128 positions. burn and onnxruntime may sum in
//! another order and compute erf, exp and rsqrt with other f32 approximations (a few ulp each). Reordering n f32
//! additions moves a sum by at most about n * 2^-24 of the sum of the magnitudes; with the layer norms keeping
//! values of order 0.1 to 1 and the errors of independent terms mostly cancelling, the differences measured are
//! below 1e-6 (6.6e-7 over the 17 sentences when this was written). 1e-5 leaves that an order of magnitude of room;
//! a wrong weight, a wrong operator or a wrong mask moves values by 1e-2 or more. The largest difference found is
//! printed.

use inference::served::minilm::{MAX_TOKENS, MODEL_ID, OUTPUT_LEN as EMBEDDING_DIM, VOCAB_SIZE};
use inference::{Graph, Input, InputError, LoadError, RunError, WeightsBuffer};

const REFERENCE: &str = include_str!("../model/minilm-reference.json");
const TOLERANCE: f32 = 1e-5;

fn weights() -> Vec<u8> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/models/minilm/paraphrase-minilm-l3-v2.bpk");
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!("{}: {e}; `cargo xtask codegen` fetches the model and writes its weights", path.display())
    })
}

fn cases() -> Vec<(String, Vec<u32>, Vec<f32>)> {
    let reference: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
    reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let ids = c["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            let embedding = c["embedding"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            (c["text"].as_str().unwrap().to_string(), ids, embedding)
        })
        .collect()
}

fn load(weights: &[u8]) -> Result<Graph, LoadError> {
    Graph::load(MODEL_ID, WeightsBuffer::copy_of(weights).unwrap())
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn the_graph_matches_onnxruntime_on_every_reference_sentence_and_refuses_bad_tokens() {
    let embedder = load(&weights()).unwrap();
    let embed = |ids: &[u32]| embedder.run(Input::Tokens(ids));
    let cases = cases();
    assert!(cases.len() >= 16);
    assert!(cases.iter().any(|(_, ids, _)| ids.len() == MAX_TOKENS), "a case at the maximum length");
    let mut worst = 0f32;
    for (text, ids, expected) in &cases {
        let got = embed(ids).unwrap();
        assert_eq!(got.len(), EMBEDDING_DIM);
        let difference = got.iter().zip(expected).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(difference <= TOLERANCE, "{text:?}: largest difference {difference:e}");
        assert!(cosine(&got, expected) > 0.99999, "{text:?}");
        worst = worst.max(difference);
    }
    eprintln!("largest difference from onnxruntime over {} sentences: {worst:e}", cases.len());
    // Distinct sentences give distinct embeddings: the weights are really in use.
    assert!(cosine(&cases[0].2, &cases[1].2) < 0.99);
    let refused = |error| Err(RunError::Input(error));
    assert_eq!(embed(&[]), refused(InputError::TokenCount));
    assert_eq!(embed(&[101; MAX_TOKENS + 1]), refused(InputError::TokenCount));
    assert_eq!(embed(&[101, VOCAB_SIZE, 102]), refused(InputError::OutOfVocabulary(1)));
    assert_eq!(embedder.run(Input::Values(&[1.0])), refused(InputError::WrongKind));
}

#[test]
fn weights_that_are_not_the_models_do_not_load() {
    let mut truncated = weights();
    truncated.truncate(truncated.len() / 2);
    assert!(load(&truncated).is_err());
    assert!(load(include_bytes!("../model/ampoule-mlp.bpk")).is_err());
}
