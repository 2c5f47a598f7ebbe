//! What every compiled-in graph shares: its weights' buffer, their load into burn, and the tensors in and out of
//! one run. [`crate::served::Graph`] (generated from the manifests) puts these together for each model.

use alloc::boxed::Box;
use alloc::vec::Vec;

use burn::prelude::*;
use burn::tensor::{Bytes, TensorData};
use burn_store::{BurnpackStore, ModuleSnapshot};
use zeroize::Zeroizing;

use crate::input::{Input, InputError, ServedModel};

/// Why the weights did not load: not a burnpack, or not this graph's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadError;

/// Why a run gave no output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunError {
    /// The input was refused before the graph ran.
    Input(InputError),
    /// The graph's output is not the manifest's (its length, or not f32): a wrong graph, never the input's fault.
    Output,
}

impl From<InputError> for RunError {
    fn from(error: InputError) -> Self {
        RunError::Input(error)
    }
}

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

    /// A buffer holding a copy of `weights` (host tools; the guest fills one chunk by chunk).
    pub fn copy_of(weights: &[u8]) -> Option<WeightsBuffer> {
        let mut buffer = WeightsBuffer::new(weights.len())?;
        buffer.bytes_mut().copy_from_slice(weights);
        Some(buffer)
    }

    /// The buffer's `len` bytes, to be filled.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut::<u128, u8>(&mut self.words)[..self.len]
    }
}

/// Makes a graph with `new` and loads the weights in `buffer` into it without copying them: the tensors are views
/// of the buffer, which burn owns from here on and frees without erasing (the loaded weights stay in memory while
/// the model serves anyway). Every tensor of the graph must be in the burnpack.
pub fn load<M: ModuleSnapshot>(new: impl FnOnce(&Device) -> M, mut buffer: WeightsBuffer) -> Result<Box<M>, LoadError> {
    let mut graph = Box::new(new(&Device::default()));
    let words = core::mem::take(&mut *buffer.words);
    let bytes = Bytes::from_elems(words).shared().view(0, buffer.len).map_err(|_| LoadError)?;
    let mut store = BurnpackStore::from_bytes(Some(bytes));
    match graph.load_from(&mut store) {
        Ok(loaded) if loaded.is_success() => Ok(graph),
        _ => Err(LoadError),
    }
}

/// A values input, checked against `model`, as the `[1, count]` tensor a values graph reads.
pub fn value_tensor(model: &ServedModel, input: Input<'_>) -> Result<Tensor<2>, InputError> {
    model.check(input)?;
    let Input::Values(values) = input else { return Err(InputError::WrongKind) };
    Ok(Tensor::from_data(TensorData::new(values.to_vec(), [1, values.len()]), &Device::default()))
}

/// A tokens input, checked against `model`, as the `input_ids` and all-ones `attention_mask` (both `[1, n]`) a
/// tokens graph reads: the client sends exactly one sentence's tokens, so none is padding.
pub fn token_tensors(model: &ServedModel, input: Input<'_>) -> Result<(Tensor<2, Int>, Tensor<2, Int>), InputError> {
    model.check(input)?;
    let Input::Tokens(ids) = input else { return Err(InputError::WrongKind) };
    let device = Device::default();
    let n = ids.len();
    let ids: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
    let input_ids = Tensor::from_data(TensorData::new(ids, [1, n]), &device);
    Ok((input_ids, Tensor::ones([1, n], &device)))
}

/// The graph's served output as `model.output_len` values, erased when dropped (the tensors inside burn are freed
/// unerased).
pub fn served_output<const D: usize>(model: &ServedModel, output: Tensor<D>) -> Result<Zeroizing<Vec<f32>>, RunError> {
    let values = Zeroizing::new(output.into_data().try_to_vec::<f32>().map_err(|_| RunError::Output)?);
    if values.len() != model.output_len {
        return Err(RunError::Output);
    }
    Ok(values)
}

/// Values inputs run as one batch: each is checked against `model`, those that pass go through `forward` together
/// as one `[n, count]` tensor, and the graph's `[n, output_len]` output is split back into one output per input.
/// One result per input, in input order; a refused input does not hold up the others. The rows of a values graph
/// never mix (every layer acts on each row alone), so batching changes no output beyond summation order.
pub fn run_values<const D: usize>(
    model: &ServedModel,
    inputs: &[&[f32]],
    forward: impl FnOnce(Tensor<2>) -> Tensor<D>,
) -> Vec<Result<Zeroizing<Vec<f32>>, RunError>> {
    let checked: Vec<Result<(), InputError>> = inputs.iter().map(|v| model.check(Input::Values(v))).collect();
    let accepted: Vec<&[f32]> = inputs.iter().zip(&checked).filter(|(_, c)| c.is_ok()).map(|(v, _)| *v).collect();
    let outputs = match accepted.first() {
        None => Err(RunError::Output),
        Some(first) => {
            let shape = [accepted.len(), first.len()];
            let values: Vec<f32> = accepted.concat();
            let output = forward(Tensor::from_data(TensorData::new(values, shape), &Device::default()));
            let batch_model = ServedModel { output_len: model.output_len * accepted.len(), ..*model };
            served_output(&batch_model, output)
        }
    };
    let mut rows = outputs.as_ref().ok().map(|all| all.chunks_exact(model.output_len.max(1)));
    checked
        .into_iter()
        .map(|check| {
            check?;
            let row = rows.as_mut().and_then(Iterator::next).ok_or(RunError::Output)?;
            Ok(Zeroizing::new(row.to_vec()))
        })
        .collect()
}
