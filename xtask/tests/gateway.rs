//! `ampoule-client gateway` in front of a real guest (QEMU, TCG), driven by two real HTTP clients: curl, and
//! Python's `requests` (PyPI, in target/venv). The gateway verifies the guest's evidence before it forwards
//! anything: its outputs match onnxruntime's, `GET /v1/attestation` reports what the launch is, and a gateway whose
//! policy pins another measurement answers 503 `attestation_failed` and forwards nothing (the guest's own records
//! count every inference it was sent).

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use client::gateway::{Gateway, GatewayConfig};
use common::{broker_dir_path, image, run_serving};
use protocol::console::Record;
use xtask::dance::BrokerOptions;
use xtask::image::Variant;
use xtask::serve::{TOLERANCE, policy_of, reference_cases};

fn gateway(guest: SocketAddr, policy: broker::policy::Policy) -> Gateway {
    let model = inference::served::SERVED.iter().find(|m| m.name == "mlp").unwrap();
    let config = GatewayConfig {
        guest,
        policy,
        model,
        tokenizer: None,
        reverify: Duration::from_secs(300),
        timeout: Duration::from_secs(30),
    };
    Gateway::start(config, "127.0.0.1:0").unwrap()
}

/// `curl -s` with `args`: the status and the body.
fn curl(args: &[&str]) -> (u16, serde_json::Value) {
    let output = Command::new("curl").args(["-s", "-m", "60", "-w", "\n%{http_code}"]).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}

/// Python's `requests` posts the 24 reference inputs as one batch, then reads the attestation; prints both as JSON.
const PYTHON_CLIENT: &str = r#"
import json, sys, requests
base, cases = sys.argv[1], json.loads(sys.argv[2])
infer = requests.post(base + "/v1/infer", json={"batch": cases}, timeout=120)
attestation = requests.get(base + "/v1/attestation", timeout=60)
ready = requests.get(base + "/readyz", timeout=60)
print(json.dumps({"infer": [infer.status_code, infer.json()], "attestation": [attestation.status_code,
      attestation.json()], "ready": ready.status_code}))
"#;

#[test]
fn the_gateway_serves_json_only_for_an_attested_guest() {
    let root = xtask::paths::repo_root();
    let python = xtask::python::ensure_tool(&root, xtask::python::REQUESTS).unwrap();
    let policy_file = broker_dir_path("gateway").join("policy.toml");
    let run = run_serving("gateway", BrokerOptions::for_checkout(&root), move |port| {
        let guest = SocketAddr::from(([127, 0, 0, 1], port));
        let cases = reference_cases(&xtask::paths::repo_root()).unwrap();
        let good = gateway(guest, policy_of(&policy_file).unwrap());
        let base = format!("http://{}", good.addr);

        // curl: one input, its probabilities, the label.
        let body = serde_json::json!({ "values": cases[0].features }).to_string();
        let (status, reply) = curl(&["-H", "Content-Type: application/json", "-d", &body, &format!("{base}/v1/infer")]);
        assert_eq!(status, 200, "{reply}");
        let output = &reply["outputs"][0];
        for (got, want) in output["values"].as_array().unwrap().iter().zip(&cases[0].probabilities) {
            assert!((got.as_f64().unwrap() as f32 - want).abs() <= TOLERANCE, "{reply}");
        }
        assert!(output["label"].is_string() && reply["attestation"]["tee"] == "plain", "{reply}");
        // A wrong count is the guest's refusal: 422 with its reason.
        let short = serde_json::json!({ "values": &cases[0].features[..29] }).to_string();
        let (status, reply) = curl(&["-d", &short, &format!("{base}/v1/infer")]);
        assert_eq!((status, reply["reason"].as_str()), (422, Some("wrong-value-count")), "{reply}");

        // Python's requests: the 24 reference inputs as one batch, the attestation, readiness.
        let features: Vec<&Vec<f32>> = cases.iter().map(|c| &c.features).collect();
        let out = Command::new(&python)
            .args(["-c", PYTHON_CLIENT, &base, &serde_json::to_string(&features).unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (&result["infer"][0], &result["attestation"][0], &result["ready"]),
            (&200.into(), &200.into(), &200.into())
        );
        let outputs = result["infer"][1]["outputs"].as_array().unwrap();
        assert_eq!(outputs.len(), cases.len());
        for (output, case) in outputs.iter().zip(&cases) {
            for (got, want) in output["values"].as_array().unwrap().iter().zip(&case.probabilities) {
                assert!((got.as_f64().unwrap() as f32 - want).abs() <= TOLERANCE, "{output}");
            }
        }
        let attestation = &result["attestation"][1];
        let bytes = std::fs::read(image(Variant::Release)).unwrap();
        let measurement = hex::encode(xtask::dance::plain_measurement(&bytes));
        assert_eq!(
            (attestation["tee"].as_str(), attestation["measurement"].as_str()),
            (Some("plain"), Some(measurement.as_str()))
        );
        assert_eq!(attestation["tcb"], "simulated");

        // A gateway pinning another measurement: 503 attestation_failed, readiness 503, nothing forwarded.
        let mut wrong = std::fs::read_to_string(&policy_file).unwrap();
        wrong = wrong.replace(&measurement, &"11".repeat(48));
        let wrong_file = policy_file.with_file_name("wrong-policy.toml");
        std::fs::write(&wrong_file, wrong).unwrap();
        let refusing = gateway(guest, policy_of(&wrong_file).unwrap());
        let refused_base = format!("http://{}", refusing.addr);
        let (status, reply) = curl(&["-d", &body, &format!("{refused_base}/v1/infer")]);
        assert_eq!(status, 503, "{reply}");
        assert_eq!(
            (reply["error"].as_str(), reply["reason"].as_str()),
            (Some("attestation_failed"), Some("unknown_measurement"))
        );
        assert_eq!(curl(&[&format!("{refused_base}/readyz")]).0, 503);
        assert_eq!(curl(&[&format!("{refused_base}/v1/attestation")]).0, 503);
        refusing.stop();
        good.stop();
    });
    // What the guest was sent: the curl input, the short one (refused), the 24 of the batch; nothing from the
    // refusing gateway.
    let infers = run
        .report
        .lines
        .iter()
        .filter_map(|l| Record::parse(l).ok())
        .filter(|r| r.field("request") == Some("infer"))
        .count();
    assert_eq!(infers, 26, "{:#?}", run.report.lines);
    let sessions = run.report.lines.iter().filter(|l| l.contains("request=session-open")).count();
    assert!(sessions >= 1, "the gateway forwarded in an attested session: {:#?}", run.report.lines);
    run.broker.stop();
}
