//! paraphrase-MiniLM-L3-v2 with its weights: token ids in, the mean-pooled 384-float sentence embedding out (the
//! ONNX file's output `461`). The graph runs at the input's own length (burn-onnx kept the export's dynamic
//! shapes), with an attention mask of ones: the client sends exactly the tokens of one sentence, `[CLS]` first and
//! `[SEP]` last, as the tokenizer makes them.

use alloc::vec::Vec;

use burn::prelude::*;
use burn::tensor::{Bytes, TensorData};
use burn_store::{BurnpackStore, ModuleSnapshot};
use zeroize::Zeroizing;

use crate::classifier::LoadError;
use crate::minilm::{TokenError, check_tokens};
use crate::model::paraphrase_minilm_l3_v2::Model;

/// The sentence-embedding model with its weights.
pub struct Embedder {
    model: Model,
    device: Device,
}

impl Embedder {
    /// Loads the weights (the burnpack burn-onnx wrote) into the generated graph. The buffer is handed to burn,
    /// which frees it (and its own tensors) without erasing them: burn owns them, and the loaded weights stay in
    /// memory while the model serves anyway.
    pub fn from_weights(weights: Vec<u8>) -> Result<Embedder, LoadError> {
        let device = Device::default();
        let mut model = Model::new(&device);
        let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(weights)));
        match model.load_from(&mut store) {
            Ok(loaded) if loaded.is_success() => Ok(Embedder { model, device }),
            _ => Err(LoadError),
        }
    }

    /// The embedding of one sentence's token ids, after [`check_tokens`]. Erased when dropped; the tensors inside
    /// burn are freed unerased.
    pub fn embed(&self, token_ids: &[u32]) -> Result<Zeroizing<Vec<f32>>, TokenError> {
        check_tokens(token_ids)?;
        let n = token_ids.len();
        let ids: Vec<i64> = token_ids.iter().map(|&id| i64::from(id)).collect();
        let input_ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n]), &self.device);
        let attention_mask = Tensor::<2, Int>::ones([1, n], &self.device);
        let (_, _, _, pooled) = self.model.forward(input_ids, attention_mask);
        // f32 by construction; were it not, the empty result is refused by the caller's length check.
        Ok(Zeroizing::new(pooled.into_data().try_to_vec::<f32>().unwrap_or_default()))
    }
}
