//! The broker's operations listener, through the real binary and a real HTTP client (curl): `GET /metrics` counts
//! releases and refusals by reason, decision durations and TCB levels in Prometheus' text format; `GET /healthz`
//! answers 200 while the registry answers and 503 once it is gone; other paths and methods are refused; idle
//! connections beyond its cap do not lock the scraper out for longer than the header deadline.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::fleet::{Fleet, Replica, Store, dance, fleet};
use common::{MEASUREMENT_B, guest_rng};
use loader::{LoaderError, SimulatedAttester, StreamTransport, obtain_key};
use protocol::refusal::RefusalCode;

/// Starts replica `a` with a metrics listener on a free loopback port: it, its guests' address, the listener's.
fn start_with_metrics(fleet: &Fleet) -> (Replica, SocketAddr, SocketAddr) {
    let config = fleet.config("a");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("metrics_listen = \"127.0.0.1:0\"\n{text}")).unwrap();
    let log = fleet.dir.join("a.stderr");
    let (replica, addr) = fleet.start_logged("a", &log);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let found = text.lines().find(|l| l.contains("msg=\"metrics listening\"")).and_then(|l| {
            l.split_whitespace().find_map(|kv| kv.strip_prefix("addr=")).and_then(|a| a.trim_matches('"').parse().ok())
        });
        if let Some(metrics) = found {
            return (replica, addr, metrics);
        }
        assert!(Instant::now() < deadline, "no metrics listener announced: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `curl -s -i [-X method] http://addr/path`: the status code and the body.
fn curl(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-s", "-m", "5", "-o", "-", "-w", "\n%{http_code}", "-X", method])
        .arg(format!("http://{addr}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn metrics_and_health_through_curl() {
    let mut fleet = fleet("metrics", Store::Postgres);
    fleet.import_and_bind();
    let (replica, addr, metrics) = start_with_metrics(&fleet);
    assert!(matches!(dance(addr), Some((_, Ok(_)))));
    // A launch the registry does not bind: refused.
    let stream = TcpStream::connect(addr).unwrap();
    let mut attester = SimulatedAttester::new(MEASUREMENT_B);
    let refused = obtain_key(&mut StreamTransport(stream), &mut attester, &mut guest_rng(), [1; 16], |_| {});
    assert!(matches!(refused, Err(LoaderError::Refused(RefusalCode::UnknownMeasurement))), "{:?}", refused.err());

    let (status, text) = curl(metrics, "GET", "/metrics");
    assert_eq!(status, 200, "{text}");
    for line in [
        "ampoule_broker_decisions_total{outcome=\"released\",reason=\"\"} 1",
        "ampoule_broker_decisions_total{outcome=\"refused\",reason=\"unknown_measurement\"} 1",
        "ampoule_broker_verified_total{tee=\"plain\",tcb=\"simulated\",outcome=\"released\"} 1",
        "ampoule_broker_verified_total{tee=\"plain\",tcb=\"simulated\",outcome=\"refused\"} 1",
        "ampoule_broker_decision_duration_seconds_count 2",
        "ampoule_broker_audit_write_failures_total 0",
        "# EOF",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    assert_eq!(curl(metrics, "GET", "/healthz"), (200, "ok\n".into()));
    assert_eq!(curl(metrics, "GET", "/nothing").0, 404);
    assert_eq!(curl(metrics, "POST", "/metrics").0, 405);

    // Idle connections fill the listener's slots; a scraper gets in again once the header deadline closes them.
    let idle: Vec<TcpStream> =
        (0..broker::metrics_endpoint::MAX_CONNECTIONS + 4).filter_map(|_| TcpStream::connect(metrics).ok()).collect();
    std::thread::sleep(broker::metrics_endpoint::HEADER_DEADLINE + Duration::from_secs(1));
    assert_eq!(curl(metrics, "GET", "/healthz").0, 200, "locked out after the idle connections' deadline");
    drop(idle);

    // The registry goes away: the broker says it cannot decide.
    drop(fleet.cluster.take());
    let (status, body) = curl(metrics, "GET", "/healthz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("registry"), "{body}");
    drop(replica);
}
