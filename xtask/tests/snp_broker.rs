//! The broker `run-qemu --tee snp --vcek FILE` starts: it checks AMD's chain for the VCEK when it starts, names
//! the SNP launch digest in its allowlist, trusts no simulated evidence, and refuses real hardware reports that
//! were not made for its challenge. Uses the Milan report and VCEK the sev crate publishes.

use std::net::TcpStream;
use std::time::Duration;

use loader::{AttestError, Attester, LoaderError, SimulatedAttester, StreamTransport, obtain_key};
use protocol::refusal::RefusalCode;
use protocol::report::SnpReport;
use protocol::tee::Tee;
use simulated_firmware::published::{sev_test_data, sev_test_data_path};
use xtask::dance::{BrokerOptions, SnpBroker, start_broker};

const KEY_ID: [u8; 16] = [0x7a; 16];

/// Hands the broker the same evidence whatever it asks for: a replay.
struct Replay(Vec<u8>);

impl Attester for Replay {
    fn tee(&self) -> Tee {
        Tee::Snp
    }

    fn evidence(&mut self, _: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
        Ok(self.0.clone())
    }
}

/// One key dance; `Ok(())` if a key was released (the key itself is dropped unseen).
fn dance(port: u16, attester: &mut impl Attester) -> Result<(), LoaderError<std::io::Error>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut rng = protocol::seal::rand_core::UnwrapErr(getrandom::SysRng);
    obtain_key(&mut StreamTransport(stream), attester, &mut rng, KEY_ID, |_| {}).map(drop)
}

#[test]
fn the_snp_run_broker_verifies_amds_chain_and_releases_nothing_to_replays_or_simulations() {
    let report = hex::decode(String::from_utf8(sev_test_data("report_milan.hex")).unwrap().trim()).unwrap();
    let measurement = *SnpReport::new(&report).unwrap().measurement();
    let dir = std::env::temp_dir().join(format!("ampoule-snp-broker-{}", std::process::id()));
    let options = BrokerOptions {
        allowed_key_id: Some(KEY_ID),
        key: Some([0x42; 32]),
        snp: Some(SnpBroker {
            product: "milan".into(),
            vcek: sev_test_data_path("vcek_milan.der"),
            launch_digest: measurement,
            // The published report's REPORTED_TCB: boot loader 3, TEE 0, SNP 8, microcode 115.
            min_tcb: [3, 0, 8, 115],
        }),
        ..BrokerOptions::for_checkout(&xtask::paths::repo_root())
    };
    let broker = start_broker(&dir, &[0; 4096], &options).expect("the published VCEK chains to AMD's Milan root");
    let config = std::fs::read_to_string(dir.join("broker.toml")).unwrap();
    assert!(config.contains("allow_simulated = false"), "{config}");
    assert!(config.contains(&format!("tee = \"snp\"\nmeasurement = \"{}\"", hex::encode(measurement))), "{config}");

    // A genuine report, allowlisted measurement, valid signature: but bound to another challenge.
    let replayed = dance(broker.port, &mut Replay(report));
    assert!(matches!(replayed, Err(LoaderError::Refused(RefusalCode::BindingMismatch))), "{replayed:?}");
    // A plain-mode guest's simulated evidence for the same measurement.
    let simulated = dance(broker.port, &mut SimulatedAttester::new(measurement));
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
