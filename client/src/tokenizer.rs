//! The sentence-embedding model's tokenizer on the client's side: text never reaches the guest, only token ids,
//! sealed. Hugging Face's `tokenizers` reads the model's `tokenizer.json` (uncased WordPiece, `[CLS]` and `[SEP]`
//! added) with no padding and truncation at the model's 128 tokens, as sentence-transformers runs this model.

use std::path::Path;

use anyhow::{Result, anyhow, ensure};
use inference::served::minilm::MAX_TOKENS;
use tokenizers::Tokenizer;
use tokenizers::utils::truncation::TruncationParams;

/// The most text one sentence may be: far beyond what 128 tokens cover, small enough to bound the tokenizer's work.
pub const MAX_TEXT_LEN: usize = 64 * 1024;

/// One sentence as token ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    /// `[CLS]`, the word pieces, `[SEP]`: at most [`MAX_TOKENS`].
    pub ids: Vec<u32>,
    /// Whether the text had more than the model reads (the ids are then its first [`MAX_TOKENS`]).
    pub truncated: bool,
}

/// The model's tokenizer.
pub struct SentenceTokenizer(Tokenizer);

impl SentenceTokenizer {
    /// Reads `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<SentenceTokenizer> {
        let mut tokenizer = Tokenizer::from_file(path).map_err(|e| anyhow!("reading {}: {e}", path.display()))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| anyhow!("{e}"))?;
        Ok(SentenceTokenizer(tokenizer))
    }

    /// The token ids of `text`.
    pub fn encode(&self, text: &str) -> Result<Tokens> {
        ensure!(text.len() <= MAX_TEXT_LEN, "the text is {} bytes; at most {MAX_TEXT_LEN} are tokenized", text.len());
        let encoding = self.0.encode(text, true).map_err(|e| anyhow!("tokenizing: {e}"))?;
        Ok(Tokens { ids: encoding.get_ids().to_vec(), truncated: !encoding.get_overflowing().is_empty() })
    }
}
