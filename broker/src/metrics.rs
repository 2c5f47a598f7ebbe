//! What the broker exposes to Prometheus (`GET /metrics` on its metrics listener, [`crate::metrics_endpoint`]), in
//! the OpenMetrics text format (`prometheus-client`):
//!
//! - `ampoule_broker_decisions_total{outcome, reason}`: releases, and refusals by reason;
//! - `ampoule_broker_decision_duration_seconds`: from an Attest message's arrival to its reply, audit included;
//! - `ampoule_broker_verified_total{tee, tcb, outcome}`: decisions on verified evidence, by the TCB level it reports
//!   (SNP: the REPORTED_TCB SVNs; TDX: the TCB status of Intel's collateral; plain: `simulated`);
//! - `ampoule_broker_audit_write_failures_total`: decisions whose audit row could not be committed (each a refusal);
//! - `ampoule_broker_connections_evicted_total`, `ampoule_broker_connections_refused_total`: newcomers at the cap.
//!
//! Labels come from a closed set (outcomes, refusal codes, TEEs), except the TCB level, which comes from signed
//! evidence; its distinct values are bounded all the same ([`MAX_TCB_LEVELS`]; the rest count as `other`).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use protocol::refusal::RefusalCode;
use protocol::tee::Tee;

/// TCB levels with series of their own; evidence reporting yet another counts as `other`.
pub const MAX_TCB_LEVELS: usize = 32;
/// The decision-duration histogram's upper bounds, in seconds.
const DURATION_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    outcome: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerifiedLabels {
    tee: &'static str,
    tcb: String,
    outcome: &'static str,
}

/// The broker's metrics.
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    duration: Histogram,
    verified: Family<VerifiedLabels, Counter>,
    tcb_levels: Mutex<BTreeSet<String>>,
    audit_failures: Counter,
    evicted: Counter,
    refused_at_capacity: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ampoule_broker");
        let decisions = Family::<DecisionLabels, Counter>::default();
        let duration = Histogram::new(DURATION_BUCKETS);
        let verified = Family::<VerifiedLabels, Counter>::default();
        let (audit_failures, evicted, refused_at_capacity) =
            (Counter::default(), Counter::default(), Counter::default());
        registry.register("decisions", "Key-release decisions, by outcome and refusal reason", decisions.clone());
        registry.register_with_unit(
            "decision_duration",
            "From an Attest message's arrival to its reply, the audit row's commit included",
            prometheus_client::registry::Unit::Seconds,
            duration.clone(),
        );
        registry.register(
            "verified",
            "Decisions on verified evidence, by TEE and reported TCB level",
            verified.clone(),
        );
        registry.register(
            "audit_write_failures",
            "Decisions whose audit row could not be committed",
            audit_failures.clone(),
        );
        registry.register("connections_evicted", "Waiting connections evicted at the connection cap", evicted.clone());
        registry.register(
            "connections_refused",
            "Newcomers refused at the connection cap",
            refused_at_capacity.clone(),
        );
        Metrics {
            registry,
            decisions,
            duration,
            verified,
            tcb_levels: Mutex::new(BTreeSet::new()),
            audit_failures,
            evicted,
            refused_at_capacity,
        }
    }
}

impl Metrics {
    /// Counts one decision that took `took`; `verified` is its evidence's TEE and TCB level, if it verified.
    pub fn decision(&self, outcome: &Result<[u8; 16], RefusalCode>, verified: Option<(Tee, &str)>, took: Duration) {
        let (outcome_name, reason) = match outcome {
            Ok(_) => ("released", ""),
            Err(code) => ("refused", code.as_str()),
        };
        self.decisions.get_or_create(&DecisionLabels { outcome: outcome_name, reason }).inc();
        self.duration.observe(took.as_secs_f64());
        if let Some((tee, tcb)) = verified {
            let tcb = self.bounded_tcb(tcb);
            self.verified.get_or_create(&VerifiedLabels { tee: tee.as_str(), tcb, outcome: outcome_name }).inc();
        }
    }

    /// A refusal because the decision's audit row could not be committed.
    pub fn audit_failure(&self) {
        self.audit_failures.inc();
    }

    /// A newcomer at the connection cap: it evicted a waiting connection, or it was refused.
    pub fn capacity(&self, evicted: bool) {
        if evicted { &self.evicted } else { &self.refused_at_capacity }.inc();
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    fn bounded_tcb(&self, tcb: &str) -> String {
        let mut levels = self.tcb_levels.lock().unwrap_or_else(|e| e.into_inner());
        if levels.contains(tcb) || (levels.len() < MAX_TCB_LEVELS && levels.insert(tcb.to_string())) {
            tcb.to_string()
        } else {
            "other".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_refusals_tcb_levels_and_failures_appear_in_the_text() {
        let metrics = Metrics::default();
        metrics.decision(&Ok([0; 16]), Some((Tee::Snp, "bl3-tee0-snp8-ucode115")), Duration::from_micros(700));
        metrics.decision(&Err(RefusalCode::NonceExpired), None, Duration::from_millis(2));
        metrics.decision(&Err(RefusalCode::NonceExpired), None, Duration::from_millis(3));
        metrics.audit_failure();
        metrics.capacity(true);
        let text = metrics.render();
        for line in [
            "ampoule_broker_decisions_total{outcome=\"released\",reason=\"\"} 1",
            "ampoule_broker_decisions_total{outcome=\"refused\",reason=\"nonce_expired\"} 2",
            "ampoule_broker_verified_total{tee=\"snp\",tcb=\"bl3-tee0-snp8-ucode115\",outcome=\"released\"} 1",
            "ampoule_broker_decision_duration_seconds_count 3",
            "ampoule_broker_decision_duration_seconds_bucket{le=\"0.001\"} 1",
            "ampoule_broker_audit_write_failures_total 1",
            "ampoule_broker_connections_evicted_total 1",
            "ampoule_broker_connections_refused_total 0",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn tcb_levels_beyond_the_bound_count_as_other() {
        let metrics = Metrics::default();
        for level in 0..MAX_TCB_LEVELS + 5 {
            metrics.decision(&Ok([0; 16]), Some((Tee::Tdx, &format!("level-{level}"))), Duration::ZERO);
        }
        let text = metrics.render();
        assert_eq!(
            text.lines().filter(|l| l.starts_with("ampoule_broker_verified_total{")).count(),
            MAX_TCB_LEVELS + 1
        );
        assert!(text.contains("tcb=\"other\",outcome=\"released\"} 5"), "{text}");
    }
}
