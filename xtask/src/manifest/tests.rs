use super::*;

const VALID: &str = r#"
name = "my_model"
id = "my-model/v1"
description = "a test model"
max_weight_bytes = 1000

[onnx]
path = "models/my-model.onnx"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"

[input]
kind = "tokens"
max_tokens = 64
vocab_size = 1000

[output]
len = 8
"#;

fn with(replace: &str, by: &str) -> Result<ModelManifest> {
    assert!(VALID.contains(replace), "{replace}");
    ModelManifest::parse(&VALID.replace(replace, by), "test")
}

#[test]
fn the_shipped_manifests_parse_and_name_their_files() {
    let manifests = all(&crate::paths::repo_root()).unwrap();
    let names: Vec<&str> = manifests.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["minilm", "mlp"]);
    let mlp = &manifests[1];
    assert_eq!(&mlp.model_id(), b"ampoule-mlp/v1\0\0");
    assert_eq!(mlp.graph(), "inference/src/model/mlp.rs");
    assert!(mlp.weights_committed());
    assert!(!manifests[0].weights_committed());
    assert_eq!((manifests[0].output.index, manifests[0].output.of), (3, 4));
    assert_eq!(manifests[0].tokenizer.as_ref().map(|t| t.path.as_str()), Some("target/models/minilm/tokenizer.json"));
}

#[test]
fn a_valid_manifest_parses_with_its_defaults() {
    let m = ModelManifest::parse(VALID, "test").unwrap();
    assert_eq!(m.weights(), "target/models/my_model/my_model.bpk");
    assert_eq!((m.output.index, m.output.of), (0, 1));
    assert_eq!(m.input, InputSpec::Tokens { max_tokens: 64, vocab_size: 1000 });
}

#[test]
fn bad_manifests_are_refused() {
    for (replace, by) in [
        ("name = \"my_model\"", "name = \"My-Model\""),
        ("name = \"my_model\"", "name = \"my__model\""),
        ("name = \"my_model\"", "name = \"my_2\""),
        ("name = \"my_model\"", "name = \"mod\""),
        ("id = \"my-model/v1\"", "id = \"a-model-id-of-17b\""),
        ("id = \"my-model/v1\"", "id = \"quote\\\"d\""),
        ("id = \"my-model/v1\"", "id = \"\""),
        ("max_weight_bytes = 1000", "max_weight_bytes = 0"),
        ("path = \"models/my-model.onnx\"", "path = \"/etc/model.onnx\""),
        ("path = \"models/my-model.onnx\"", "path = \"../model.onnx\""),
        ("sha256 = \"0000", "sha256 = \"zz00"),
        (
            "sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"",
            "sha256 = \"00\"\npypi = \"x==1\"",
        ),
        ("max_tokens = 64", "max_tokens = 513"),
        ("max_tokens = 64", "max_tokens = 0"),
        ("vocab_size = 1000", "vocab_size = 0"),
        ("kind = \"tokens\"", "kind = \"images\""),
        ("len = 8", "len = 0"),
        ("len = 8", "len = 1025"),
        ("len = 8", "len = 8\nindex = 1"),
        ("len = 8", "len = 8\nindex = 2\nof = 2"),
        ("len = 8", "len = 8\ncolour = \"red\""),
        ("[input]", "[tokenizer]\npath = \"t.json\"\nsha256 = \"00\"\n\n[input]"),
        (
            "[input]",
            "[tokenizer]\npath = \"t.json\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\ninner = \"x\"\n\n[input]",
        ),
    ] {
        assert!(with(replace, by).is_err(), "accepted with {by:?}");
    }
}

#[test]
fn a_wheel_needs_its_member() {
    let both = "sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\npypi = \"x==1\"\nmember = \"m\"";
    assert!(with("sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"", both).is_ok());
    let alone = "sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\npypi = \"x==1\"";
    assert!(with("sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"", alone).is_err());
}

#[test]
fn the_bring_your_own_model_example_names_the_committed_onnx_file() {
    let root = crate::paths::repo_root();
    let text = std::fs::read_to_string(root.join("examples/own-model/iris.toml")).unwrap();
    let iris = ModelManifest::parse(&text, "examples/own-model/iris.toml").unwrap();
    assert_eq!(crate::pypi_file::sha256_hex(&root.join(&iris.onnx.path)).unwrap(), iris.onnx.sha256);
    let limits = iris.value_limits(&root).unwrap().unwrap();
    assert_eq!((limits.features.len(), limits.classes.len(), iris.output.len), (4, 3, 3));
    assert!(SmokeInput::of(&root, &iris).is_ok());
}
