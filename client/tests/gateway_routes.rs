//! The gateway's HTTP surface without a guest (its guest address refuses connections): the OpenAPI document
//! describes exactly the routes served; every error is JSON with a machine-readable kind; bad bodies are refused
//! before anything is forwarded; and a guest that cannot be reached is a 503, never a hang or a crash.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use broker::config::Config;
use broker::policy::Policy;
use client::gateway::routes::{OPENAPI, ROUTES};
use client::gateway::{Gateway, GatewayConfig, MAX_BATCH, MAX_BODY_LEN};

fn gateway() -> Gateway {
    let model = inference::served::SERVED.iter().find(|m| m.name == "mlp").unwrap();
    let config = GatewayConfig {
        // Port 1 on loopback: nothing listens there.
        guest: "127.0.0.1:1".parse().unwrap(),
        policy: Policy::from_config(&Config::with_defaults("unused.jsonl".into())).unwrap(),
        model,
        tokenizer: None,
        reverify: Duration::from_secs(300),
        timeout: Duration::from_secs(1),
    };
    Gateway::start(config, "127.0.0.1:0").unwrap()
}

/// One HTTP/1.1 request; the status and the body.
fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let status = reply.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = reply.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

fn error_kind(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"));
    value["error"].as_str().unwrap_or_else(|| panic!("no error kind: {body}")).to_string()
}

#[test]
fn the_openapi_document_describes_exactly_the_routes_served() {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(|m| (m.to_uppercase(), path.clone())))
        .collect();
    let mut served: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served);

    let gateway = gateway();
    for (method, path) in ROUTES {
        let (status, body) = request(gateway.addr, method, path, b"{}");
        // Served: anything but 405 and the router's own 404 (a route may say its model is not served: not_served).
        let unrouted = status == 405 || (status == 404 && error_kind(&body) == "not_found");
        assert!(!unrouted, "{method} {path}: {status} {body}");
        let other = if method == "GET" { "POST" } else { "GET" };
        assert_eq!(request(gateway.addr, other, path, b"").0, 405, "{other} {path}");
    }
    let (status, body) = request(gateway.addr, "GET", "/v1/nothing", b"");
    assert_eq!((status, error_kind(&body).as_str()), (404, "not_found"));
    gateway.stop();
}

#[test]
fn bad_bodies_are_refused_before_forwarding_and_an_unreachable_guest_is_a_503() {
    let gateway = gateway();
    let addr = gateway.addr;
    for (body, why) in [
        (&b"not json"[..], "not JSON"),
        (b"{}", "neither values nor batch"),
        (b"{\"values\": [1], \"batch\": [[1]]}", "both"),
        (b"{\"values\": [1], \"extra\": 2}", "an unknown field"),
        (b"{\"batch\": []}", "an empty batch"),
        (b"{\"values\": [\"x\"]}", "a string value"),
    ] {
        let (status, reply) = request(addr, "POST", "/v1/infer", body);
        assert_eq!((status, error_kind(&reply).as_str()), (400, "bad_request"), "{why}: {reply}");
    }
    let batch = format!("{{\"batch\": [{}]}}", vec!["[1]"; MAX_BATCH + 1].join(","));
    let (status, reply) = request(addr, "POST", "/v1/infer", batch.as_bytes());
    assert_eq!((status, error_kind(&reply).as_str()), (400, "bad_request"), "{reply}");
    let huge = format!("{{\"values\": [{}]}}", vec!["1"; MAX_BODY_LEN / 2].join(","));
    let (status, reply) = request(addr, "POST", "/v1/infer", huge.as_bytes());
    assert_eq!((status, error_kind(&reply).as_str()), (413, "too_large"), "{reply}");
    let (status, reply) = request(addr, "POST", "/v1/embed", b"{\"texts\": [\"a\"]}");
    assert_eq!((status, error_kind(&reply).as_str()), (404, "not_served"), "{reply}");

    // A valid request, a guest that cannot be reached: 503 with the reason, and the gateway serves on.
    for path in ["/v1/attestation", "/readyz"] {
        let (status, reply) = request(addr, "GET", path, b"");
        assert_eq!((status, error_kind(&reply).as_str()), (503, "guest_unreachable"), "{path}: {reply}");
    }
    let (status, reply) = request(addr, "POST", "/v1/infer", b"{\"values\": [1, 2]}");
    assert_eq!((status, error_kind(&reply).as_str()), (503, "guest_unreachable"), "{reply}");
    assert_eq!(request(addr, "GET", "/healthz", b"").0, 200);
    let (_, metrics) = request(addr, "GET", "/metrics", b"");
    assert!(metrics.contains("ampoule_gateway_upstream_failures_total{kind=\"guest_unreachable\"} 3"), "{metrics}");
    assert!(metrics.contains("ampoule_gateway_requests_total{route=\"/v1/infer\",status=\"400\"}"), "{metrics}");
    gateway.stop();
}
