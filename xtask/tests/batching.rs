//! Micro-batching in the real guest (QEMU, TCG): concurrent clients' `Infer`s run through the graph together, each
//! answer goes to its own sender and matches onnxruntime's for that sender's input, and no batch is larger than
//! the limits. The host can turn batching off (fw_cfg `opt/ampoule/batch` = `off`); limits it sets out of bounds
//! are refused with a record, and the guest serves with its default.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{broker_dir_path, run_serving, run_serving_with};
use loader::batch::{BATCH_LIMITS, FW_CFG_BATCH};
use protocol::console::Record;
use xtask::dance::BrokerOptions;
use xtask::serve::{TOLERANCE, policy_of, reference_cases};

/// Concurrent clients: six in attested sessions, two sealing each request (HPKE).
const CLIENTS: usize = 8;
const SEALED_CLIENTS: usize = 2;

/// Every served `Infer`'s batch size, from the guest's records.
fn batch_sizes(records: &[Record]) -> Vec<u64> {
    records
        .iter()
        .filter(|r| r.msg == "served" && r.field("request") == Some("infer"))
        .map(|r| common::number(r.field("batch").expect("a served infer names its batch")))
        .collect()
}

fn records(report: &xtask::qemu::RunReport) -> Vec<Record<'_>> {
    report.lines.iter().filter_map(|l| Record::parse(l).ok()).collect()
}

fn serving_record<'a>(records: &'a [Record<'a>]) -> &'a Record<'a> {
    records.iter().find(|r| r.msg == "serving").expect("the guest served")
}

#[test]
fn concurrent_requests_run_in_batches_and_each_answer_goes_to_its_sender() {
    let root = xtask::paths::repo_root();
    let policy_file = broker_dir_path("batching").join("policy.toml");
    let run = run_serving("batching", BrokerOptions::for_checkout(&root), move |port| {
        let guest = SocketAddr::from(([127, 0, 0, 1], port));
        let policy = Arc::new(policy_of(&policy_file).unwrap());
        let cases = Arc::new(reference_cases(&xtask::paths::repo_root()).unwrap());
        let ready = Arc::new(Barrier::new(CLIENTS));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (policy, cases, ready) = (policy.clone(), cases.clone(), ready.clone());
                std::thread::spawn(move || {
                    let mut client = client::GuestClient::connect(guest, &policy, Duration::from_secs(60)).unwrap();
                    if c >= SEALED_CLIENTS {
                        client.open_session().unwrap();
                    }
                    ready.wait();
                    // Each client starts at its own case, so that every batch mixes different inputs.
                    for case in cases.iter().cycle().skip(c * 3).take(cases.len()) {
                        let got = client.infer(&case.features).unwrap().expect("served");
                        for (g, want) in got.iter().zip(&case.probabilities) {
                            assert!((g - want).abs() <= TOLERANCE, "client {c}: {got:?} vs {:?}", case.probabilities);
                        }
                    }
                })
            })
            .collect();
        for client in clients {
            client.join().expect("a client's answers were its own");
        }
    });
    let records = records(&run.report);
    let sizes = batch_sizes(&records);
    let cases = reference_cases(&root).unwrap().len();
    assert_eq!(sizes.len(), CLIENTS * cases, "every request was served once");
    assert!(sizes.iter().all(|&n| (1..=BATCH_LIMITS.max_requests as u64).contains(&n)), "{sizes:?}");
    assert!(sizes.iter().any(|&n| n >= 2), "requests that arrived together ran together: {sizes:?}");
    let serving = serving_record(&records);
    assert_eq!(serving.field("batch_requests"), Some(BATCH_LIMITS.max_requests.to_string().as_str()));
    run.broker.stop();
}

/// Four session clients, 10 requests each, on a guest whose host set the batch limits to `limits`.
fn serve_with_limits(name: &'static str, limits: &'static str) -> xtask::qemu::RunReport {
    let root = xtask::paths::repo_root();
    let policy_file = broker_dir_path(name).join("policy.toml");
    let adjust = move |config: &mut xtask::qemu::RunConfig| config.fw_cfg.push((FW_CFG_BATCH.into(), limits.into()));
    let run = run_serving_with(name, BrokerOptions::for_checkout(&root), adjust, move |port| {
        let guest = SocketAddr::from(([127, 0, 0, 1], port));
        let policy = Arc::new(policy_of(&policy_file).unwrap());
        let cases = reference_cases(&xtask::paths::repo_root()).unwrap();
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let (policy, features) = (policy.clone(), cases[0].features.clone());
                std::thread::spawn(move || {
                    let mut client = client::GuestClient::connect(guest, &policy, Duration::from_secs(60)).unwrap();
                    client.open_session().unwrap();
                    for _ in 0..10 {
                        client.infer(&features).unwrap().expect("served");
                    }
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
    });
    run.broker.stop();
    run.report
}

#[test]
fn the_host_can_turn_batching_off_and_limits_out_of_bounds_are_refused() {
    let report = serve_with_limits("batching-off", "off");
    let off = records(&report);
    assert_eq!(serving_record(&off).field("batch_requests"), Some("1"));
    let sizes = batch_sizes(&off);
    assert_eq!((sizes.len(), sizes.iter().max()), (40, Some(&1)), "each request alone");

    // The last: 39 bytes, whose first 31 would read as "8,0"; a text longer than the guest reads is refused whole.
    let too_long = "8,0000000000000000000000000000000000010";
    for (name, limits, error) in [
        ("batching-too-many", "9,100", "out-of-range"),
        ("batching-unreadable", "eight,1", "unreadable"),
        ("batching-too-long", too_long, "unreadable"),
    ] {
        let report = serve_with_limits(name, limits);
        let records = records(&report);
        let refused = records.iter().find(|r| r.msg.starts_with("batch limits refused")).expect("a record says why");
        assert_eq!(refused.field("error"), Some(error), "{limits}");
        assert_eq!(serving_record(&records).field("batch_requests"), Some("8"), "{limits}: the default");
        assert_eq!(batch_sizes(&records).len(), 40);
    }
}
