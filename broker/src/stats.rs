//! Counts of releases and of refusals by reason.

use std::collections::BTreeMap;
use std::sync::Mutex;

use protocol::refusal::RefusalCode;

/// The counters.
#[derive(Default)]
pub struct Stats {
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl Stats {
    /// Counts one decision.
    pub fn count(&self, outcome: &Result<[u8; 16], RefusalCode>) {
        let name = match outcome {
            Ok(_) => "released",
            Err(code) => code.as_str(),
        };
        *self.counts.lock().unwrap_or_else(|e| e.into_inner()).entry(name).or_default() += 1;
    }

    /// The current counts: `released` and each refusal reason seen.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
