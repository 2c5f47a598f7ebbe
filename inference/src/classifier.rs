//! The generated graph with its weights.

use alloc::vec::Vec;

use burn::prelude::*;
use burn::tensor::{Bytes, TensorData};
use burn_store::{BurnpackStore, ModuleSnapshot};
use zeroize::Zeroizing;

use crate::limits::FEATURE_COUNT;
use crate::{InputError, check, model};

/// Why the weights did not load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadError;

/// The MLP with its weights.
pub struct Classifier {
    model: model::ampoule_mlp::Model,
    device: Device,
}

impl Classifier {
    /// Loads the weights (a burnpack, as burn-onnx wrote `model/ampoule-mlp.bpk`) into the generated graph. The
    /// caller's buffer is the caller's to erase. The copy handed to burn, and burn's own tensors, are freed without
    /// being erased: burn owns them. The loaded weights must stay in memory while the model serves anyway.
    pub fn from_weights(weights: &[u8]) -> Result<Classifier, LoadError> {
        let device = Device::default();
        let mut model = model::ampoule_mlp::Model::new(&device);
        let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(weights.to_vec())));
        match model.load_from(&mut store) {
            Ok(loaded) if loaded.is_success() => Ok(Classifier { model, device }),
            _ => Err(LoadError),
        }
    }

    /// The class probabilities for one input, in [`crate::limits::CLASSES`] order (one per class), after [`check`].
    /// The returned values are erased when dropped; the input and output tensors inside burn are freed unerased.
    pub fn classify(&self, features: &[f32]) -> Result<Zeroizing<Vec<f32>>, InputError> {
        check(features)?;
        let input = Tensor::<2>::from_data(TensorData::new(features.to_vec(), [1, FEATURE_COUNT]), &self.device);
        let output = self.model.forward(input).into_data();
        // The graph's output is f32 by construction; were it not, the empty result is refused by the caller's
        // length check (one value per class) rather than panicking here.
        let probabilities = Zeroizing::new(output.try_to_vec::<f32>().unwrap_or_default());
        Ok(probabilities)
    }
}
