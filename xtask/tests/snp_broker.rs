//! The broker `run-qemu --tee snp --vcek FILE` starts: it checks AMD's chain for the VCEK when it starts, names
//! the SNP launch digest in its allowlist, trusts no simulated evidence, and refuses real hardware reports that
//! were not made for its challenge. Uses the Milan report and VCEK the sev crate publishes.

mod replay;

use loader::{LoaderError, SimulatedAttester};
use protocol::refusal::RefusalCode;
use protocol::report::SnpReport;
use protocol::tee::Tee;
use replay::{Replay, dance};
use simulated_firmware::published::{sev_test_data, sev_test_data_path};
use xtask::broker_state::BrokerState;
use xtask::dance::{BrokerOptions, SnpBroker, start_broker};

#[test]
fn the_snp_run_broker_verifies_amds_chain_and_releases_nothing_to_replays_or_simulations() {
    let report = hex::decode(String::from_utf8(sev_test_data("report_milan.hex")).unwrap().trim()).unwrap();
    let measurement = *SnpReport::new(&report).unwrap().measurement();
    let dir = std::env::temp_dir().join(format!("ampoule-snp-broker-{}", std::process::id()));
    let options = BrokerOptions {
        state: BrokerState::scratch(&dir.join("registry")),
        snp: Some(SnpBroker {
            product: "milan".into(),
            vcek: sev_test_data_path("vcek_milan.der"),
            launch_digest: measurement,
            // The published report's REPORTED_TCB: boot loader 3, TEE 0, SNP 8, microcode 115.
            min_tcb: [3, 0, 8, 115],
            ca: None,
        }),
        sealed_model: None,
        ..BrokerOptions::for_checkout(&xtask::paths::repo_root())
    };
    let broker = start_broker(&dir, &[0; 4096], &options).expect("the published VCEK chains to AMD's Milan root");
    let config = std::fs::read_to_string(dir.join("broker.toml")).unwrap();
    assert!(config.contains("allow_simulated = false"), "{config}");
    let policy = std::fs::read_to_string(&broker.policy).unwrap();
    assert!(policy.contains(&format!("tee = \"snp\"\nmeasurement = \"{}\"", hex::encode(measurement))), "{policy}");

    // A genuine report, allowlisted measurement, valid signature: but bound to another challenge.
    let replayed = dance(broker.port, &mut Replay { tee: Tee::Snp, evidence: report }, broker.key_id);
    assert!(matches!(replayed, Err(LoaderError::Refused(RefusalCode::BindingMismatch))), "{replayed:?}");
    // A plain-mode guest's simulated evidence for the same measurement.
    let simulated = dance(broker.port, &mut SimulatedAttester::new(measurement), broker.key_id);
    assert!(matches!(simulated, Err(LoaderError::Refused(_))), "{simulated:?}");
    assert_eq!(broker.broker.stats().get("released").copied().unwrap_or(0), 0);
    broker.stop();
    let _ = std::fs::remove_dir_all(&dir);

    // A VCEK from another product's chain: the broker does not start.
    let wrong_product =
        BrokerOptions { snp: Some(SnpBroker { product: "genoa".into(), ..options.snp.clone().unwrap() }), ..options };
    assert!(start_broker(&dir, &[0; 4096], &wrong_product).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
