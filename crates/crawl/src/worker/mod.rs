//! The crawl worker: claims hosts from the store's frontier, keeps the leased hosts in a heap
//! ordered by the time each may next be asked for something, and runs one step (one request
//! and what follows from it) per host at a time, so there is never more than one request in
//! flight per host. Embeddable: `aranea crawl` and `aranea demo` both drive a [`Crawler`].
//!
//! ```no_run
//! # async fn demo(store: aranea_store::Store, banks: std::sync::Arc<aranea_index::LiveIndex>)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use aranea_crawl::{CrawlConfig, Crawler, DiscardMedia};
//! let crawler = Crawler::new(store, banks, CrawlConfig::default(), std::sync::Arc::new(DiscardMedia))?;
//! crawler.enqueue_seeds(&["https://example.org/".parse()?]).await?;
//! let progress = crawler.run_until_idle().await?;
//! println!("{} fetched, {} matches", progress.fetched, progress.matches);
//! # Ok(()) }
//! ```
//!
//! This module must not decide what is illegal; it records what the banks matched.

mod archived;
mod commit;
mod domains;
mod hashing;
mod host;
mod links;
mod page;
mod progress;
mod sink;
mod verdict;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aranea_index::{BankFilter, LiveIndex};
use aranea_store::{Priority, ReportStatus, Store, StoreError, UnixMillis, UrlSource};
use tokio::task::JoinSet;
use url::Url;

use crate::canonical::CanonicalConfig;
use crate::config::{ConfigError, CrawlConfig};
use crate::extract::ExtractConfig;
use crate::fetch::{Fetcher, FetcherSetupError};
use crate::pipeline::{CpuPool, Matcher, VideoMatching};
use crate::robots::RobotsConfig;
use crate::scope::DenyList;

pub use progress::CrawlProgress;
pub use sink::{DiscardMedia, ReviewMediaSink};

use domains::DomainSpend;
use host::{HostWork, StepEnd};
use links::{DenyRule, Origin, frontier_entry, new_url};
use progress::Counters;

/// Why the crawler could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The setup error is the source, left out of the message (a chain printer adds it).
    #[error("setting up the fetcher")]
    Fetcher(#[from] FetcherSetupError),
    #[error("bank {0:?} (named in crawl.banks) does not exist")]
    UnknownBank(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("starting the hashing threads: {0}")]
    Threads(std::io::Error),
}

/// Everything a host step needs, shared by all steps.
pub(crate) struct Context {
    pub store: Store,
    pub fetcher: Fetcher,
    pub config: CrawlConfig,
    pub robots: RobotsConfig,
    pub extract: ExtractConfig,
    pub canonical: CanonicalConfig,
    pub matcher: Matcher,
    pub cpu: CpuPool,
    pub sink: Arc<dyn ReviewMediaSink>,
    pub deny: Box<DenyRule>,
    pub counters: Counters,
    pub worker: String,
    /// Requests per registrable domain, shared by this process's hosts.
    pub domains: DomainSpend,
    /// Page verdicts of all hosts, written together.
    pub commits: commit::GroupCommit,
    /// Mined pages' media, enqueued together.
    pub enqueues: commit::GroupEnqueue,
    /// This process's turn to write (SQLite only).
    pub writes: commit::WriteTurn,
    /// Held for writing ([`Crawler::hold_hashing`]), media hashing waits.
    pub hash_gate: Arc<tokio::sync::RwLock<()>>,
}

/// A crawl worker over one store and one set of banks.
pub struct Crawler {
    cx: Arc<Context>,
}

/// The current time as Unix milliseconds.
pub(crate) fn now_ms() -> UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn default_worker_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

impl Crawler {
    /// A crawler named after the machine and process; see [`Crawler::with_worker_name`].
    pub fn new(
        store: Store,
        banks: Arc<LiveIndex>,
        config: CrawlConfig,
        sink: Arc<dyn ReviewMediaSink>,
    ) -> Result<Crawler, CrawlError> {
        Self::with_worker_name(store, banks, config, sink, &default_worker_name())
    }

