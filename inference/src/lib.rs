//! Ampoule's compiled-in model (DESIGN.md §2): a small MLP that reads the 30 measurements of the Wisconsin
//! breast-cancer diagnostic data set and says malignant or benign.
//!
//! - [`model`]: the burn graph, generated from `model/ampoule-mlp.onnx` by burn-onnx (`cargo xtask codegen`; a test
//!   regenerates it and fails on drift). Normalisation is inside the graph: clients send raw measurements.
//! - [`limits`]: what an input may be (generated from `model/limits.json`), checked before the graph runs.
//! - `Classifier` (feature `graph`): the graph with its weights, loaded from the unsealed bytes at run time; the image never holds
//!   plaintext weights.
//! - [`minilm`] and `Embedder` (feature `graph`): paraphrase-MiniLM-L3-v2, a sentence-embedding model whose graph
//!   is compiled in the same way and whose 69 MB of weights arrive sealed at run time.
#![no_std]

extern crate alloc;

#[cfg(feature = "graph")]
mod classifier;
#[cfg(feature = "graph")]
mod embedder;
pub mod limits;
pub mod minilm;
#[cfg(feature = "graph")]
#[allow(missing_docs, clippy::all)]
#[rustfmt::skip]
pub mod model;

#[cfg(feature = "graph")]
pub use classifier::{Classifier, LoadError};
#[cfg(feature = "graph")]
pub use embedder::{Embedder, WeightsBuffer};

use crate::limits::{FEATURE_COUNT, FEATURE_MAX, FEATURE_MIN};

/// The model's identity, bound into the sealed weights' AAD: a blob sealed for another model does not load.
pub const MODEL_ID: [u8; 16] = *b"ampoule-mlp/v1\0\0";

/// Why an input is refused. Says where, never what the value was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputError {
    /// Not [`FEATURE_COUNT`] values.
    WrongCount,
    /// The value at this index is NaN or infinite.
    NotFinite(usize),
    /// The value at this index is outside `FEATURE_MIN[index]..=FEATURE_MAX[index]`.
    OutOfRange(usize),
}

/// Checks one input against [`limits`]: the count, finiteness, then each value's range.
pub fn check(features: &[f32]) -> Result<(), InputError> {
    if features.len() != FEATURE_COUNT {
        return Err(InputError::WrongCount);
    }
    if let Some(index) = features.iter().position(|v| !v.is_finite()) {
        return Err(InputError::NotFinite(index));
    }
    match (0..FEATURE_COUNT).find(|&i| !(FEATURE_MIN[i]..=FEATURE_MAX[i]).contains(&features[i])) {
        Some(index) => Err(InputError::OutOfRange(index)),
        None => Ok(()),
    }
}
