//! The simulated clock: provider behaviour runs on it, scaled from real time.
//!
//! Simulated time is measured from the world's start; `EPOCH_UNIX` anchors it to a calendar
//! date for logs and notices. Must not be used for socket timeouts (those are real time).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The simulated world starts at 2026-01-01T00:00:00Z.
pub const EPOCH_UNIX: u64 = 1_767_225_600;

#[derive(Debug, Clone)]
pub struct SimClock {
    started: Instant,
    scale: f64,
}

impl SimClock {
    pub fn new(scale: f64) -> SimClock {
        SimClock {
            started: Instant::now(),
            scale,
        }
    }

    /// Simulated time elapsed since the world started.
    pub fn now(&self) -> Duration {
        Duration::from_secs_f64(self.started.elapsed().as_secs_f64() * self.scale)
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
