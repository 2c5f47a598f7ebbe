//! The sealed model: a deploy artifact outside the measured image (DESIGN.md §11), handed over by the untrusted
//! host as the fw_cfg file `protocol::sealed_blob::FW_CFG_MODEL` and loaded by `loader::model_load`: the header
//! is checked against the launch's binding before any key is asked for, and the chunks are read into private memory
//! and authenticated one by one with the released key. The image has a graph for each of [`SERVED_MODELS`]; the
//! blob's model id picks which one serves. The unsealed weights are in an erasing buffer until burn has loaded them
//! (the MLP's; MiniLM's 69 MB are loaded straight into the aligned buffer burn then owns, so that the heap holds
//! them once; burn's own copies are freed unerased: see
//! `inference::Classifier::from_weights`, `inference::Embedder::from_weights`); the key is erased when the caller's
//! `ReleasedKey` drops.

use inference::limits::CLASSES;
use inference::minilm::{EMBEDDING_DIM, TokenError};
use inference::{Classifier, Embedder, WeightsBuffer};
use loader::model_load::{self, BlobSource, Expected, LoadError, NotDelivered};
use loader::{Attester, ReleasedKey};
use protocol::sealed_blob::{BlobHeader, FW_CFG_MODEL};
use protocol::service::ServiceErrorCode;
use zeroize::Zeroizing;

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::fw_cfg::{FwCfg, FwCfgFile};

/// The models the image has a graph for.
pub const SERVED_MODELS: [[u8; 16]; 2] = [inference::MODEL_ID, inference::minilm::MODEL_ID];

/// What the heap keeps beside the weights: the chunk buffer (at most 1 MiB), the network's buffers, and each
/// request's activations (MiniLM at 128 tokens: under 4 MiB).
const HEAP_RESERVE: u64 = 16 << 20;
/// The MLP's weights are 4.6 KB and are copied once into burn: a larger blob for it is refused.
const MLP_MAX_PLAINTEXT_LEN: u64 = 1 << 20;

/// The largest plaintext the guest takes: MiniLM's weights are loaded into the buffer burn keeps, so they need
/// their own size once, beside [`HEAP_RESERVE`].
fn max_plaintext_len() -> u64 {
    crate::heap::size().saturating_sub(HEAP_RESERVE)
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

/// The blob's header, if it holds one of the image's models and is the blob this launch is bound to (the binding from
/// `attester`, the platform's own report).
pub fn read_header(blob: &mut FwCfgBlob, attester: &mut impl Attester) -> Result<BlobHeader, &'static str> {
    let host_data = attester.launch_binding().map_err(|_| "launch-binding-unavailable")?;
    let expected =
        Expected { model_ids: &SERVED_MODELS, max_plaintext_len: max_plaintext_len(), tee: attester.tee(), host_data };
    let header = model_load::read_header(blob, &expected).map_err(LoadError::reason)?;
    if header.model_id == inference::MODEL_ID && header.plaintext_len > MLP_MAX_PLAINTEXT_LEN {
        return Err(LoadError::TooLarge.reason());
    }
    Ok(header)
}

/// The graph the blob's weights go into.
pub enum Graph {
    /// The breast-cancer MLP. Both graphs' module trees are boxed (640 bytes and 5.7 KB), so a `Graph` is small to
    /// move.
    Classifier(Box<Classifier>),
    /// paraphrase-MiniLM-L3-v2.
    Embedder(Box<Embedder>),
}

/// Loads every chunk with `key` and the weights into the graph the header's model id names; the graph and the
/// number of weight bytes.
pub fn unseal(blob: &mut FwCfgBlob, header: &BlobHeader, key: &ReleasedKey) -> Result<(Graph, usize), &'static str> {
    let len = usize::try_from(header.plaintext_len).map_err(|_| LoadError::OutOfMemory.reason())?;
    let graph = if header.model_id == inference::minilm::MODEL_ID {
        // Straight into the buffer burn will own: the heap holds the weights once, not twice.
        let mut buffer = WeightsBuffer::new(len).ok_or(LoadError::OutOfMemory.reason())?;
        model_load::load_into(blob, header, &key.key, buffer.bytes_mut()).map_err(LoadError::reason)?;
        Graph::Embedder(Box::new(Embedder::from_buffer(buffer).map_err(|_| "weights-did-not-load")?))
    } else {
        let weights = model_load::load(blob, header, &key.key).map_err(LoadError::reason)?;
        Graph::Classifier(Box::new(Classifier::from_weights(&weights).map_err(|_| "weights-did-not-load")?))
    };
    Ok((graph, len))
}

/// The loaded graph as the service's [`loader::Model`], timing each run.
pub struct ServedModel {
    graph: Graph,
    last_run_cycles: u64,
}

impl ServedModel {
    /// Serves `graph`.
    pub fn new(graph: Graph) -> Self {
        Self { graph, last_run_cycles: 0 }
    }

    /// TSC cycles the last inference took (input check and graph), for the `served` record. Under QEMU's
    /// `-icount shift=0` the TSC counts instructions, which is how `cargo xtask bench` counts them.
    pub fn last_run_cycles(&self) -> u64 {
        self.last_run_cycles
    }
}

impl loader::Model for ServedModel {
    fn infer(&mut self, values: &[f32]) -> Result<Zeroizing<Vec<f32>>, ServiceErrorCode> {
        let Graph::Classifier(classifier) = &self.graph else { return Err(ServiceErrorCode::WrongModel) };
        let started = crate::time::rdtsc();
        let probabilities = classifier.classify(values);
        self.last_run_cycles = crate::time::rdtsc().wrapping_sub(started);
        let probabilities = probabilities.map_err(|e| match e {
            inference::InputError::WrongCount => ServiceErrorCode::WrongValueCount,
            inference::InputError::NotFinite(_) => ServiceErrorCode::NonFiniteValue,
            inference::InputError::OutOfRange(_) => ServiceErrorCode::ValueOutOfRange,
        })?;
        if probabilities.len() != CLASSES.len() {
            return Err(ServiceErrorCode::Internal);
        }
        Ok(probabilities)
    }

    fn embed(&mut self, token_ids: &[u32]) -> Result<Zeroizing<Vec<f32>>, ServiceErrorCode> {
        let Graph::Embedder(embedder) = &self.graph else { return Err(ServiceErrorCode::WrongModel) };
        let started = crate::time::rdtsc();
        let embedding = embedder.embed(token_ids);
        self.last_run_cycles = crate::time::rdtsc().wrapping_sub(started);
        let embedding = embedding.map_err(|e| match e {
            TokenError::Count => ServiceErrorCode::TokenCountOutOfRange,
            TokenError::OutOfVocabulary(_) => ServiceErrorCode::TokenOutOfVocabulary,
        })?;
        if embedding.len() != EMBEDDING_DIM {
            return Err(ServiceErrorCode::Internal);
        }
        Ok(embedding)
    }
}
