//! The committed model (inference/model/) is what `cargo xtask train` makes, byte for byte, and is sane: its
//! reference cases lie within the input limits, its probabilities sum to one, its accuracy is what docs/models.md says.

use xtask::model::SCRIPTS;
use xtask::paths;

#[test]
fn training_reproduces_the_committed_models_exactly() {
    let root = paths::repo_root();
    for script in SCRIPTS {
        let out = paths::target_dir(&root).join("model-check").join(script.dir);
        script.train(&root, &out).expect("training runs");
        for name in script.artifacts {
            let committed = std::fs::read(script.committed_dir(&root).join(name)).unwrap();
            let regenerated = std::fs::read(out.join(name)).unwrap();
            assert!(committed == regenerated, "{name} drifted from what `cargo xtask train` makes");
        }
    }
}

#[test]
fn the_reference_cases_are_within_limits_and_well_formed() {
    let dir = paths::repo_root().join("inference/model");
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
    };
    let (limits, reference, training) = (read("limits.json"), read("reference.json"), read("training.json"));
    let features = limits["features"].as_array().unwrap();
    assert_eq!(features.len(), 30);
    let cases = reference["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for case in cases {
        let values = case["features"].as_array().unwrap();
        assert_eq!(values.len(), 30);
        for (value, limit) in values.iter().zip(features) {
            let v = value.as_f64().unwrap();
            assert!(v >= limit["min"].as_f64().unwrap() && v <= limit["max"].as_f64().unwrap());
        }
        let p: Vec<f64> = case["probabilities"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(p.len(), 2);
        assert!((p[0] + p[1] - 1.0).abs() < 1e-5);
    }
    assert!(training["held_out_accuracy"].as_f64().unwrap() >= 0.95);
}
