//! The sealed model in the image's slot (`ovmf::layout::SEALED_MODEL`, ROM, mapped read-only): which key it needs,
//! and unsealing it with the released key into the compiled-in graph. The unsealed weights are in an erasing buffer
//! until burn has loaded them (burn's own copies are freed unerased; see `inference::Classifier::from_weights`); the
//! key is erased when the caller's `ReleasedKey` drops.

use inference::Classifier;
use inference::limits::CLASSES;
use loader::ReleasedKey;
use ovmf::layout::SEALED_MODEL;
use protocol::sealed_model::SealedModel;
use protocol::service::ServiceErrorCode;
use zeroize::Zeroizing;

use alloc::vec::Vec;

/// The sealed model as the image carries it, or why it is unusable.
pub fn sealed() -> Result<SealedModel<'static>, &'static str> {
    // SAFETY: paging::init maps the whole image read-only, SEALED_MODEL included; it is ROM, which nothing writes,
    // so a shared 'static view of it is sound.
    let slot = unsafe { core::slice::from_raw_parts(SEALED_MODEL.base as *const u8, SEALED_MODEL.size as usize) };
    let sealed = SealedModel::from_slot(slot).map_err(|_| "sealed-model-malformed")?;
    if sealed.model_id != inference::MODEL_ID {
        return Err("sealed-model-is-for-another-model");
    }
    Ok(sealed)
}

/// Opens `sealed` with `key` and loads the weights into the graph.
pub fn unseal(sealed: &SealedModel<'_>, key: &ReleasedKey) -> Result<(Classifier, usize), &'static str> {
    let weights = sealed.open(&key.key).map_err(|_| "sealed-model-did-not-open")?;
    let classifier = Classifier::from_weights(&weights).map_err(|_| "weights-did-not-load")?;
    Ok((classifier, weights.len()))
}

/// The classifier as the service's [`loader::Model`], timing each run of the graph.
pub struct ServedModel {
    classifier: Classifier,
    last_run_cycles: u64,
}

impl ServedModel {
    /// Serves `classifier`.
    pub fn new(classifier: Classifier) -> Self {
        Self { classifier, last_run_cycles: 0 }
    }

    /// TSC cycles the last inference took (input check and graph), for the `served` record. Under QEMU's
    /// `-icount shift=0` the TSC counts instructions, which is how `cargo xtask bench` counts them.
    pub fn last_run_cycles(&self) -> u64 {
        self.last_run_cycles
    }
}

impl loader::Model for ServedModel {
    fn infer(&mut self, values: &[f32]) -> Result<Zeroizing<Vec<f32>>, ServiceErrorCode> {
        let started = crate::time::rdtsc();
        let probabilities = self.classifier.classify(values);
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
}
