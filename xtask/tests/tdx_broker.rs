//! The broker `run-qemu --tee tdx --collateral FILE --xfam HEX` starts: it loads Intel's collateral when it starts,
//! names the MRTD in its allowlist, trusts no simulated evidence, and releases nothing to a genuine TDX quote that
//! was not made for its challenge. Uses the quote and collateral dcap-qvl publishes.

mod replay;

use loader::{LoaderError, SimulatedAttester};
use protocol::refusal::RefusalCode;
use protocol::tee::Tee;
use replay::{Replay, dance};
use simulated_firmware::published::{dcap_qvl_sample, dcap_qvl_sample_path};
use xtask::broker_state::BrokerState;
use xtask::dance::{BrokerOptions, TdxBroker, start_broker};

/// In a version-4 TD quote: the 48-byte header, then the TD report body with XFAM at 128 and MRTD at 136 (Intel
/// TDX DCAP quoting library API, "TD quote body").
const XFAM_AT: usize = 48 + 128;
const MRTD_AT: usize = 48 + 136;

#[test]
fn the_tdx_run_broker_allowlists_the_mrtd_and_releases_nothing_to_replays_or_simulations() {
    let mut quote = dcap_qvl_sample("tdx_quote");
    // The published file carries zero bytes after the quote; the guest sends the quote alone.
    quote.truncate(protocol::tdx::quote_len::of(&quote).unwrap());
    let mrtd: [u8; 48] = quote[MRTD_AT..MRTD_AT + 48].try_into().unwrap();
    let xfam = u64::from_le_bytes(quote[XFAM_AT..XFAM_AT + 8].try_into().unwrap());
    let dir = std::env::temp_dir().join(format!("ampoule-tdx-broker-{}", std::process::id()));
    let options = BrokerOptions {
        state: BrokerState::scratch(&dir.join("registry")),
        tdx: Some(TdxBroker {
            collateral: dcap_qvl_sample_path("tdx_quote_collateral.json"),
            xfam,
            mrtd,
            root_ca: None,
        }),
        sealed_model: None,
        ..BrokerOptions::for_checkout(&xtask::paths::repo_root())
    };
    let broker = start_broker(&dir, &[0; 4096], &options).expect("the published collateral loads");
    let config = std::fs::read_to_string(dir.join("broker.toml")).unwrap();
    assert!(config.contains("allow_simulated = false"), "{config}");
    let policy = std::fs::read_to_string(&broker.policy).unwrap();
    assert!(policy.contains(&format!("tee = \"tdx\"\nmeasurement = \"{}\"", hex::encode(mrtd))), "{policy}");
    assert!(config.contains("[tdx]\ncollateral = ") && config.contains(&format!("xfam = {xfam:#x}")));

    // A genuine quote for the allowlisted MRTD, not made for this challenge. The broker's clock is the system's,
    // past the published collateral's next update (2025-07), so the quote already fails verification; the
    // verifier's own tests (broker/src/verify/tdx/tests.rs) verify it at the collateral's time.
    let replayed = dance(broker.port, &mut Replay { tee: Tee::Tdx, evidence: quote }, broker.key_id);
    assert!(matches!(replayed, Err(LoaderError::Refused(RefusalCode::BadSignature))), "{replayed:?}");
    // Simulated evidence for the same measurement.
    let simulated = dance(broker.port, &mut SimulatedAttester::new(mrtd), broker.key_id);
    assert!(matches!(simulated, Err(LoaderError::Refused(_))), "{simulated:?}");
    assert_eq!(broker.broker.stats().get("released").copied().unwrap_or(0), 0);
    broker.stop();
    let _ = std::fs::remove_dir_all(&dir);

    // Collateral that does not exist: the broker does not start.
    let missing = BrokerOptions {
        tdx: Some(TdxBroker { collateral: dir.join("no-such-collateral.json"), ..options.tdx.clone().unwrap() }),
        ..options
    };
    assert!(start_broker(&dir, &[0; 4096], &missing).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
