//! The simulated platform's main job, shared by the SNP and TDX test files: the run, its client, its checks.

use std::time::Duration;

use xtask::dance::BrokerOptions;
use xtask::hypervisor::{self, SimulatedLaunch};
use xtask::image::Variant;
use xtask::paths;
use xtask::qemu::{Outcome, RunReport};
use xtask::simulated_psp::PspService;

use super::{Run, broker_dir, image, run_serving_with};

/// The main job of `launch` against a broker given the simulated platform's trust anchors (its VCEK chain, or its
/// Intel root CA and collateral) and `measure`'s measurement; `client` runs once the guest serves. The run, and
/// the guest messages the PSP answered or the quotes the quote service made.
pub fn main_job(name: &str, launch: SimulatedLaunch, client: impl FnOnce(u16) + Send + 'static) -> (Run, u64) {
    let bytes = std::fs::read(image(Variant::Release)).unwrap();
    let mut options = BrokerOptions::for_checkout(&paths::repo_root());
    hypervisor::simulated_broker(&broker_dir(&format!("{name}-platform")), &bytes, &launch, &mut options).unwrap();
    let service = PspService::start(Duration::from_secs(120)).unwrap();
    let serial = service.serial_args();
    let run = run_serving_with(
        name,
        options,
        |c| {
            c.tee = launch.tee;
            c.simulated = Some(launch);
            c.extra_args.extend(serial);
        },
        client,
    );
    let answered = service.finish().unwrap();
    (run, answered)
}

/// A client that checks the 24 reference inputs against the policy of the broker `name` runs with.
pub fn reference_client(name: &str) -> impl FnOnce(u16) + Send + 'static {
    let root = paths::repo_root();
    let policy_file = super::broker_dir_path(name).join("policy.toml");
    move |port| {
        let policy = xtask::serve::policy_of(&policy_file).unwrap();
        let cases = xtask::serve::reference_cases(&root).unwrap();
        let guest = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let summary = xtask::serve::check_reference_cases(guest, &policy, &cases).expect("the reference inputs");
        assert_eq!(summary.predictions.len(), 24);
    }
}

/// The value of `key` in the record `msg`; panics naming what is missing.
pub fn field<'a>(report: &'a RunReport, msg: &str, key: &str) -> &'a str {
    let (record, _) = report.record(msg).unwrap_or_else(|| panic!("no {msg} record: {:#?}", report.lines));
    record.field(key).unwrap_or_else(|| panic!("{msg} has no {key}"))
}

/// The keys the run's broker released.
pub fn released(run: &Run) -> u64 {
    run.broker.broker.stats().get("released").copied().unwrap_or(0)
}

/// The run went booted -> attested (as `tee`) -> key released -> model unsealed -> serving, one key released.
pub fn served(run: &Run, tee: &str) {
    let report = &run.report;
    assert_eq!(report.outcome, Outcome::Stopped, "{:#?}", report.lines);
    for step in ["booted", "attested", "key released", "model unsealed", "serving"] {
        assert!(report.record(step).is_some(), "no {step} record: {:#?}", report.lines);
    }
    assert_eq!(field(report, "attested", "tee"), tee);
    assert_eq!(released(run), 1);
}
