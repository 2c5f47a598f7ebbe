//! The client's tokenizer (Hugging Face's Rust `tokenizers` on the fetched tokenizer.json) makes exactly the token
//! ids the reference outputs were computed from (Python `tokenizers` 0.22.2, `cargo xtask minilm-reference`), for
//! every reference sentence, the one cut at 128 tokens included.

use client::tokenizer::{MAX_TEXT_LEN, SentenceTokenizer};
use inference::served::minilm::MAX_TOKENS;

#[test]
fn the_client_tokenizes_every_reference_sentence_as_the_reference_did() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join("target/models/minilm/tokenizer.json");
    let tokenizer = SentenceTokenizer::from_file(&path)
        .unwrap_or_else(|e| panic!("{e:#}; `cargo xtask codegen` fetches the model's tokenizer"));
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("inference/model/minilm-reference.json")).unwrap())
            .unwrap();
    let cases = reference["cases"].as_array().unwrap();
    assert!(cases.len() >= 16);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> =
            case["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let tokens = tokenizer.encode(text).unwrap();
        assert_eq!(tokens.ids, expected, "{text:?}");
        assert_eq!(tokens.truncated, expected.len() == MAX_TOKENS, "{text:?}");
        assert_eq!((tokens.ids[0], *tokens.ids.last().unwrap()), (101, 102), "[CLS] ... [SEP]");
    }
    assert!(tokenizer.encode(&"a".repeat(MAX_TEXT_LEN + 1)).is_err());
    assert_eq!(tokenizer.encode("").unwrap().ids, [101, 102]);
}
