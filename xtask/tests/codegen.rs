//! The drift test: regenerate the burn graph and its weights from the committed ONNX file with burn-onnx (and
//! limits.rs from limits.json) and fail if any committed file differs. `cargo xtask test` builds the generator
//! before the tests run; run alone, this test builds it (several minutes the first time).

#[test]
fn generated_inference_code_matches_the_committed_onnx_and_limits() {
    let root = xtask::paths::repo_root();
    let generated = xtask::codegen::generate(&root).expect("codegen runs");
    let drift = xtask::codegen::drift(&root, &generated).unwrap();
    assert!(drift.is_empty(), "committed files differ from what codegen makes: {drift:?}; run `cargo xtask codegen`");
}
