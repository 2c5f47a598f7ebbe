//! What paraphrase-MiniLM-L3-v2 accepts and returns (its model card and its tokenizer): checked before the graph
//! runs, so that no input reaches an out-of-range embedding row or position.

/// The model's identity in a sealed blob's header.
pub const MODEL_ID: [u8; 16] = *b"minilm-l3-v2/v1\0";
/// The most tokens one input may have: the model's `max_seq_length` (sentence-transformers truncates there).
pub const MAX_TOKENS: usize = 128;
/// The WordPiece vocabulary's size: every id is below it.
pub const VOCAB_SIZE: u32 = 30_522;
/// The embedding's dimension.
pub const EMBEDDING_DIM: usize = 384;

/// Why token ids are refused. Says where, never what the id was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// No tokens, or more than [`MAX_TOKENS`].
    Count,
    /// The id at this index is not in the vocabulary.
    OutOfVocabulary(usize),
}

/// Checks one input: 1 to [`MAX_TOKENS`] ids, each below [`VOCAB_SIZE`].
pub fn check_tokens(token_ids: &[u32]) -> Result<(), TokenError> {
    if token_ids.is_empty() || token_ids.len() > MAX_TOKENS {
        return Err(TokenError::Count);
    }
    match token_ids.iter().position(|&id| id >= VOCAB_SIZE) {
        Some(index) => Err(TokenError::OutOfVocabulary(index)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_ids_are_bounded() {
        assert_eq!(check_tokens(&[101, 102]), Ok(()));
        assert_eq!(check_tokens(&[]), Err(TokenError::Count));
        assert_eq!(check_tokens(&[101; MAX_TOKENS]), Ok(()));
        assert_eq!(check_tokens(&[101; MAX_TOKENS + 1]), Err(TokenError::Count));
        assert_eq!(check_tokens(&[101, VOCAB_SIZE - 1, VOCAB_SIZE]), Err(TokenError::OutOfVocabulary(2)));
    }
}
