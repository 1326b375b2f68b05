//! The simulated clock: provider behaviour runs on it, scaled from real time.
//!
//! Simulated time is measured from the world's start; `EPOCH_UNIX` anchors it to a calendar
//! date for logs and notices. Tests may jump it forward, never back. Must not be used for
//! socket timeouts (those are real time).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The simulated world starts at 2026-01-01T00:00:00Z.
pub const EPOCH_UNIX: u64 = 1_767_225_600;

#[derive(Debug)]
pub struct SimClock {
    started: Instant,
    scale: f64,
    /// Simulated nanoseconds added by `advance`.
    skipped_nanos: AtomicU64,
}

impl SimClock {
    pub fn new(scale: f64) -> SimClock {
        SimClock {
            started: Instant::now(),
            scale,
            skipped_nanos: AtomicU64::new(0),
        }
    }

    /// Simulated time elapsed since the world started.
    pub fn now(&self) -> Duration {
        let running = Duration::from_secs_f64(self.started.elapsed().as_secs_f64() * self.scale);
        running + Duration::from_nanos(self.skipped_nanos.load(Ordering::Relaxed))
    }

    /// Jumps simulated time forward (saturating at about 584 years of jumps).
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .skipped_nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_add(nanos))
            });
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// How much real time passes while `sim` passes in the world.
    pub fn real_for(&self, sim: Duration) -> Duration {
        Duration::from_secs_f64(sim.as_secs_f64() / self.scale)
    }
}

/// Wall-clock milliseconds since the Unix epoch (for request logs).
pub fn real_unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