    /// A crawler whose leases carry `worker` as their owner (unique per running worker).
    pub fn with_worker_name(
        store: Store,
        banks: Arc<LiveIndex>,
        config: CrawlConfig,
        sink: Arc<dyn ReviewMediaSink>,
        worker: &str,
    ) -> Result<Crawler, CrawlError> {
        config.validate()?;
        let filter = bank_filter(&banks, &config.banks)?;
        let video = VideoMatching::new(config.max_body_bytes, config.video_wall());
        let matcher = Matcher::new(
            banks,
            filter,
            config.min_pdq_quality,
            config.pdq_dihedral,
            video,
        );
        let workers = match config.hash_workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let cx = Context {
            fetcher: Fetcher::new(config.fetch_config()?)?,
            robots: config.robots_config(),
            extract: config.extract_config(),
            canonical: config.canonical_config(),
            matcher,
            cpu: CpuPool::start(workers).map_err(CrawlError::Threads)?,
            sink,
            deny: {
                let list = DenyList::new(&config.deny).map_err(ConfigError::from)?;
                Box::new(move |url: &Url| {
                    list.denies(url)
                        .map(|r| format!("{:?} ({})", r.service, r.pattern))
                })
            },
            counters: Counters::new(),
            domains: DomainSpend::default(),
            commits: commit::GroupCommit::default(),
            enqueues: commit::GroupEnqueue::default(),
            writes: commit::WriteTurn::new(store.kind()),
            worker: worker.to_owned(),
            hash_gate: Arc::new(tokio::sync::RwLock::new(())),
            store,
            config,
        };
        Ok(Crawler { cx: Arc::new(cx) })
    }

    /// Matches videos against the vPDQ entries in `index` from now on (build it from the bank
    /// state, and set it again after bank changes). Until one is set, videos match by digest
    /// and by their frames against image banks only.
    pub fn set_video_index(&self, index: Arc<aranea_index::video::VideoIndex>) {
        self.cx.matcher.video().set_index(index);
    }

    /// Media hashing waits until the returned guard is dropped; fetching goes on (hosts'
    /// requests do not wait for hashing, up to a few media per host). For tests that show
    /// so: hashing is otherwise never held.
    #[doc(hidden)]
    pub async fn hold_hashing(&self) -> tokio::sync::OwnedRwLockWriteGuard<()> {
        Arc::clone(&self.cx.hash_gate).write_owned().await
    }

    /// The worker name leases are held under.
    pub fn worker_name(&self) -> &str {
        &self.cx.worker
    }

    /// What this crawler has done so far.
    pub fn progress(&self) -> CrawlProgress {
        self.cx.counters.snapshot()
    }

    /// Queues operator-given URLs (priority of reports, depth 0); returns how many were new.
    /// URLs that cannot be crawled (not http(s), deny-listed) are returned as refused.
    pub async fn enqueue_seeds(&self, urls: &[Url]) -> Result<SeedOutcome, CrawlError> {
        let cx = &self.cx;
        let now = now_ms();
        let mut batch = Vec::new();
        let mut refused = Vec::new();
        for url in urls {
            match frontier_entry(url, &cx.canonical, &*cx.deny) {
                Ok((url, key, domain)) => batch.push(new_url(&url, key, domain, &seed_origin(now))),
                Err(why) => refused.push((url.to_string(), why)),
            }
        }
        let done = cx.store.frontier().enqueue_urls(&batch, now).await?;
        Ok(SeedOutcome {
            queued: done.iter().filter(|d| d.inserted).count(),
            known: done.iter().filter(|d| !d.inserted).count(),
            refused,
        })
    }

    /// Moves reports still `received` into the frontier (up to `limit`); returns how many.
    /// A report whose URL cannot be crawled (not a URL, not http(s), deny-listed) is
    /// rejected; every other one is `queued` and settles when its URL does (see
    /// [`aranea_store::Frontier::enqueue_reported`]).
    pub async fn queue_reports(&self, limit: u32) -> Result<usize, CrawlError> {
        queue_reports(&self.cx, limit).await
    }

    /// Crawls until the store holds no queued URL and this worker holds no host.
    pub async fn run_until_idle(&self) -> Result<CrawlProgress, CrawlError> {
        self.run_loop(true, std::future::pending()).await
    }

