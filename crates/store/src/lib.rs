//! Aranea's one schema on SQLite (the embedded default: one file, WAL) and PostgreSQL
//! (scale-out), with the leasing that lets many crawl workers share one frontier.
//!
//! The store keeps facts and hands out work; it holds no business rules. It does not decide
//! what to crawl, how long to wait between requests or what counts as a match: the crawler
//! computes those and the store records them, idempotently, so a worker killed at any point
//! can be restarted without losing or duplicating anything.
//!
//! ```no_run
//! # async fn demo() -> Result<(), aranea_store::StoreError> {
//! use aranea_store::{NewUrl, Store, UrlSource, Priority};
//! let store = Store::open("sqlite://./aranea-data/aranea.db").await?;
//! let now = 1_700_000_000_000;
//! store.frontier().enqueue_urls(&[NewUrl::new("https://example.org/", "https://example.org", "example.org",
//!     UrlSource::Seed, Priority::Reported, now)], now).await?;
//! for leased in store.frontier().claim_hosts("worker-1", 4, 60_000, now).await? {
//!     let batch = store.frontier().next_urls(&leased.lease, 10, now).await?;
//!     // fetch each URL, then complete_url(...) and finally release(...)
//! #   let _ = batch;
//! }
//! # Ok(()) }
//! ```
//!
//! Times are Unix milliseconds (UTC) in `i64` on both back-ends; callers pass `now`
//! explicitly so tests control time. Text is checked before any SQL (length, NUL bytes)
//! so both back-ends refuse the same input with the same [`StoreError`].

mod api_clients;
mod backend;
mod bank_journal;
mod crawl_facts;
mod error;
mod frontier;
mod media;
mod migrate;
mod notices;
mod reports;
mod review;
mod review_desk;
mod server_views;
mod statistics;
mod url_key;

pub use api_clients::{ApiClient, ApiClients, NewApiClient, OthersDemand};
pub use backend::{BackendKind, StoreOptions};
pub use bank_journal::{BankJournalRows, BankWritersLock, JournalAppend, JournalRow};
pub use crawl_facts::{CrawlFacts, UnmatchedSighting};
pub use error::{DbError, StoreError};
pub use frontier::MAX_URL_BYTES;
pub use frontier::{
    Completion, EnqueuedUrl, FetchOutcome, FetchRecord, Frontier, Host, HostId, HostPolicy, Lease,
    LeasedHost, NewUrl, PageSettlement, Priority, RedirectTarget, RobotsCache, SeenMedia,
    SettledLinks, SettledPage, UrlId, UrlNext, UrlRecord, UrlSource, UrlState,
};
pub use frontier::{HostRevisit, MAX_REVISIT_ADDRESSES, revisit_reads};
pub use media::{
    BankMatch, Media, MediaRecord, MediaStore, NewSighting, Recorded, Sighting, SightingId,
    TimedMatch,
};
pub use migrate::SCHEMA_VERSION;
pub use notices::{
    CheckRecord, ItemFact, ItemId, LinkKeyRing, LinkKeyRotation, MatchedSighting, NewItem,
    NewNotice, Notice, NoticeEvent, NoticeFilter, NoticeId, NoticeItem, NoticeState, NoticeStore,
    ProviderResponse, RetiredLinkKey, RetractionOwed, StateCounts, WatchedItem,
};
pub use reports::{
    MAX_NAME_BYTES, MAX_NOTES_BYTES, NewReport, Report, ReportId, ReportLink, ReportOutcome,
    ReportReference, ReportStatus, Reports,
};
pub use review::{ReviewEntry, ReviewQueue, ReviewReason, ReviewState};
pub use review_desk::{
    Attach, AuditEntry, AuditRecord, BankEntryRef, Decision, DecisionId, DecisionKind, Facts,
    Hotline, HotlineId, ItemMedia, ItemState, NewDecision, NewHotline, NewUser, QueuedMedia,
    ReviewDesk, ReviewItem, ReviewItemId, Session, Settlement, User, UserId, UserRole, VaultRecord,
    Vote, VoteCast,
};
pub use server_views::{MatchView, ServerViews, SightingView};
pub use statistics::{ProviderNotices, Series, Statistics};

