//! `ampoule-codegen ONNX OUT_DIR`: burn-onnx's model generator with the settings Ampoule's guest needs. Run by
//! `cargo xtask codegen` (from the checkout root, so the ONNX path it records in the generated file is relative).
//!
//! - `LoadStrategy::Bytes`: the generated graph loads its weights from bytes handed to it at run time (the unsealed
//!   model), so it names no file and embeds no weights.
//! - `development(false)`: no debug dump of the intermediate graph next to the output.
//!
//! Writes `OUT_DIR/<stem>.rs` (the graph) and `OUT_DIR/<stem>.bpk` (its weights as a burnpack).

use std::process::ExitCode;

use burn_onnx::{LoadStrategy, ModelGen};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [onnx, out_dir] = args.as_slice() else {
        eprintln!("usage: ampoule-codegen ONNX OUT_DIR");
        return ExitCode::from(2);
    };
    ModelGen::new()
        .input(onnx)
        .out_dir(out_dir)
        .development(false)
        .load_strategy(LoadStrategy::Bytes)
        .run_from_cli();
    ExitCode::SUCCESS
}
