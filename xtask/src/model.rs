//! `cargo xtask train`: the training scripts in the test virtualenv, deterministic (one BLAS thread, fixed seeds),
//! each writing its committed artifacts: the shipped MLP (`inference/model/train.py`: the ONNX file, reference
//! vectors, input limits and training report) and the bring-your-own-model example (`examples/own-model/train.py`:
//! an iris classifier Ampoule does not ship, docs/models.md).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, ensure};

use crate::python::{TRAINING, ensure_tool};

/// A training script and what it writes.
#[derive(Clone, Copy, Debug)]
pub struct TrainingScript {
    /// The script, relative to the checkout.
    pub script: &'static str,
    /// The directory of its committed artifacts, relative to the checkout.
    pub dir: &'static str,
    /// The artifacts, all committed in `dir`.
    pub artifacts: &'static [&'static str],
}

/// The shipped MLP.
pub const MLP: TrainingScript = TrainingScript {
    script: "inference/model/train.py",
    dir: "inference/model",
    artifacts: &["ampoule-mlp.onnx", "reference.json", "limits.json", "training.json"],
};

/// The bring-your-own-model example.
pub const IRIS_EXAMPLE: TrainingScript = TrainingScript {
    script: "examples/own-model/train.py",
    dir: "examples/own-model",
    artifacts: &["iris.onnx", "iris-limits.json", "iris-reference.json"],
};

/// Every training script `cargo xtask train` runs.
pub const SCRIPTS: [TrainingScript; 2] = [MLP, IRIS_EXAMPLE];

impl TrainingScript {
    /// The committed artifacts' directory.
    pub fn committed_dir(&self, root: &Path) -> PathBuf {
        root.join(self.dir)
    }

    /// Trains and writes the artifacts into `out`.
    pub fn train(&self, root: &Path, out: &Path) -> Result<()> {
        let python = ensure_tool(root, TRAINING)?;
        std::fs::create_dir_all(out)?;
        let status = Command::new(python)
            .arg(root.join(self.script))
            .env("AMPOULE_MODEL_OUT", out)
            .envs([("OMP_NUM_THREADS", "1"), ("OPENBLAS_NUM_THREADS", "1"), ("MKL_NUM_THREADS", "1")])
            .env("PYTHONHASHSEED", "0")
            .status()?;
        ensure!(status.success(), "{} failed", self.script);
        Ok(())
    }
}
