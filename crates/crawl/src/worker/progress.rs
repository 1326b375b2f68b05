//! Counters a running crawler keeps for progress displays (`aranea crawl`, `aranea demo`).
//! Relaxed atomics: a snapshot is a consistent-enough view, never a synchronisation point.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// What a crawler has done since it started.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CrawlProgress {
    /// Requests made (pages, media, robots.txt), including failed ones.
    pub fetched: u64,
    /// HTML pages processed.
    pub pages: u64,
    /// Media hashed (archive members included).
    pub media: u64,
    /// Sightings that matched a bank entry.
    pub matches: u64,
    /// Media that entered the review queue.
    pub review: u64,
    /// URLs given up or failed with an error this time.
    pub errors: u64,
    /// URLs skipped by robots, budgets, scope or the deny-list.
    pub skipped: u64,
    /// URLs still queued in the store (all workers), as of the last look.
    pub queued: i64,
    /// Hosts this worker holds leases on now.
    pub hosts_leased: u64,
    pub elapsed_secs: f64,
    /// Requests per second since start.
    pub rate: f64,
}

#[derive(Debug)]
pub(crate) struct Counters {
    started: Instant,
    pub fetched: AtomicU64,
    pub pages: AtomicU64,
    pub media: AtomicU64,
    pub matches: AtomicU64,
    pub review: AtomicU64,
    pub errors: AtomicU64,
    pub skipped: AtomicU64,
    pub queued: AtomicI64,
    pub hosts_leased: AtomicU64,
}

impl Counters {
    pub fn new() -> Counters {
        Counters {
            started: Instant::now(),
            fetched: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            media: AtomicU64::new(0),
            matches: AtomicU64::new(0),
            review: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            queued: AtomicI64::new(0),
            hosts_leased: AtomicU64::new(0),
        }
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CrawlProgress {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed().max(Duration::from_millis(1));
        let fetched = get(&self.fetched);
        CrawlProgress {
            fetched,
            pages: get(&self.pages),
            media: get(&self.media),
            matches: get(&self.matches),
            review: get(&self.review),
            errors: get(&self.errors),
            skipped: get(&self.skipped),
            queued: self.queued.load(Ordering::Relaxed),
            hosts_leased: get(&self.hosts_leased),
            elapsed_secs: elapsed.as_secs_f64(),
            rate: fetched as f64 / elapsed.as_secs_f64(),
        }
    }
}
