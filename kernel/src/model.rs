//! The sealed model: a deploy artifact outside the measured image (DESIGN.md §11), handed over by the untrusted
//! host as the fw_cfg file `protocol::sealed_blob::FW_CFG_MODEL` and loaded by `loader::model_load`: the header
//! is checked against the launch's binding before any key is asked for, and the chunks are read into private memory
//! and authenticated one by one with the released key. The image has a graph for each model in
//! `inference::served::SERVED` (one per manifest in `inference/models/`); the blob's model id picks which one
//! serves. The weights are opened straight into the aligned buffer burn then owns (`inference::WeightsBuffer`,
//! erased if the load fails), so that the heap holds them once; burn frees its tensors unerased. The key is erased
//! when the caller's `ReleasedKey` drops.

use inference::served::SERVED;
use inference::{Graph, Input, InputError, RunError, WeightsBuffer};
use loader::model_load::{self, BlobSource, Expected, LoadError, ModelBound, NotDelivered};
use loader::{Attester, ReleasedKey};
use protocol::sealed_blob::{BlobHeader, FW_CFG_MODEL};
use protocol::service::ServiceErrorCode;
use zeroize::Zeroizing;

use alloc::vec::Vec;

use crate::fw_cfg::{FwCfg, FwCfgFile};

/// What the heap keeps beside the weights: the chunk buffer (at most 1 MiB), the network's buffers, and each
/// request's activations (MiniLM at 128 tokens: under 4 MiB).
const HEAP_RESERVE: u64 = 16 << 20;

/// The models the image has a graph for, each bounded by its manifest and by the heap: the weights are loaded
/// into the buffer burn keeps, so they need their own size once, beside [`HEAP_RESERVE`].
fn model_bounds() -> [ModelBound; SERVED.len()] {
    let heap_bound = crate::heap::size().saturating_sub(HEAP_RESERVE);
    SERVED.map(|m| ModelBound { model_id: m.id, max_plaintext_len: m.max_weight_bytes.min(heap_bound) })
}

/// The blob as the host hands it over.
pub struct FwCfgBlob {
    device: FwCfg,
    file: FwCfgFile,
}

impl FwCfgBlob {
    /// The host's blob, if it handed one over.
    pub fn open(mut device: FwCfg) -> Result<FwCfgBlob, LoadError> {
        let file = device.find(FW_CFG_MODEL).ok_or(LoadError::Unreadable)?;
        Ok(FwCfgBlob { device, file })
    }
}

impl BlobSource for FwCfgBlob {
    fn declared_len(&mut self) -> Result<u64, NotDelivered> {
        Ok(self.file.size.into())
    }

    fn read(&mut self, offset: u64, into: &mut [u8]) -> Result<(), NotDelivered> {
        self.device.read(self.file, offset, into)
    }
}

/// The blob's header, if it holds one of the image's models within that model's bound and is the blob this launch is
/// bound to (the binding from `attester`, the platform's own report).
pub fn read_header(blob: &mut FwCfgBlob, attester: &mut impl Attester) -> Result<BlobHeader, &'static str> {
    let host_data = attester.launch_binding().map_err(|_| "launch-binding-unavailable")?;
    let models = model_bounds();
    let expected = Expected { models: &models, tee: attester.tee(), host_data };
    model_load::read_header(blob, &expected).map_err(LoadError::reason)
}

/// Loads every chunk with `key` straight into the buffer burn will own (the heap holds the weights once, not twice),
/// then the weights into the graph of the header's model; the graph and the number of weight bytes.
pub fn unseal(blob: &mut FwCfgBlob, header: &BlobHeader, key: &ReleasedKey) -> Result<(Graph, usize), &'static str> {
    let len = usize::try_from(header.plaintext_len).map_err(|_| LoadError::OutOfMemory.reason())?;
    let mut buffer = WeightsBuffer::new(len).ok_or(LoadError::OutOfMemory.reason())?;
    model_load::load_into(blob, header, &key.key, buffer.bytes_mut()).map_err(LoadError::reason)?;
    let graph = Graph::load(header.model_id, buffer).map_err(|_| "weights-did-not-load")?;
    Ok((graph, len))
}

/// The loaded graph as the service's [`loader::Model`], timing each run.
pub struct LoadedModel {
    graph: Graph,
    last_run_cycles: u64,
}

impl LoadedModel {
    /// Serves `graph`.
    pub fn new(graph: Graph) -> Self {
        Self { graph, last_run_cycles: 0 }
    }

    /// TSC cycles the last run took (input check and graph; a whole batch), for the `served` record. Under QEMU's
    /// `-icount shift=0` the TSC counts instructions, which is how `cargo xtask bench` counts them.
    pub fn last_run_cycles(&self) -> u64 {
        self.last_run_cycles
    }

    /// Runs `input` through the graph, timing it; the output, or the error the client is sent.
    fn run(&mut self, input: Input<'_>) -> Result<Zeroizing<Vec<f32>>, ServiceErrorCode> {
        let started = crate::time::rdtsc();
        let output = self.graph.run(input);
        self.last_run_cycles = crate::time::rdtsc().wrapping_sub(started);
        output.map_err(service_error)
    }
}

/// The error the client is sent for a run that gave no output.
fn service_error(error: RunError) -> ServiceErrorCode {
    match error {
        RunError::Input(InputError::WrongKind) => ServiceErrorCode::WrongModel,
        RunError::Input(InputError::WrongCount) => ServiceErrorCode::WrongValueCount,
        RunError::Input(InputError::NotFinite(_)) => ServiceErrorCode::NonFiniteValue,
        RunError::Input(InputError::OutOfRange(_)) => ServiceErrorCode::ValueOutOfRange,
        RunError::Input(InputError::TokenCount) => ServiceErrorCode::TokenCountOutOfRange,
        RunError::Input(InputError::OutOfVocabulary(_)) => ServiceErrorCode::TokenOutOfVocabulary,
        RunError::Output => ServiceErrorCode::Internal,
    }
}

impl loader::Model for LoadedModel {
    fn infer(&mut self, values: &[f32]) -> Result<Zeroizing<Vec<f32>>, ServiceErrorCode> {
        self.run(Input::Values(values))
    }

    fn embed(&mut self, token_ids: &[u32]) -> Result<Zeroizing<Vec<f32>>, ServiceErrorCode> {
        self.run(Input::Tokens(token_ids))
    }

    /// One pass through the graph for the whole batch, timed as one run. A batch of one takes the single-input
    /// path, which copies nothing into a batch tensor.
    fn infer_batch(&mut self, inputs: &[&[f32]]) -> Vec<Result<Zeroizing<Vec<f32>>, ServiceErrorCode>> {
        if let [values] = inputs {
            return alloc::vec![self.run(Input::Values(values))];
        }
        let started = crate::time::rdtsc();
        let outputs = self.graph.run_values(inputs);
        self.last_run_cycles = crate::time::rdtsc().wrapping_sub(started);
        outputs.into_iter().map(|output| output.map_err(service_error)).collect()
    }
}
