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

/// A buffer for the weights with the alignment burn's `Bytes` wants (16, its MAX_ALIGN): burn takes it as it is.
/// A less aligned buffer (a `Vec<u8>`) it would copy, and its burnpack reader would copy it once more, so that a
/// 69 MB model needed three times its size in the heap. Erased on drop unless handed to burn.
pub struct WeightsBuffer {
    words: Zeroizing<Vec<u128>>,
    len: usize,
}

impl WeightsBuffer {
    /// A zeroed buffer of `len` bytes, or `None` if the heap cannot hold it.
    pub fn new(len: usize) -> Option<WeightsBuffer> {
        let mut words = Zeroizing::new(Vec::new());
        let count = len.div_ceil(16);
        words.try_reserve_exact(count).ok()?;
        words.resize(count, 0);
        Some(WeightsBuffer { words, len })
    }

    /// The buffer's `len` bytes, to be filled.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut::<u128, u8>(&mut self.words)[..self.len]
    }
}
use crate::minilm::{TokenError, check_tokens};
use crate::model::paraphrase_minilm_l3_v2::Model;

/// The sentence-embedding model with its weights.
pub struct Embedder {
    model: Model,
    device: Device,
}

impl Embedder {
    /// Loads the weights (the burnpack burn-onnx wrote) into the generated graph, copying them into a
    /// [`WeightsBuffer`] first (host tools; the guest fills one directly).
    pub fn from_weights(weights: &[u8]) -> Result<Embedder, LoadError> {
        let mut buffer = WeightsBuffer::new(weights.len()).ok_or(LoadError)?;
        buffer.bytes_mut().copy_from_slice(weights);
        Embedder::from_buffer(buffer)
    }

    /// Loads the weights in `buffer` into the generated graph without copying them: the tensors are views of the
    /// buffer, which burn owns from here on and frees without erasing (the loaded weights stay in memory while
    /// the model serves anyway).
    pub fn from_buffer(mut buffer: WeightsBuffer) -> Result<Embedder, LoadError> {
        let device = Device::default();
        let mut model = Model::new(&device);
        let words = core::mem::take(&mut *buffer.words);
        let bytes = Bytes::from_elems(words).shared().view(0, buffer.len).map_err(|_| LoadError)?;
        let mut store = BurnpackStore::from_bytes(Some(bytes));
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
