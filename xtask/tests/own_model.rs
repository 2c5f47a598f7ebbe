//! Bring your own model, as docs/models.md walks it: a model Ampoule does not ship (examples/own-model: an iris
//! classifier trained by examples/own-model/train.py) takes the path the shipped ones take, in a copy of the
//! checkout: its manifest into inference/models/, `codegen --model iris`, the image built with its graph beside the
//! shipped ones, `seal --model iris`, and a guest launched bound to that blob serving it: every reference flower's
//! probabilities within 1e-5 of onnxruntime's (the tolerance of inference/tests/reference.rs, for the same reason:
//! a few f32 dot products and a softmax), its bad inputs refused, and the request kind it does not answer refused.
//!
//! It builds a whole image from the copy (the checkout path enters the build flags, so nothing of the main build
//! is reused: about two minutes on two cores); the copy is removed when the test passes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use protocol::console::Record;
use protocol::service::ServiceErrorCode;
use xtask::dance::{BrokerOptions, attach, free_port, plain_measurement, start_broker};
use xtask::image::{self, BuildOptions, Variant};
use xtask::qemu::{Outcome, RunConfig};
use xtask::{codegen, manifest, paths, sealing};

const EXAMPLE: &str = "examples/own-model";
const TOLERANCE: f32 = 1e-5;

#[test]
fn a_users_onnx_model_is_generated_built_sealed_and_served() {
    let root = paths::repo_root();
    let work = paths::target_dir(&root).join("own-model");
    let _ = std::fs::remove_dir_all(&work);
    let copy = work.join("checkout");
    xtask::repro::copy_of_checkout(&root, &copy).unwrap();
    share_generator(&root, &copy);

    // 1. The manifest, beside the shipped ones.
    std::fs::copy(root.join(EXAMPLE).join("iris.toml"), copy.join("inference/models/iris.toml")).unwrap();
    let iris = manifest::named(&copy, "iris").unwrap();
    // 2. codegen --model iris: its graph and weights; the served table now lists three models.
    let generated = codegen::generate(&copy, Some("iris")).unwrap();
    let written = codegen::write(&copy, &generated).unwrap();
    for file in ["inference/src/model/iris.rs", codegen::MODEL_INDEX, codegen::SERVED, "target/models/iris/iris.bpk"] {
        assert!(written.iter().any(|w| w == file), "codegen did not write {file}: {written:?}");
    }
    let served = std::fs::read_to_string(copy.join(codegen::SERVED)).unwrap();
    assert!(served.contains("pub mod iris {") && served.contains("Iris(alloc::boxed::Box<crate::model::iris::Model>)"));
    // 3. The image, with the iris graph compiled in.
    let image = image::build(Variant::Release, &BuildOptions::for_checkout(&copy)).unwrap();
    // 4. seal --model iris, registered for this image's measurement.
    let blob = sealing::default_sealed_model(&copy, "iris");
    let state = xtask::broker_state::BrokerState::scratch(&work.join("state"));
    let weights = copy.join(iris.weights());
    sealing::seal_and_register_with(iris.model_id(), &weights, &blob, &state, plain_measurement(&image.bytes)).unwrap();

    // 5. The guest, launched bound to the blob, serving it.
    let options = BrokerOptions { sealed_model: Some(blob), state, ..BrokerOptions::for_checkout(&root) };
    let broker = start_broker(&work.join("broker"), &image.bytes, &options).unwrap();
    let service_port = free_port().unwrap();
    xtask::qemu::ensure_installed(&paths::target_dir(&root)).unwrap();
    let mut config = RunConfig::new(image.path.clone());
    config.timeout = Duration::from_secs(120);
    attach(&mut config, broker.port, service_port, broker.model.as_ref());
    let policy = xtask::serve::policy_of(&work.join("broker/policy.toml")).unwrap();
    let cases = reference_cases(&root);
    let (report, client) = xtask::serve::run_serving(&config, move || -> anyhow::Result<f32> {
        let guest = std::net::SocketAddr::from(([127, 0, 0, 1], service_port));
        let mut client = client::GuestClient::connect(guest, &policy, Duration::from_secs(60))?;
        let mut worst = 0f32;
        for (features, expected) in &cases {
            let got = client.infer(features)?.map_err(|code| anyhow::anyhow!("refused: {}", code.as_str()))?;
            anyhow::ensure!(got.len() == 3, "{} probabilities", got.len());
            for (g, e) in got.iter().zip(expected) {
                worst = worst.max((g - e).abs());
            }
        }
        let refused = |result: client::Inference| result.err();
        anyhow::ensure!(refused(client.infer(&[1.0; 3])?) == Some(ServiceErrorCode::WrongValueCount));
        anyhow::ensure!(refused(client.infer(&[1.0, 1.0, 1.0, 9.0])?) == Some(ServiceErrorCode::ValueOutOfRange));
        anyhow::ensure!(refused(client.embed(&[101, 102])?) == Some(ServiceErrorCode::WrongModel));
        Ok(worst)
    })
    .unwrap();
    broker.stop();
    assert_eq!(report.outcome, Outcome::Stopped, "{:#?}", report.lines);
    let worst = client.expect("the guest served").expect("the client thread ran").unwrap();
    assert!(worst <= TOLERANCE, "largest difference from onnxruntime {worst:e}");
    eprintln!("largest difference from onnxruntime over the iris reference flowers: {worst:e}");
    let unsealed = report.lines.iter().filter_map(|l| Record::parse(l).ok()).find(|r| r.msg == "model unsealed");
    assert_eq!(unsealed.expect("a 'model unsealed' record").field("model"), Some("iris"));

    std::fs::remove_dir_all(&work).unwrap();
}

/// The generator the main checkout built, hard-linked into the copy's target directory: cargo then rebuilds only
/// the generator's own crate (its path differs), not burn-onnx.
fn share_generator(root: &Path, copy: &Path) {
    codegen::build_generator(root).unwrap();
    let target = paths::target_dir(copy);
    std::fs::create_dir_all(&target).unwrap();
    let status = Command::new("cp")
        .arg("-al")
        .arg(paths::target_dir(root).join("codegen"))
        .arg(target.join("codegen"))
        .status()
        .unwrap();
    assert!(status.success(), "cp -al of the generator's target directory failed");
}

/// The example's reference flowers: measurements and onnxruntime's probabilities.
fn reference_cases(root: &Path) -> Vec<(Vec<f32>, Vec<f32>)> {
    let text = std::fs::read_to_string(root.join(EXAMPLE).join("iris-reference.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
    };
    let cases: Vec<_> = value["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (floats(&c["features"]), floats(&c["probabilities"])))
        .collect();
    assert!(cases.len() >= 10);
    cases
}
