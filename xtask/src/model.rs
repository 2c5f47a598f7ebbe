//! `cargo xtask train`: the model's training (inference/model/train.py) in the test virtualenv, deterministic (one
//! BLAS thread, fixed seeds), writing the ONNX file, reference vectors, input limits and training report.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, ensure};

use crate::python::{TRAINING, ensure_tool};

/// The artifacts train.py writes, all committed in inference/model/.
pub const ARTIFACTS: [&str; 4] = ["ampoule-mlp.onnx", "reference.json", "limits.json", "training.json"];

/// Trains and writes the artifacts into `out`.
pub fn train(root: &Path, out: &Path) -> Result<()> {
    let python = ensure_tool(root, TRAINING)?;
    std::fs::create_dir_all(out)?;
    let status = Command::new(python)
        .arg(root.join("inference/model/train.py"))
        .env("AMPOULE_MODEL_OUT", out)
        .envs([("OMP_NUM_THREADS", "1"), ("OPENBLAS_NUM_THREADS", "1"), ("MKL_NUM_THREADS", "1")])
        .env("PYTHONHASHSEED", "0")
        .status()?;
    ensure!(status.success(), "training failed");
    Ok(())
}
