//! The image is a function of the source tree: two builds from two checkout paths, with two target directories and
//! two CARGO_HOME paths, are byte-identical (the same check as `cargo xtask repro`).

#[test]
fn builds_from_two_checkout_paths_are_byte_identical() {
    let report = xtask::repro::run(&xtask::paths::repo_root(), false).expect("both builds succeed");
    assert_ne!(report.builds[0].0, report.builds[1].0);
    assert!(report.identical, "{report:#?}");
    assert_eq!(report.builds[0].1, report.builds[1].1);
    assert_eq!(report.measurements[0], report.measurements[1]);
    // Identical builds leave nothing behind (two checkouts with their target directories are ~0.8 GB).
    assert!(report.builds.iter().all(|(checkout, _)| !checkout.exists()), "{report:#?}");
}
