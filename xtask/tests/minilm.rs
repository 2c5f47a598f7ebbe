//! paraphrase-MiniLM-L3-v2 end to end through QEMU (TCG, plain mode): its 69 MB blob handed over through fw_cfg
//! and bound to the launch, its key released, the weights loaded chunk by chunk into the compiled-in graph; then
//! token ids sealed to the guest come back as embeddings within 1e-5 of onnxruntime's. Two short reference
//! sentences here (each takes seconds under TCG); every sentence is checked against the host-native build of the
//! same crate in `inference/tests/minilm_reference.rs`, and `cargo xtask run-qemu --model minilm` runs all 17.

mod common;

use std::time::Duration;

use common::run_serving_with;
use inference::served::minilm::{MAX_TOKENS, VOCAB_SIZE};
use protocol::service::ServiceErrorCode;
use xtask::dance::BrokerOptions;
use xtask::qemu::Outcome;
use xtask::sealing::ensure_sealed;

#[test]
fn the_guest_serves_minilm_embeddings_that_match_onnxruntime() {
    let root = xtask::paths::repo_root();
    let options = BrokerOptions::for_checkout(&root);
    let minilm = xtask::manifest::named(&root, xtask::minilm::NAME).unwrap();
    let blob = ensure_sealed(&root, &minilm, &options.state).unwrap();
    let options = BrokerOptions { sealed_model: Some(blob), ..options };
    let cases = xtask::minilm::reference_cases(&root).unwrap();
    let policy_file = common::broker_dir_path("minilm").join("policy.toml");
    // The smallest guest RAM it runs in: 104 MiB (88 MiB of heap: the weights once, the chunk buffer, the rest).
    let run = run_serving_with(
        "minilm",
        options.clone(),
        |c| {
            c.timeout = Duration::from_secs(300);
            c.memory = MINIMUM_RAM;
        },
        move |port| {
            let guest = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let policy = xtask::serve::policy_of(&policy_file).unwrap();
            let shortest: Vec<_> = {
                let mut by_length = cases.clone();
                by_length.sort_by_key(|c| c.token_ids.len());
                by_length.into_iter().take(2).collect()
            };
            let summary = xtask::minilm::check_embeddings(guest, &policy, &shortest).unwrap();
            assert_eq!(summary.latencies.len(), 2);
            eprintln!("largest difference from onnxruntime: {:e}", summary.worst_difference);
            // What the guest refuses, and that it goes on serving.
            let mut client = client::GuestClient::connect(guest, &policy, Duration::from_secs(60)).unwrap();
            let refused = |result: client::Inference| result.unwrap_err();
            assert_eq!(refused(client.embed(&[]).unwrap()), ServiceErrorCode::TokenCountOutOfRange);
            assert_eq!(refused(client.embed(&[101; MAX_TOKENS + 1]).unwrap()), ServiceErrorCode::TokenCountOutOfRange);
            assert_eq!(refused(client.embed(&[101, VOCAB_SIZE, 102]).unwrap()), ServiceErrorCode::TokenOutOfVocabulary);
            assert_eq!(refused(client.infer(&[1.0; 30]).unwrap()), ServiceErrorCode::WrongModel);
            assert_eq!(client.embed(&shortest[0].token_ids).unwrap().unwrap().len(), 384);
            through_the_gateway(guest, policy, &shortest[0]);
        },
    );
    assert_eq!(run.report.outcome, Outcome::Stopped, "{:#?}", run.report.lines);
    let (found, _) = run.report.record("sealed model found").unwrap();
    assert_eq!(found.field("sealed_bytes").map(|b| b.parse::<u64>().unwrap() > 68_000_000), Some(true));
    let (unsealed, _) = run.report.record("model unsealed").unwrap();
    assert_eq!(unsealed.field("weight_bytes"), Some("68986632"));
    // The heap held the weights once (plus the 1 MiB chunk buffer and the rest), never twice.
    let peak: u64 = unsealed.field("heap_peak").unwrap().parse().unwrap();
    assert!((68_986_632..72_000_000).contains(&peak), "{peak}");
    run.broker.stop();

    // 8 MiB less RAM: refused before any key is asked for, with its reason; no panic.
    let run = run_serving_with(
        "minilm-small",
        options,
        |c| c.memory = MINIMUM_RAM - (8 << 20),
        |_| panic!("the guest serves although its heap cannot hold the model"),
    );
    assert_eq!(run.report.outcome, Outcome::Guest(ovmf::exit::ExitCode::KeyNotReleased), "{:#?}", run.report.lines);
    let (refused, _) = run.report.record("sealed model refused").unwrap();
    assert_eq!(refused.field("reason"), Some("blob-too-large"));
    assert!(run.report.record("connected").is_none());
    run.broker.stop();
}

/// `POST /v1/embed` through `ampoule-client gateway` with curl: the gateway tokenizes the text itself, and the
/// embedding matches onnxruntime's; a request for `/v1/infer` is a 404 `not_served`.
fn through_the_gateway(
    guest: std::net::SocketAddr,
    policy: broker::policy::Policy,
    case: &xtask::minilm::EmbeddingCase,
) {
    let root = xtask::paths::repo_root();
    let tokenizer =
        client::tokenizer::SentenceTokenizer::from_file(&xtask::minilm::ensure(&root).unwrap().tokenizer).unwrap();
    let model = inference::served::SERVED.iter().find(|m| m.name == "minilm").unwrap();
    let config = client::gateway::GatewayConfig {
        guest,
        policy,
        model,
        tokenizer: Some(tokenizer),
        reverify: Duration::from_secs(300),
        timeout: Duration::from_secs(60),
    };
    let gateway = client::gateway::Gateway::start(config, "127.0.0.1:0").unwrap();
    let curl = |path: &str, body: &str| -> (String, serde_json::Value) {
        let url = format!("http://{}{path}", gateway.addr);
        let out = std::process::Command::new("curl")
            .args(["-s", "-m", "120", "-w", "\n%{http_code}", "-d", body, &url])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.to_string(), serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
    };
    let (status, reply) = curl("/v1/embed", &serde_json::json!({ "texts": [case.text] }).to_string());
    assert_eq!(status, "200", "{reply}");
    let output = &reply["outputs"][0];
    assert_eq!(output["tokens"].as_u64(), Some(case.token_ids.len() as u64), "{reply}");
    let embedding = output["embedding"].as_array().unwrap();
    assert_eq!(embedding.len(), case.embedding.len());
    for (got, want) in embedding.iter().zip(&case.embedding) {
        assert!((got.as_f64().unwrap() as f32 - want).abs() <= xtask::minilm::TOLERANCE, "{got} vs {want}");
    }
    let (status, reply) = curl("/v1/infer", "{\"values\": [1]}");
    assert_eq!((status.as_str(), reply["error"].as_str()), ("404", Some("not_served")));
    gateway.stop();
}

/// The guest RAM MiniLM needs (`kernel/src/model.rs`: the weights once, beside a 16 MiB reserve).
const MINIMUM_RAM: u64 = 104 << 20;
