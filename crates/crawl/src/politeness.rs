//! How long to wait before the next request to a host: the regular delay (configured
//! minimum, robots Crawl-delay up to a cap, a multiple of the last response time, clamped),
//! the back-off after errors (doubling per consecutive error, capped) and Retry-After.
//!
//! Pure arithmetic on durations; this module must not sleep, fetch or touch the store.

use std::time::Duration;

use crate::config::PolitenessConfig;

/// One host's pacing rules: the configuration plus what its robots.txt asked for.
#[derive(Debug, Clone)]
pub struct Pace {
    config: PolitenessConfig,
    crawl_delay: Option<Duration>,
}

impl Pace {
    pub fn new(config: &PolitenessConfig, crawl_delay: Option<Duration>) -> Pace {
        Pace {
            config: config.clone(),
            crawl_delay,
        }
    }

    pub fn config(&self) -> &PolitenessConfig {
        &self.config
    }

    /// The robots Crawl-delay in force (already capped), in ms.
    pub fn crawl_delay_ms(&self) -> Option<u64> {
        self.crawl_delay.map(|d| {
            u64::try_from(d.as_millis())
                .unwrap_or(u64::MAX)
                .min(self.config.crawl_delay_cap_ms)
        })
    }

    /// Delay after a successful request that took `took`:
    /// clamp(max(crawl delay ≤ cap, factor × took), min, max), in ms.
    pub fn delay_ms(&self, took: Duration) -> u64 {
        let scaled = (took.as_secs_f64() * 1000.0 * self.config.response_time_factor).max(0.0);
        // as: a float far above u64::MAX saturates, which the clamp below then cuts.
        let scaled = scaled as u64;
        let wanted = self.crawl_delay_ms().unwrap_or(0).max(scaled);
        wanted.clamp(self.config.min_delay_ms, self.config.max_delay_ms)
    }

    /// Wait after the `streak`-th consecutive error (1 = first): the regular delay or the
    /// doubling back-off, whichever is longer, in ms.
    pub fn backoff_ms(&self, streak: i64, took: Duration) -> u64 {
        let exponent = u32::try_from(streak.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let backoff = self
            .config
            .error_backoff_ms
            .saturating_mul(1u64 << exponent)
            .min(self.config.max_backoff_ms);
        backoff.max(self.delay_ms(took))
    }

    /// Wait asked for by a 429/503 `Retry-After` of `seconds` (or, without one, the error
    /// back-off), capped; never shorter than the regular delay. In ms.
    pub fn retry_after_ms(&self, seconds: Option<u64>, streak: i64, took: Duration) -> u64 {
        match seconds {
            Some(s) => s
                .saturating_mul(1000)
                .min(self.config.retry_after_cap_ms)
                .max(self.delay_ms(took)),
            None => self.backoff_ms(streak, took),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PolitenessConfig {
        PolitenessConfig {
            min_delay_ms: 500,
            max_delay_ms: 20_000,
            crawl_delay_cap_ms: 10_000,
            response_time_factor: 2.0,
            error_backoff_ms: 1_000,
            max_backoff_ms: 8_000,
            retry_after_cap_ms: 60_000,
        }
    }

    #[test]
    fn crawl_delay_is_honoured_up_to_the_cap() {
        let pace = Pace::new(&config(), Some(Duration::from_secs(3)));
        assert_eq!(pace.delay_ms(Duration::ZERO), 3_000);
        let greedy = Pace::new(&config(), Some(Duration::from_secs(3600)));
        assert_eq!(greedy.delay_ms(Duration::ZERO), 10_000);
    }

    #[test]
    fn slow_responses_stretch_the_delay_within_the_bounds() {
        let pace = Pace::new(&config(), None);
        assert_eq!(pace.delay_ms(Duration::from_millis(10)), 500);
        assert_eq!(pace.delay_ms(Duration::from_millis(2_000)), 4_000);
        assert_eq!(pace.delay_ms(Duration::from_secs(100)), 20_000);
    }

    #[test]
    fn backoff_doubles_per_error_and_stops_at_the_cap() {
        let pace = Pace::new(&config(), None);
        let waits: Vec<u64> = (1..=6)
            .map(|s| pace.backoff_ms(s, Duration::ZERO))
            .collect();
        assert_eq!(waits, [1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
        assert_eq!(pace.backoff_ms(i64::MAX, Duration::ZERO), 8_000);
    }

    #[test]
    fn retry_after_is_capped_and_never_below_the_delay() {
        let pace = Pace::new(&config(), Some(Duration::from_secs(2)));
        assert_eq!(pace.retry_after_ms(Some(5), 1, Duration::ZERO), 5_000);
        assert_eq!(pace.retry_after_ms(Some(1), 1, Duration::ZERO), 2_000);
        assert_eq!(
            pace.retry_after_ms(Some(u64::MAX), 1, Duration::ZERO),
            60_000
        );
        assert_eq!(pace.retry_after_ms(None, 2, Duration::ZERO), 2_000);
    }
}