use backend::Backend;

/// Unix time in milliseconds, UTC.
pub type UnixMillis = i64;

/// A connection pool to one Aranea database. Cheap to clone; clones share the pool.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

/// Row counts for progress displays and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub reports: i64,
    pub hosts: i64,
    pub urls: i64,
    pub urls_queued: i64,
    pub fetches: i64,
    pub media: i64,
    pub sightings: i64,
    pub matches: i64,
    /// The review backlog: queued media not yet decided (pending or in review).
    pub review: i64,
}

impl Store {
    /// Opens `sqlite://PATH` (creating the file and its directory) or `postgres://…`, and
    /// applies any pending migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_with(url, &StoreOptions::default()).await
    }

    /// [`Store::open`] with explicit pool settings.
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let store = Self::connect(url, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects (creating a SQLite file if missing) without applying migrations: for
    /// `aranea migrate`, which reports what it applied, and tools that must not change the
    /// schema. Other callers want [`Store::open`].
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::connect(url, options).await?,
        })
    }

    /// Applies pending migrations; returns how many were applied now. Safe to run from several
    /// processes at once (PostgreSQL: advisory lock; SQLite: the write lock).
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        self.backend.migrate().await
    }

    /// The highest schema version applied.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        self.backend.schema_version().await
    }

    /// Which back-end this store talks to.
    pub fn kind(&self) -> BackendKind {
        self.backend.kind()
    }

    /// Reported URLs.
    pub fn reports(&self) -> Reports<'_> {
        Reports::new(&self.backend)
    }

    /// Hosts and URLs: enqueueing, leasing, fetch outcomes.
    pub fn frontier(&self) -> Frontier<'_> {
        Frontier::new(&self.backend)
    }

    /// Media, sightings and bank matches.
    pub fn media(&self) -> MediaStore<'_> {
        MediaStore::new(&self.backend)
    }

    /// The review queue that unknown media on suspect pages enter.
    pub fn review(&self) -> ReviewQueue<'_> {
        ReviewQueue::new(&self.backend)
    }

    /// Recent matches and sightings, as the server's API lists them.
    pub fn server_views(&self) -> ServerViews<'_> {
        ServerViews::new(&self.backend)
    }

    /// The server's API clients (Shield credentials, API keys).
    pub fn api_clients(&self) -> ApiClients<'_> {
        ApiClients::new(&self.backend)
    }

    /// Hotlines, users, sessions, review items, votes, decisions, vault and audit trail.
    pub fn review_desk(&self) -> ReviewDesk<'_> {
        ReviewDesk::new(&self.backend)
    }

    /// Removal notices: items, notices, re-checks, timeline, contact health.
    pub fn notices(&self) -> NoticeStore<'_> {
        NoticeStore::new(&self.backend)
    }

    /// The hash banks' journal, when several machines share this database (PostgreSQL only;
    /// on SQLite the journal stays in files under the data directory).
    pub fn bank_journal(&self) -> Result<BankJournalRows<'_>, StoreError> {
        BankJournalRows::new(&self.backend)
    }

    /// Aggregates for the statistics pages.
    pub fn statistics(&self) -> Statistics<'_> {
        Statistics::new(&self.backend)
    }

    /// Read-only questions the crawler asks about what is recorded.
    pub fn crawl_facts(&self) -> CrawlFacts<'_> {
        CrawlFacts::new(&self.backend)
    }

    /// Row counts of every table.
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        self.backend.counts().await
    }

    /// Closes every connection; pending operations finish first.
    pub async fn close(&self) {
        self.backend.close().await
    }
}
