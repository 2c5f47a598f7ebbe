//! Micro-batching (DESIGN.md §5): when the kernel runs the `Infer`s its connections hold as one pass through the
//! graph. A values graph costs little more for 8 rows than for 1 (the same weights, read once; one set of tensor
//! allocations), so requests that arrive together are answered together.
//!
//! The rule, [`BatchLimits::due`]: a batch runs as soon as it is full, or no open connection is left that could
//! add to it, or its oldest request has waited [`BatchLimits::max_wait_us`] (by default 0: it runs after the pass
//! that found it). One client alone is never made to wait; no request waits longer than the bound for others. Each connection holds at most one request in a batch
//! (it is not read on until answered), so a batch is never larger than the connection cap.
//!
//! The host may set the limits with the fw_cfg file [`FW_CFG_BATCH`] (they decide speed, not what is released or
//! to whom): `off`, or `REQUESTS,WAIT_US`. Anything else is refused (the guest keeps [`BATCH_LIMITS`] and records
//! why).

use crate::connection::SERVICE_LIMITS;

/// The fw_cfg file with the host's batch limits, if any.
pub const FW_CFG_BATCH: &str = "opt/ampoule/batch";

/// The longest wait the host may ask for: 10 ms.
pub const MAX_WAIT_US: u64 = 10_000;

/// How many requests one batch holds and how long the first of them may wait for the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// The most requests in one batch: 1 is no batching. At most the connection cap.
    pub max_requests: usize,
    /// How long a batch's oldest request may wait for others, in microseconds.
    pub max_wait_us: u64,
}

/// The limits the guest serves with unless the host says otherwise: the requests that arrived together (found
/// waiting after one pass over every socket, up to one per connection) run together, and none waits for more. While
/// the guest is busy with one batch, the next requests gather in their sockets, so batches grow with the load and
/// add no latency when it is light. (A 2 ms wait for others measured no faster under TCG: the clients' side bounds
/// the load there, `docs/benchmarks.md`.)
pub const BATCH_LIMITS: BatchLimits = BatchLimits { max_requests: SERVICE_LIMITS.connections, max_wait_us: 0 };

/// Each request alone, at once.
pub const NO_BATCHING: BatchLimits = BatchLimits { max_requests: 1, max_wait_us: 0 };

/// Why the host's batch limits were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadBatchLimits {
    /// Not `off` or `REQUESTS,WAIT_US` in decimal.
    Unreadable,
    /// `REQUESTS` is 0 or above the connection cap, or `WAIT_US` above [`MAX_WAIT_US`].
    OutOfRange,
}

impl BadBatchLimits {
    /// A stable name for records.
    pub const fn as_str(self) -> &'static str {
        match self {
            BadBatchLimits::Unreadable => "unreadable",
            BadBatchLimits::OutOfRange => "out-of-range",
        }
    }
}

impl BatchLimits {
    /// The limits in the host's fw_cfg text: `off`, or `REQUESTS,WAIT_US` (a trailing newline is allowed).
    pub fn parse(text: &[u8]) -> Result<BatchLimits, BadBatchLimits> {
        let text = core::str::from_utf8(text).map_err(|_| BadBatchLimits::Unreadable)?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        if text == "off" {
            return Ok(NO_BATCHING);
        }
        let (requests, wait) = text.split_once(',').ok_or(BadBatchLimits::Unreadable)?;
        let decimal = |s: &str| {
            let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            digits.then(|| s.parse::<u64>().ok()).flatten().ok_or(BadBatchLimits::Unreadable)
        };
        let (requests, max_wait_us) = (decimal(requests)?, decimal(wait)?);
        let max_requests = usize::try_from(requests).map_err(|_| BadBatchLimits::OutOfRange)?;
        if !(1..=SERVICE_LIMITS.connections).contains(&max_requests) || max_wait_us > MAX_WAIT_US {
            return Err(BadBatchLimits::OutOfRange);
        }
        Ok(BatchLimits { max_requests, max_wait_us })
    }

    /// Whether to run the batch now: `waiting` requests held, the oldest for `oldest_wait_us`, while
    /// `could_join` open connections hold none.
    pub fn due(&self, waiting: usize, oldest_wait_us: u64, could_join: usize) -> bool {
        waiting > 0 && (waiting >= self.max_requests || could_join == 0 || oldest_wait_us >= self.max_wait_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_may_turn_batching_off_or_set_limits_within_the_bounds() {
        assert_eq!(BatchLimits::parse(b"off"), Ok(NO_BATCHING));
        assert_eq!(BatchLimits::parse(b"off\n"), Ok(NO_BATCHING));
        assert_eq!(BatchLimits::parse(b"4,500"), Ok(BatchLimits { max_requests: 4, max_wait_us: 500 }));
        assert_eq!(BatchLimits::parse(b"8,10000"), Ok(BatchLimits { max_requests: 8, max_wait_us: MAX_WAIT_US }));
        assert_eq!(BatchLimits::parse(b"1,0"), Ok(BatchLimits { max_requests: 1, max_wait_us: 0 }));
        for out_of_range in [&b"0,100"[..], b"9,100", b"4,10001", b"18446744073709551615,1"] {
            assert_eq!(BatchLimits::parse(out_of_range), Err(BadBatchLimits::OutOfRange), "{out_of_range:?}");
        }
        for unreadable in [&b""[..], b"on", b"4", b"4,", b",5", b"-1,5", b"4, 5", b"+4,5", b"4,5,6", b"\xff,1"] {
            assert_eq!(BatchLimits::parse(unreadable), Err(BadBatchLimits::Unreadable), "{unreadable:?}");
        }
        assert_eq!(BatchLimits::parse(b"99999999999999999999,1"), Err(BadBatchLimits::Unreadable));
    }

    #[test]
    fn a_batch_runs_when_full_when_nobody_else_could_join_or_when_its_first_request_has_waited_enough() {
        let limits = BatchLimits { max_requests: 4, max_wait_us: 2_000 };
        assert!(!limits.due(0, 0, 0), "nothing to run");
        assert!(limits.due(1, 0, 0), "one client alone does not wait");
        assert!(!limits.due(1, 0, 3), "others may send");
        assert!(!limits.due(3, 1_999, 1));
        assert!(limits.due(3, 2_000, 1), "the wait is bounded");
        assert!(limits.due(4, 0, 4), "full");
        for waited in [0, 1, 10_000] {
            assert!(NO_BATCHING.due(1, waited, 7), "without batching every request runs at once");
        }
    }
}
