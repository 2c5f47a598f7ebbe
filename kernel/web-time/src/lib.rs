//! The part of `web-time`'s API that burn uses (through cubecl-environment's profiling), for a no_std guest:
//! [`Duration`] is `core`'s, and [`Instant`] reads the TSC.
//!
//! The guest sets the TSC frequency once it has calibrated it ([`set_tsc_hz`]); before that, durations assume
//! 1 GHz. Nothing in the guest's inference path reads the time: burn only does when profiling.
#![no_std]

use core::ops::{Add, AddAssign, Sub, SubAssign};
use core::sync::atomic::{AtomicU64, Ordering};

pub use core::time::Duration;

/// TSC ticks per second; 1 GHz until the guest calibrates.
static TSC_HZ: AtomicU64 = AtomicU64::new(1_000_000_000);

/// Sets the TSC frequency that converts ticks to durations.
pub fn set_tsc_hz(hz: u64) {
    if hz != 0 {
        TSC_HZ.store(hz, Ordering::Relaxed);
    }
}

fn rdtsc() -> u64 {
    // SAFETY: RDTSC reads a counter; it has no memory effects, and the guest leaves CR4.TSD clear.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn ticks_to_duration(ticks: u64) -> Duration {
    let hz = TSC_HZ.load(Ordering::Relaxed);
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(hz);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

fn duration_to_ticks(duration: Duration) -> Option<u64> {
    let hz = TSC_HZ.load(Ordering::Relaxed);
    u64::try_from(duration.as_nanos() * u128::from(hz) / 1_000_000_000).ok()
}

/// A point on the TSC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    ticks: u64,
}

impl Instant {
    /// Now.
    pub fn now() -> Instant {
        Instant { ticks: rdtsc() }
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn duration_since(&self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }

    /// The time from `earlier` to `self`, or `None` if `earlier` is later.
    pub fn checked_duration_since(&self, earlier: Instant) -> Option<Duration> {
        self.ticks.checked_sub(earlier.ticks).map(ticks_to_duration)
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(&self, earlier: Instant) -> Duration {
        ticks_to_duration(self.ticks.saturating_sub(earlier.ticks))
    }

    /// The time since `self`.
    pub fn elapsed(&self) -> Duration {
        Instant::now().duration_since(*self)
    }

    /// `self + duration`, or `None` on overflow.
    pub fn checked_add(&self, duration: Duration) -> Option<Instant> {
        Some(Instant { ticks: self.ticks.checked_add(duration_to_ticks(duration)?)? })
    }

    /// `self - duration`, or `None` on underflow.
    pub fn checked_sub(&self, duration: Duration) -> Option<Instant> {
        Some(Instant { ticks: self.ticks.checked_sub(duration_to_ticks(duration)?)? })
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, duration: Duration) -> Instant {
        self.checked_add(duration).expect("overflow when adding a duration to an instant")
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, duration: Duration) {
        *self = *self + duration;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, duration: Duration) -> Instant {
        self.checked_sub(duration).expect("overflow when subtracting a duration from an instant")
    }
}

impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, duration: Duration) {
        *self = *self - duration;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.duration_since(earlier)
    }
}