    /// Crawls until `shutdown` completes, then finishes the steps in flight and releases
    /// every lease.
    pub async fn run(
        &self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<CrawlProgress, CrawlError> {
        self.run_loop(false, shutdown).await
    }

    /// [`Crawler::run_until_idle`], but stops early when `shutdown` completes.
    pub async fn run_until_idle_or(
        &self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<CrawlProgress, CrawlError> {
        self.run_loop(true, shutdown).await
    }

    async fn run_loop(
        &self,
        until_idle: bool,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<CrawlProgress, CrawlError> {
        let mut scheduler = Scheduler::new(Arc::clone(&self.cx));
        let outcome = scheduler.run(until_idle, shutdown).await;
        scheduler.release_all().await;
        outcome?;
        Ok(self.progress())
    }
}

/// What [`Crawler::enqueue_seeds`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedOutcome {
    pub queued: usize,
    pub known: usize,
    /// URL and why it was refused.
    pub refused: Vec<(String, String)>,
}

fn seed_origin(now: UnixMillis) -> Origin {
    Origin {
        source: UrlSource::Seed,
        priority: Priority::Reported,
        depth: 0,
        parent: None,
        report: None,
        not_before: now,
    }
}

fn bank_filter(banks: &LiveIndex, names: &[String]) -> Result<BankFilter, CrawlError> {
    if names.is_empty() {
        return Ok(BankFilter::All);
    }
    let generation = banks.load();
    let mut ids = Vec::new();
    for name in names {
        let bank = generation
            .banks()
            .iter()
            .find(|b| &b.spec.name == name)
            .ok_or_else(|| CrawlError::UnknownBank(name.clone()))?;
        ids.push(bank.id);
    }
    Ok(BankFilter::Only(ids))
}

async fn queue_reports(cx: &Context, limit: u32) -> Result<usize, CrawlError> {
    let reports = cx
        .store
        .reports()
        .with_status(ReportStatus::Received, limit)
        .await?;
    let now = now_ms();
    for report in &reports {
        let parsed = Url::parse(report.url.trim()).map_err(|e| e.to_string());
        match parsed.and_then(|u| frontier_entry(&u, &cx.canonical, &*cx.deny)) {
            Ok((url, key, domain)) => {
                let origin = Origin {
                    source: UrlSource::Report,
                    report: Some(report.id),
                    ..seed_origin(now)
                };
                // Already known (reported before, or found for another reason): the store
                // makes it a reported URL again, and this report settles with it.
                cx.store
                    .frontier()
                    .enqueue_reported(report.id, &new_url(&url, key, domain, &origin), now)
                    .await?;
            }
            Err(why) => {
                let reason = format!("not crawlable: {why}");
                cx.store
                    .reports()
                    .reject_received(report.id, &reason)
                    .await?;
            }
        }
    }
    Ok(reports.len())
}

/// The heap of leased hosts and the steps in flight.
struct Scheduler {
    cx: Arc<Context>,
    /// Idle leased hosts by the time they may next be asked (earliest first).
    ready: BinaryHeap<Reverse<(UnixMillis, u64)>>,
    idle: std::collections::HashMap<u64, HostWork>,
    running: JoinSet<(u64, HostWork, Result<StepEnd, StoreError>)>,
    next_key: u64,
}

impl Scheduler {
    fn new(cx: Arc<Context>) -> Scheduler {
        Scheduler {
            cx,
            ready: BinaryHeap::new(),
            idle: std::collections::HashMap::new(),
            running: JoinSet::new(),
            next_key: 0,
        }
    }

    fn held(&self) -> usize {
        self.idle.len() + self.running.len()
    }

    async fn run(
        &mut self,
        until_idle: bool,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), CrawlError> {
        let claim_every = Duration::from_millis(self.cx.config.claim_interval_ms.max(10));
        let mut next_claim = tokio::time::Instant::now();
        let mut next_count = tokio::time::Instant::now();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            // Polled once without waiting: a shutdown that is already due stops the loop
            // before anything new is claimed. (Not a zero `timeout`: that waits for the
            // timer's next tick, a millisecond or more per turn of this loop, and the loop
            // turned once per step, so steps queued up behind it: 28 ms per step on average
            // in the pipeline bench.)
            let due = std::future::poll_fn(|waker| {
                std::task::Poll::Ready(shutdown.as_mut().poll(waker).is_ready())
            })
            .await;
            if due {
                return Ok(());
            }
            if tokio::time::Instant::now() >= next_count {
                // For progress displays only; a count over the frontier is not free.
                let queued = self.cx.store.crawl_facts().queued().await?;
                self.cx.counters.queued.store(queued, Ordering::Relaxed);
                next_count = tokio::time::Instant::now() + Duration::from_secs(5);
            }
            if tokio::time::Instant::now() >= next_claim {
                let claimed = self.claim().await?;
                next_claim = tokio::time::Instant::now() + claim_every;
                if until_idle && claimed == 0 && self.held() == 0 {
                    let queued = self.cx.store.crawl_facts().queued().await?;
                    self.cx.counters.queued.store(queued, Ordering::Relaxed);
                    if queued == 0 {
                        return Ok(());
                    }
                }
            }
            self.start_due_steps();
            let wake = self
                .ready
                .peek()
                .map(|Reverse((at, _))| instant_at(*at))
                .map_or(next_claim, |at| at.min(next_claim));
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                joined = self.running.join_next(), if !self.running.is_empty() => {
                    if let Some(Ok((key, work, end))) = joined {
                        self.step_done(key, work, end).await;
                    }
                    // Every other step that ended meanwhile too, before starting the next.
                    while let Some(joined) = self.running.try_join_next() {
                        if let Ok((key, work, end)) = joined {
                            self.step_done(key, work, end).await;
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn claim(&mut self) -> Result<usize, CrawlError> {
        let cx = Arc::clone(&self.cx);
        queue_reports(&cx, 1_000).await?;
        let room = usize::try_from(cx.config.max_hosts)
            .unwrap_or(usize::MAX)
            .saturating_sub(self.held());
        if room == 0 {
            return Ok(0);
        }
        let now = now_ms();
        let turn = cx.writes.take().await;
        let leased = cx
            .store
            .frontier()
            .claim_hosts(
                &cx.worker,
                u32::try_from(room).unwrap_or(1),
                cx.config.lease_ms,
                now,
            )
            .await?;
        drop(turn);
        let claimed = leased.len();
        for leased in leased {
            let work = HostWork::new(&cx, leased);
            self.push_idle(work);
        }
        self.cx
            .counters
            .hosts_leased
            .store(self.held() as u64, Ordering::Relaxed);
        Ok(claimed)
    }

    fn push_idle(&mut self, work: HostWork) {
        let key = self.next_key;
        self.next_key += 1;
        self.ready.push(Reverse((work.next_allowed(), key)));
        self.idle.insert(key, work);
    }

    fn start_due_steps(&mut self) {
        let now = now_ms();
        while let Some(Reverse((at, key))) = self.ready.peek().copied() {
            if at > now {
                break;
            }
            self.ready.pop();
            let Some(mut work) = self.idle.remove(&key) else {
                continue;
            };
            let cx = Arc::clone(&self.cx);
            self.running.spawn(async move {
                let end = work.step(&cx).await;
                (key, work, end)
            });
        }
    }

    async fn step_done(&mut self, _key: u64, work: HostWork, end: Result<StepEnd, StoreError>) {
        let cx = Arc::clone(&self.cx);
        match end {
            Ok(StepEnd::Again) if !work.should_release(&cx, now_ms()) => self.push_idle(work),
            Ok(_) => work.release(&cx).await,
            Err(StoreError::LeaseLost { .. }) => {}
            Err(_) => {
                Counters::bump(&cx.counters.errors);
                work.release(&cx).await;
            }
        }
        self.cx
            .counters
            .hosts_leased
            .store(self.held() as u64, Ordering::Relaxed);
    }

    /// Waits for the steps in flight, then gives every held host back.
    async fn release_all(&mut self) {
        while let Some(joined) = self.running.join_next().await {
            if let Ok((_, work, _)) = joined {
                work.release(&self.cx).await;
            }
        }
        for (_, work) in self.idle.drain() {
            work.release(&self.cx).await;
        }
        self.ready.clear();
        self.cx.counters.hosts_leased.store(0, Ordering::Relaxed);
    }
}

fn instant_at(at: UnixMillis) -> tokio::time::Instant {
    let wait = at.saturating_sub(now_ms()).max(0);
    tokio::time::Instant::now() + Duration::from_millis(u64::try_from(wait).unwrap_or(0))
}
