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

    /// Releases and refusals so far.
    pub fn totals(&self) -> (u64, u64) {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let released = counts.get("released").copied().unwrap_or(0);
        (released, counts.values().sum::<u64>() - released)
    }

    /// The current counts: `released` and each refusal reason seen.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason_and_totals() {
        let stats = Stats::default();
        stats.count(&Ok([0; 16]));
        stats.count(&Err(RefusalCode::NonceExpired));
        stats.count(&Err(RefusalCode::NonceExpired));
        stats.count(&Err(RefusalCode::BadSignature));
        assert_eq!(stats.totals(), (1, 3));
        assert_eq!(stats.snapshot().get("nonce_expired"), Some(&2));
    }
}
