//! The drift test: regenerate every model's graph (and the committed weights) from its ONNX file with burn-onnx,
//! and `model.rs` and `served.rs` from the manifests in inference/models/, and fail if any committed file differs.
//! `cargo xtask test` builds the generator before the tests run; run alone, this test builds it (several minutes
//! the first time).

#[test]
fn generated_inference_code_matches_the_committed_onnx_files_and_manifests() {
    let root = xtask::paths::repo_root();
    let generated = xtask::codegen::generate(&root, None).expect("codegen runs");
    assert_eq!(generated.graphs.len(), xtask::manifest::all(&root).unwrap().len());
    let drift = xtask::codegen::drift(&root, &generated).unwrap();
    assert!(drift.is_empty(), "committed files differ from what codegen makes: {drift:?}; run `cargo xtask codegen`");
}
