//! Counts of releases and of refusals by reason (for the broker's records), and its Prometheus metrics.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use protocol::refusal::RefusalCode;
use protocol::tee::Tee;

use crate::metrics::Metrics;

/// The counters.
#[derive(Default)]
pub struct Stats {
    counts: Mutex<BTreeMap<&'static str, u64>>,
    evicted: AtomicU64,
    refused_at_capacity: AtomicU64,
    /// The same events, and more, as Prometheus metrics.
    pub metrics: Metrics,
}

impl Stats {
    /// Counts one decision, which took `took`; `verified`: its evidence's TEE and TCB level, if it verified.
    pub fn count(&self, outcome: &Result<[u8; 16], RefusalCode>, verified: Option<(Tee, &str)>, took: Duration) {
        self.metrics.decision(outcome, verified, took);
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

    /// Counts one newcomer at the connection cap: it evicted a waiting connection, or it was refused.
    pub fn count_capacity(&self, evicted: bool) {
        self.metrics.capacity(evicted);
        let counter = if evicted { &self.evicted } else { &self.refused_at_capacity };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections evicted and refused at the cap so far.
    pub fn capacity(&self) -> (u64, u64) {
        (self.evicted.load(Ordering::Relaxed), self.refused_at_capacity.load(Ordering::Relaxed))
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
        stats.count(&Ok([0; 16]), None, Duration::ZERO);
        stats.count(&Err(RefusalCode::NonceExpired), None, Duration::ZERO);
        stats.count(&Err(RefusalCode::NonceExpired), None, Duration::ZERO);
        stats.count(&Err(RefusalCode::BadSignature), None, Duration::ZERO);
        assert_eq!(stats.totals(), (1, 3));
        assert_eq!(stats.snapshot().get("nonce_expired"), Some(&2));
    }
}
