//! What a served model accepts and returns ([`ServedModel`], one per manifest, generated into [`crate::served`]), and
//! the check every input passes before a graph sees it: so that no input reaches an out-of-range embedding row, a
//! position past the model's length, or a value the model was never meant to read.

/// A model the image serves, as its manifest (`inference/models/NAME.toml`) describes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServedModel {
    /// The manifest's name (`--model NAME`).
    pub name: &'static str,
    /// The id its sealed blobs carry: a blob sealed for another model does not load.
    pub id: [u8; 16],
    /// The most plaintext a blob for it may hold.
    pub max_weight_bytes: u64,
    /// What one input is.
    pub input: InputKind,
    /// The number of values in one output.
    pub output_len: usize,
    /// The output's labels, one per value, or none.
    pub output_labels: &'static [&'static str],
}

/// What one input is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InputKind {
    /// `names.len()` f32 values, value `i` finite and within `min[i]..=max[i]`.
    Values {
        /// Each value's name, in input order.
        names: &'static [&'static str],
        /// The smallest accepted value of each.
        min: &'static [f32],
        /// The largest accepted value of each.
        max: &'static [f32],
    },
    /// 1 to `max_tokens` token ids, each below `vocab_size`.
    Tokens {
        /// The most ids one input may have.
        max_tokens: usize,
        /// Every id is below it.
        vocab_size: u32,
    },
}

/// One input, as a request carries it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Input<'a> {
    /// Values (an `Infer` request).
    Values(&'a [f32]),
    /// Token ids (an `Embed` request).
    Tokens(&'a [u32]),
}

/// Why an input is refused. Says where, never what the value was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputError {
    /// Values for a model that reads token ids, or the other way round.
    WrongKind,
    /// Not as many values as the model reads.
    WrongCount,
    /// The value at this index is NaN or infinite.
    NotFinite(usize),
    /// The value at this index is outside its range.
    OutOfRange(usize),
    /// No token ids, or more than the model takes.
    TokenCount,
    /// The id at this index is not in the vocabulary.
    OutOfVocabulary(usize),
}

impl ServedModel {
    /// Checks one input against the model's limits: its kind, then count, then each value or id.
    pub fn check(&self, input: Input<'_>) -> Result<(), InputError> {
        match (self.input, input) {
            (InputKind::Values { names, min, max }, Input::Values(values)) => {
                if values.len() != names.len() || min.len() != names.len() || max.len() != names.len() {
                    return Err(InputError::WrongCount);
                }
                if let Some(index) = values.iter().position(|v| !v.is_finite()) {
                    return Err(InputError::NotFinite(index));
                }
                match (0..values.len()).find(|&i| !(min[i]..=max[i]).contains(&values[i])) {
                    Some(index) => Err(InputError::OutOfRange(index)),
                    None => Ok(()),
                }
            }
            (InputKind::Tokens { max_tokens, vocab_size }, Input::Tokens(ids)) => {
                if ids.is_empty() || ids.len() > max_tokens {
                    return Err(InputError::TokenCount);
                }
                match ids.iter().position(|&id| id >= vocab_size) {
                    Some(index) => Err(InputError::OutOfVocabulary(index)),
                    None => Ok(()),
                }
            }
            _ => Err(InputError::WrongKind),
        }
    }

    /// The model whose sealed blobs carry `id`, among `models`.
    pub fn with_id(models: &[ServedModel], id: [u8; 16]) -> Option<&ServedModel> {
        models.iter().find(|m| m.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: ServedModel = ServedModel {
        name: "values",
        id: *b"values/v1\0\0\0\0\0\0\0",
        max_weight_bytes: 1,
        input: InputKind::Values { names: &["a", "b"], min: &[0.0, -1.0], max: &[1.0, 1.0] },
        output_len: 1,
        output_labels: &[],
    };
    const TOKENS: ServedModel = ServedModel {
        name: "tokens",
        id: *b"tokens/v1\0\0\0\0\0\0\0",
        max_weight_bytes: 1,
        input: InputKind::Tokens { max_tokens: 4, vocab_size: 100 },
        output_len: 1,
        output_labels: &[],
    };

    #[test]
    fn values_are_counted_then_checked_one_by_one() {
        assert_eq!(VALUES.check(Input::Values(&[0.5, -1.0])), Ok(()));
        assert_eq!(VALUES.check(Input::Values(&[1.0, 1.0])), Ok(()));
        assert_eq!(VALUES.check(Input::Values(&[0.5])), Err(InputError::WrongCount));
        assert_eq!(VALUES.check(Input::Values(&[0.5, 0.0, 0.0])), Err(InputError::WrongCount));
        assert_eq!(VALUES.check(Input::Values(&[f32::NAN, 9.0])), Err(InputError::NotFinite(0)));
        assert_eq!(VALUES.check(Input::Values(&[0.0, f32::INFINITY])), Err(InputError::NotFinite(1)));
        assert_eq!(VALUES.check(Input::Values(&[0.0, -1.5])), Err(InputError::OutOfRange(1)));
        assert_eq!(VALUES.check(Input::Tokens(&[1])), Err(InputError::WrongKind));
    }

    #[test]
    fn token_counts_and_ids_are_bounded() {
        assert_eq!(TOKENS.check(Input::Tokens(&[1, 99])), Ok(()));
        assert_eq!(TOKENS.check(Input::Tokens(&[1; 4])), Ok(()));
        assert_eq!(TOKENS.check(Input::Tokens(&[])), Err(InputError::TokenCount));
        assert_eq!(TOKENS.check(Input::Tokens(&[1; 5])), Err(InputError::TokenCount));
        assert_eq!(TOKENS.check(Input::Tokens(&[1, 99, 100])), Err(InputError::OutOfVocabulary(2)));
        assert_eq!(TOKENS.check(Input::Values(&[1.0])), Err(InputError::WrongKind));
    }

    #[test]
    fn a_model_is_found_by_its_id() {
        let models = [VALUES, TOKENS];
        assert_eq!(ServedModel::with_id(&models, TOKENS.id).map(|m| m.name), Some("tokens"));
        assert_eq!(ServedModel::with_id(&models, [0; 16]), None);
    }
}
