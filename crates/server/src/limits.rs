//! Per-client request rates: a token bucket per API client, its rate shared with the other
//! servers of a deployment.
//!
//! A client's rate (`aranea client add --rate N`) holds for the deployment, not for each
//! server process: every server counts what the client asks of it and, about every second,
//! writes that demand to the database and reads the other servers' (`ApiClients::
//! share_demand`); it then refills the client's bucket at its share of the rate, in proportion
//! to its demand. The shares add up to the rate whatever way a load balancer spreads the
//! requests, and a server alone keeps the whole rate (the only case before). The shares lag
//! the demand by one exchange, so a deployment can let through up to about one second's
//! worth more when the client's traffic moves between servers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The least share of a rate a server refills at, in requests per second.
const LEAST_SHARE: f64 = 0.01;

/// Allows `per_second` requests a second on average, and bursts of as many, across every
/// server of a deployment (this server's part of it set by [`RateLimiter::set_share`]).
#[derive(Debug)]
pub struct RateLimiter {
    per_second: u32,
    bucket: Mutex<Bucket>,
    /// Requests asked of this server since the last [`RateLimiter::take_demand`].
    asked: AtomicU64,
    /// The last demand written was not zero: a zero must be written once, so that the other
    /// servers stop counting this one.
    published: AtomicBool,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    /// This server's share of the rate, in requests per second.
    share: f64,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> RateLimiter {
        let per_second = per_second.max(1);
        RateLimiter {
            per_second,
            bucket: Mutex::new(Bucket {
                tokens: f64::from(per_second),
                last: Instant::now(),
                share: f64::from(per_second),
            }),
            asked: AtomicU64::new(0),
            published: AtomicBool::new(false),
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
        self.asked.fetch_add(1, Ordering::Relaxed);
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        bucket.refill(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / bucket.share;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX))
        }
    }

    /// The requests asked of this server per second since the last call, `over` ago, in
    /// thousandths; None when it was and stays zero (nothing to tell the others).
    pub fn take_demand(&self, over: Duration) -> Option<i64> {
        let asked = self.asked.swap(0, Ordering::Relaxed);
        let was_published = self.published.swap(asked > 0, Ordering::Relaxed);
        if asked == 0 && !was_published {
            return None;
        }
        let millis = over.as_millis().max(1);
        Some(i64::try_from(u128::from(asked) * 1_000_000 / millis).unwrap_or(i64::MAX))
    }

    /// Refills at `share` requests per second from now on, bursts of as many (at least one
    /// request, so that a small share still lets requests through).
    pub fn set_share(&self, share: f64) {
        self.set_share_at(share, Instant::now());
    }

    fn set_share_at(&self, share: f64, now: Instant) {
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        bucket.refill(now);
        // A share is never zero: a server keeps a trickle (one request per
        // [`LEAST_SHARE`]⁻¹ seconds) until the next exchange gives it its part.
        bucket.share = if share.is_nan() {
            LEAST_SHARE
        } else {
            share.clamp(LEAST_SHARE, f64::from(self.per_second))
        };
        bucket.tokens = bucket.tokens.min(bucket.capacity());
    }
}

impl Bucket {
    fn capacity(&self) -> f64 {
        self.share.max(1.0)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.share).min(self.capacity());
        self.last = now;
    }
}

/// This server's share of a client's `rate`, given its own demand and the other servers'
/// (how many, their summed demand; requests per second): in proportion to the demand, so
/// that the shares add up to the rate. A server that was asked nothing lately but others
/// were takes an equal part until its own demand is known; with no other server it keeps
/// the whole rate.
pub fn share_of_rate(rate: f64, own_demand: f64, other_servers: u32, others_demand: f64) -> f64 {
    if other_servers == 0 || others_demand <= 0.0 {
        rate
    } else if own_demand <= 0.0 {
        rate / f64::from(other_servers.saturating_add(1))
    } else {
        rate * own_demand / (own_demand + others_demand)
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

    #[test]
    fn a_share_refills_at_its_rate_with_bursts_of_its_size() {
        let limiter = RateLimiter::new(10);
        let start = Instant::now();
        limiter.set_share_at(2.0, start);
        // The full burst of 10 shrank to the share's 2.
        assert!(limiter.try_acquire_at(start).is_ok());
        assert!(limiter.try_acquire_at(start).is_ok());
        let wait = limiter.try_acquire_at(start).unwrap_err();
        assert!(wait > Duration::from_millis(490) && wait <= Duration::from_millis(500));
        assert!(
            limiter
                .try_acquire_at(start + Duration::from_millis(501))
                .is_ok()
        );
        // A share below one request a second still lets one through once refilled.
        limiter.set_share_at(0.25, start + Duration::from_millis(501));
        assert!(
            limiter
                .try_acquire_at(start + Duration::from_millis(600))
                .is_err()
        );
        assert!(
            limiter
                .try_acquire_at(start + Duration::from_millis(4_600))
                .is_ok()
        );
        // A larger share refills from when it is set (the bucket held one); one over the rate
        // is the rate.
        limiter.set_share_at(50.0, start + Duration::from_secs(60));
        let burst = |at: Duration| {
            (0..20)
                .filter(|_| limiter.try_acquire_at(start + at).is_ok())
                .count()
        };
        assert_eq!(burst(Duration::from_secs(60)), 1);
        assert_eq!(burst(Duration::from_secs(61)), 10);
    }

    #[test]
    fn demand_counts_every_request_asked_and_a_zero_is_told_once() {
        let limiter = RateLimiter::new(1);
        assert_eq!(limiter.take_demand(Duration::from_secs(1)), None);
        let start = Instant::now();
        for _ in 0..5 {
            let _ = limiter.try_acquire_at(start);
        }
        // Refused requests count: they are what the client asks of this server.
        assert_eq!(
            limiter.take_demand(Duration::from_millis(500)),
            Some(10_000)
        );
        assert_eq!(limiter.take_demand(Duration::from_secs(1)), Some(0));
        assert_eq!(limiter.take_demand(Duration::from_secs(1)), None);
    }

    #[test]
    fn shares_follow_demand_and_add_up_to_the_rate() {
        assert_eq!(share_of_rate(10.0, 5.0, 0, 0.0), 10.0);
        assert_eq!(share_of_rate(10.0, 0.0, 0, 0.0), 10.0);
        assert_eq!(share_of_rate(10.0, 30.0, 1, 0.0), 10.0);
        assert_eq!(share_of_rate(10.0, 0.0, 3, 12.0), 2.5);
        let (a, b, c) = (40.0, 10.0, 50.0);
        let shares = [
            share_of_rate(10.0, a, 2, b + c),
            share_of_rate(10.0, b, 2, a + c),
            share_of_rate(10.0, c, 2, a + b),
        ];
        assert_eq!(shares, [4.0, 1.0, 5.0]);
        assert!((shares.iter().sum::<f64>() - 10.0).abs() < 1e-9);
    }
}
