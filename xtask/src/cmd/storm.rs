//! `cargo xtask storm`, also the storm step of `cargo xtask test`.

use anyhow::Result;

use super::step;

/// Runs a storm of `seconds` as a step, writes its report line by line with `print`, and fails unless it passed.
pub fn run(root: &std::path::Path, seconds: u64, print: impl Fn(&str)) -> Result<()> {
    let report = step(&format!("storm ({seconds} s)"), || xtask::storm::run(root, seconds))?;
    report.lines().iter().for_each(|line| print(line));
    report.check()
}
