//! The generated graph, loaded with the committed weights, against the reference vectors onnxruntime computed from
//! the same ONNX file (`cargo xtask train`).
//!
//! Tolerance: 1e-5 absolute per probability, and the same predicted class. Why that is right: the graph is 30 -> 16
//! -> 8 -> 2 in f32; each output is a chain of three dot products (at most 30 terms) and a softmax. Summation order
//! is the only thing burn and onnxruntime may do differently, and reordering n f32 additions moves a sum by at most
//! about n * 2^-24 of the sum of the magnitudes (~2e-6 relative for n = 30). The softmax's probabilities are bounded
//! by 1, so their absolute error stays below ~1e-5 even with the three layers compounding; anything above that is a
//! wrong graph or wrong weights, not rounding. The largest difference found is printed.

use inference::served::mlp::{FEATURE_COUNT, FEATURE_MAX, FEATURE_MIN, MODEL, MODEL_ID, OUTPUT_LABELS as CLASSES};
use inference::{Graph, Input, InputError, LoadError, RunError, WeightsBuffer};

const WEIGHTS: &[u8] = include_bytes!("../model/ampoule-mlp.bpk");
const REFERENCE: &str = include_str!("../model/reference.json");
const TOLERANCE: f32 = 1e-5;

fn cases() -> Vec<(Vec<f32>, Vec<f32>)> {
    let reference: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
    let floats = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (floats(&c["features"]), floats(&c["probabilities"])))
        .collect()
}

fn load(weights: &[u8]) -> Result<Graph, LoadError> {
    Graph::load(MODEL_ID, WeightsBuffer::copy_of(weights).unwrap())
}

fn check(values: &[f32]) -> Result<(), InputError> {
    MODEL.check(Input::Values(values))
}

fn argmax(values: &[f32]) -> usize {
    (0..values.len()).max_by(|&a, &b| values[a].total_cmp(&values[b])).unwrap()
}

#[test]
fn the_graph_matches_onnxruntime_on_every_reference_vector() {
    let classifier = load(WEIGHTS).unwrap();
    let cases = cases();
    assert!(cases.len() >= 20);
    let mut worst = 0f32;
    let mut classes_seen = [false; 2];
    for (i, (features, expected)) in cases.iter().enumerate() {
        let got = classifier.run(Input::Values(features)).unwrap();
        assert_eq!(got.len(), CLASSES.len());
        for (g, e) in got.iter().zip(expected) {
            worst = worst.max((g - e).abs());
            assert!((g - e).abs() <= TOLERANCE, "case {i}: {g} vs {e}");
        }
        assert_eq!(argmax(&got), argmax(expected), "case {i}");
        classes_seen[argmax(&got)] = true;
    }
    assert_eq!(classes_seen, [true, true], "the reference vectors exercise both classes");
    println!("largest difference to onnxruntime: {worst:e} (tolerance {TOLERANCE:e})");
}

#[test]
fn a_batch_gives_each_input_its_own_output_and_refuses_only_the_bad_ones() {
    let classifier = load(WEIGHTS).unwrap();
    let cases = cases();
    let mut inputs: Vec<&[f32]> = cases.iter().map(|(features, _)| features.as_slice()).collect();
    let short = &cases[0].0[..29];
    inputs.insert(3, short);
    let outputs = classifier.run_values(&inputs);
    assert_eq!(outputs.len(), inputs.len());
    assert_eq!(outputs[3], Err(RunError::Input(InputError::WrongCount)));
    let served: Vec<_> =
        outputs.iter().enumerate().filter(|(i, _)| *i != 3).map(|(_, o)| o.as_ref().unwrap()).collect();
    for (i, (got, (features, expected))) in served.iter().zip(&cases).enumerate() {
        let alone = classifier.run(Input::Values(features)).unwrap();
        for ((g, a), e) in got.iter().zip(alone.iter()).zip(expected) {
            // The same rows, so the same sums in at most a different order: the reference tolerance holds.
            assert!((g - a).abs() <= TOLERANCE && (g - e).abs() <= TOLERANCE, "case {i}: {g} vs {a} vs {e}");
        }
    }
    assert!(classifier.run_values(&[]).is_empty());
    let refused = classifier.run_values(&[short, short]);
    assert!(refused.iter().all(|o| *o == Err(RunError::Input(InputError::WrongCount))), "{refused:?}");
}

#[test]
fn wrong_weights_do_not_load() {
    assert!(load(&[]).is_err());
    assert!(load(&WEIGHTS[..WEIGHTS.len() / 2]).is_err());
    assert!(load(b"not a burnpack at all, just bytes").is_err());
    // The right weights under another model's id go into that model's graph, which they do not fit.
    let other = Graph::load(inference::served::minilm::MODEL_ID, WeightsBuffer::copy_of(WEIGHTS).unwrap());
    assert!(other.is_err());
    assert!(Graph::load([0; 16], WeightsBuffer::copy_of(WEIGHTS).unwrap()).is_err());
}

#[test]
fn inputs_outside_the_limits_are_refused_before_the_graph_runs() {
    let classifier = load(WEIGHTS).unwrap();
    let refused = |input: &[f32]| match classifier.run(Input::Values(input)) {
        Err(RunError::Input(error)) => error,
        other => panic!("not refused: {other:?}"),
    };
    let good = cases()[0].0.clone();
    assert_eq!(check(&good), Ok(()));
    assert_eq!(refused(&good[..29]), InputError::WrongCount);
    assert_eq!(refused(&[good.as_slice(), &[1.0]].concat()), InputError::WrongCount);
    assert_eq!(classifier.run(Input::Tokens(&[1, 2])).unwrap_err(), RunError::Input(InputError::WrongKind));
    assert_eq!(check(&[]), Err(InputError::WrongCount));
    for (index, bad) in [(3, f32::NAN), (0, f32::INFINITY), (29, f32::NEG_INFINITY)] {
        let mut input = good.clone();
        input[index] = bad;
        assert_eq!(refused(&input), InputError::NotFinite(index));
    }
    for index in [0, 7, FEATURE_COUNT - 1] {
        let mut input = good.clone();
        input[index] = FEATURE_MAX[index] * 1.01 + 1.0;
        assert_eq!(check(&input), Err(InputError::OutOfRange(index)));
        input[index] = FEATURE_MIN[index] - 1.0;
        assert_eq!(check(&input), Err(InputError::OutOfRange(index)));
        input[index] = FEATURE_MAX[index];
        assert_eq!(check(&input), Ok(()), "the bounds themselves are accepted");
    }
}
