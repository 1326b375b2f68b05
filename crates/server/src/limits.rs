//! Per-client request rates: a token bucket per API client.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Allows `per_second` requests a second on average, and bursts of as many.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: u32,
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> RateLimiter {
        let per_second = per_second.max(1);
        RateLimiter {
            per_second,
            bucket: Mutex::new((f64::from(per_second), Instant::now())),
        }
    }

    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    /// Takes one token, or says how long until one is available.
    pub fn try_acquire(&self) -> Result<(), Duration> {
        self.try_acquire_at(Instant::now())
    }

    fn try_acquire_at(&self, now: Instant) -> Result<(), Duration> {
        let rate = f64::from(self.per_second);
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, last) = &mut *bucket;
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * rate).min(rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_until_tokens_refill() {
        let limiter = RateLimiter::new(3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.try_acquire_at(start).is_ok());
        }
        let wait = limiter.try_acquire_at(start).unwrap_err();
        assert!(wait > Duration::from_millis(300) && wait <= Duration::from_millis(334));
        assert!(
            limiter
                .try_acquire_at(start + Duration::from_millis(340))
                .is_ok()
        );
        assert!(
            limiter
                .try_acquire_at(start + Duration::from_millis(341))
                .is_err()
        );
    }
}
