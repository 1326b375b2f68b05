//! The crawl frontier as rows: hosts (the unit of leasing) and URLs (the work), with the
//! fetches made. Workers claim hosts, not URLs, so one host is crawled by one worker at a
//! time and politeness needs no coordination beyond the lease.
//!
//! The lease contract: a [`Lease`] returned by [`Frontier::claim_hosts`] is valid until its
//! `until` time, and while valid no other worker can claim the host. Every write made with it
//! ([`Frontier::next_urls`], [`Frontier::complete_url`], [`Frontier::renew`],
//! [`Frontier::update_host`], [`Frontier::store_robots`]) checks owner, epoch and expiry in the
//! same transaction and fails with [`StoreError::LeaseLost`] once the lease has expired or the
//! host was claimed again (each claim bumps the host's epoch). [`Frontier::release`] is
//! accepted after expiry as long as nobody else has claimed the host.
//!
//! This module must not decide policy: delays, back-off, budgets and priorities are computed
//! by the crawler and stored as given. Canonicalisation too: URLs arrive canonical.

mod enqueue;
mod lease;
mod reported;
mod revisit;
mod settle;

use crate::UnixMillis;
use crate::backend::{Backend, Get, on_backend};
use crate::error::StoreError;
use crate::reports::ReportId;

pub use enqueue::{EnqueuedUrl, NewUrl};
pub use lease::{Completion, FetchOutcome, HostPolicy, Lease, LeasedHost, UrlNext};
pub use reported::RedirectTarget;
pub use revisit::{HostRevisit, MAX_REVISIT_ADDRESSES, revisit_reads};
pub use settle::{PageSettlement, SeenMedia, SettledLinks, SettledPage};

/// Longest canonical URL accepted, in bytes. Real pages rarely link past 2 KiB; traps do.
pub const MAX_URL_BYTES: usize = 16 * 1024;
/// Longest host key (`scheme://host:port`) accepted, in bytes.
pub const MAX_HOST_KEY_BYTES: usize = 300;
/// Longest robots.txt body kept, in bytes (Google reads the first 500 KiB).
pub const MAX_ROBOTS_BYTES: usize = 512 * 1024;

/// A host's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostId(pub(crate) i64);

/// A URL's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UrlId(pub(crate) i64);

impl HostId {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl UrlId {
    pub fn get(self) -> i64 {
        self.0
    }
    /// A URL id from its number (as printed by a tool or kept by a caller).
    pub fn from_raw(id: i64) -> UrlId {
        UrlId(id)
    }
}

/// Where a URL came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlSource {
    /// A report (from the intake API, a form, `aranea report add`).
    Report,
    /// A seed list given to the crawler.
    Seed,
    /// A scheduled re-check of a URL already known.
    Recheck,
    /// A link (`a[href]`, `iframe`) found on a page.
    Link,
    /// Media embedded in a page (`img`, `video`, `og:image`, …).
    Embed,
}

/// Priority classes, highest first; within a class, earlier `next_fetch_at` goes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Reported = 0,
    Recheck = 1,
    /// Links and media of a page that had a match.
    MatchLink = 2,
    Ordinary = 3,
}

/// Where a URL stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlState {
    /// Waiting to be fetched at or after `next_fetch_at`.
    Queued,
    Done,
    /// Given up after errors.
    Failed,
    /// Not fetched by decision (robots, budget, scope).
    Skipped,
}

macro_rules! text_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
            pub(crate) fn parse(text: &str) -> Result<$ty, StoreError> {
                match text {
                    $($text => Ok($ty::$variant),)+
                    other => Err(StoreError::Corrupt { what: $what, value: other.to_string() }),
                }
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(UrlSource, "URL source", {
    Report => "report", Seed => "seed", Recheck => "recheck", Link => "link", Embed => "embed",
});
text_enum!(UrlState, "URL state", {
    Queued => "queued", Done => "done", Failed => "failed", Skipped => "skipped",
});

impl Priority {
    fn from_i64(value: i64) -> Result<Priority, StoreError> {
        match value {
            0 => Ok(Priority::Reported),
            1 => Ok(Priority::Recheck),
            2 => Ok(Priority::MatchLink),
            3 => Ok(Priority::Ordinary),
            other => Err(StoreError::Corrupt {
                what: "priority",
                value: other.to_string(),
            }),
        }
    }
}

/// A cached robots.txt answer for a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RobotsCache {
    /// HTTP status of the robots.txt fetch, if one was answered.
    pub status: Option<u16>,
    /// The body as fetched (at most [`MAX_ROBOTS_BYTES`]; longer bodies are cut there).
    pub body: Vec<u8>,
    pub fetched_at: UnixMillis,
    pub expires_at: UnixMillis,
}

/// A host row: identity, schedule, lease, politeness state and counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub id: HostId,
    /// `scheme://host[:port]` as the crawler keys hosts.
    pub key: String,
    pub registrable_domain: String,
    /// When the host next has work that may be fetched; `None` when nothing is queued.
    /// While leased it equals the lease expiry, so a dead worker's hosts become due again.
    pub due_at: Option<UnixMillis>,
    /// Politeness: no request before this time.
    pub next_allowed_at: UnixMillis,
    pub delay_ms: i64,
    /// Crawl-delay from robots.txt, as the crawler read it.
    pub crawl_delay_ms: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<UnixMillis>,
    /// Bumped by every claim; identifies one lease of this host.
    pub lease_epoch: i64,
    pub error_streak: i64,
    /// Pages fetched in a row with nothing of interest.
    pub quiet_pages: i64,
    pub robots: Option<RobotsCache>,
    /// URLs ever enqueued for this host.
    pub urls_known: i64,
    /// Fetches recorded for this host.
    pub pages_fetched: i64,
    pub bytes_fetched: i64,
    pub created_at: UnixMillis,
}

/// A URL row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlRecord {
    pub id: UrlId,
    pub host_id: HostId,
    /// The canonical URL as enqueued.
    pub url: String,
    pub source: UrlSource,
    pub priority: Priority,
    pub depth: u32,
    pub state: UrlState,
    pub next_fetch_at: UnixMillis,
    /// Fetch attempts recorded.
    pub attempts: i64,
    pub last_status: Option<u16>,
    pub last_fetched_at: Option<UnixMillis>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub report_id: Option<ReportId>,
    pub parent_id: Option<UrlId>,
    pub created_at: UnixMillis,
}

/// One recorded fetch of a URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchRecord {
    pub url_id: UrlId,
    pub fetched_at: UnixMillis,
    /// The lease epoch of the host when fetched.
    pub lease_epoch: i64,
    pub status: Option<u16>,
    pub server_ip: Option<String>,
    pub bytes: i64,
    pub duration_ms: i64,
    pub error: Option<String>,
}

macro_rules! host_columns {
    () => {
        "id, key, registrable_domain, due_at, next_allowed_at, delay_ms, crawl_delay_ms, \
         lease_owner, lease_until, lease_epoch, error_streak, quiet_pages, robots_status, \
         robots_body, robots_fetched_at, robots_expires_at, urls_known, pages_fetched, \
         bytes_fetched, created_at"
    };
}
pub(crate) use host_columns;

macro_rules! url_columns {
    () => {
        "id, host_id, url, source, priority, depth, state, next_fetch_at, attempts, \
         last_status, last_fetched_at, etag, last_modified, report_id, parent_id, created_at"
    };
}
pub(crate) use url_columns;

fn status_from(value: Option<i64>) -> Option<u16> {
    value.and_then(|v| u16::try_from(v).ok())
}

pub(crate) fn host_from_row(row: &impl Get) -> Result<Host, StoreError> {
    let robots = match (
        row.opt_bytes("robots_body")?,
        row.opt_i64("robots_fetched_at")?,
    ) {
        (Some(body), Some(fetched_at)) => Some(RobotsCache {
            status: status_from(row.opt_i64("robots_status")?),
            body,
            fetched_at,
            expires_at: row.opt_i64("robots_expires_at")?.unwrap_or(fetched_at),
        }),
        _ => None,
    };
    Ok(Host {
        id: HostId(row.i64("id")?),
        key: row.text("key")?,
        registrable_domain: row.text("registrable_domain")?,
        due_at: row.opt_i64("due_at")?,
        next_allowed_at: row.i64("next_allowed_at")?,
        delay_ms: row.i64("delay_ms")?,
        crawl_delay_ms: row.opt_i64("crawl_delay_ms")?,
        lease_owner: row.opt_text("lease_owner")?,
        lease_until: row.opt_i64("lease_until")?,
        lease_epoch: row.i64("lease_epoch")?,
        error_streak: row.i64("error_streak")?,
        quiet_pages: row.i64("quiet_pages")?,
        robots,
        urls_known: row.i64("urls_known")?,
        pages_fetched: row.i64("pages_fetched")?,
        bytes_fetched: row.i64("bytes_fetched")?,
        created_at: row.i64("created_at")?,
    })
}

pub(crate) fn url_from_row(row: &impl Get) -> Result<UrlRecord, StoreError> {
    Ok(UrlRecord {
        id: UrlId(row.i64("id")?),
        host_id: HostId(row.i64("host_id")?),
        url: row.text("url")?,
        source: UrlSource::parse(&row.text("source")?)?,
        priority: Priority::from_i64(row.i64("priority")?)?,
        depth: u32::try_from(row.i64("depth")?).unwrap_or(u32::MAX),
        state: UrlState::parse(&row.text("state")?)?,
        next_fetch_at: row.i64("next_fetch_at")?,
        attempts: row.i64("attempts")?,
        last_status: status_from(row.opt_i64("last_status")?),
        last_fetched_at: row.opt_i64("last_fetched_at")?,
        etag: row.opt_text("etag")?,
        last_modified: row.opt_text("last_modified")?,
        report_id: row.opt_i64("report_id")?.map(ReportId),
        parent_id: row.opt_i64("parent_id")?.map(UrlId),
        created_at: row.i64("created_at")?,
    })
}

/// The frontier's operations; see the module documentation for the lease contract.
pub struct Frontier<'a> {
    backend: &'a Backend,
}

impl<'a> Frontier<'a> {
    pub(crate) fn new(backend: &'a Backend) -> Self {
        Frontier { backend }
    }

    /// The host row, if any.
    pub async fn host(&self, id: HostId) -> Result<Option<Host>, StoreError> {
        const SQL: &str = concat!("SELECT ", host_columns!(), " FROM hosts WHERE id = $1");
        on_backend!(self.backend, |pool, d| {
            match sqlx::query(SQL).bind(id.0).fetch_optional(pool).await? {
                Some(row) => host_from_row(&row).map(Some),
                None => Ok(None),
            }
        })
    }

    /// The host row by its key.
    pub async fn host_by_key(&self, key: &str) -> Result<Option<Host>, StoreError> {
        const SQL: &str = concat!("SELECT ", host_columns!(), " FROM hosts WHERE key = $1");
        crate::error::check_text("host key", key, MAX_HOST_KEY_BYTES, false)?;
        on_backend!(self.backend, |pool, d| {
            match sqlx::query(SQL).bind(key).fetch_optional(pool).await? {
                Some(row) => host_from_row(&row).map(Some),
                None => Ok(None),
            }
        })
    }

    /// The URL row.
    pub async fn url(&self, id: UrlId) -> Result<Option<UrlRecord>, StoreError> {
        const SQL: &str = concat!("SELECT ", url_columns!(), " FROM urls WHERE id = $1");
        on_backend!(self.backend, |pool, d| {
            match sqlx::query(SQL).bind(id.0).fetch_optional(pool).await? {
                Some(row) => url_from_row(&row).map(Some),
                None => Ok(None),
            }
        })
    }

    /// The id of a canonical URL already known, found by its SHA-256.
    pub async fn url_id(&self, canonical_url: &str) -> Result<Option<UrlId>, StoreError> {
        crate::error::check_text("URL", canonical_url, MAX_URL_BYTES, false)?;
        let hash = enqueue::url_hash(canonical_url);
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query("SELECT id FROM urls WHERE url_hash = $1")
                .bind(&hash[..])
                .fetch_optional(pool)
                .await?;
            match row {
                Some(row) => Ok(Some(UrlId(row.i64("id")?))),
                None => Ok(None),
            }
        })
    }

    /// Every recorded fetch of a URL, oldest first.
    pub async fn fetches(&self, url: UrlId) -> Result<Vec<FetchRecord>, StoreError> {
        const SQL: &str = "SELECT url_id, fetched_at, lease_epoch, status, server_ip, bytes, \
            duration_ms, error FROM fetches WHERE url_id = $1 ORDER BY fetched_at, id";
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(SQL).bind(url.0).fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    Ok(FetchRecord {
                        url_id: UrlId(row.i64("url_id")?),
                        fetched_at: row.i64("fetched_at")?,
                        lease_epoch: row.i64("lease_epoch")?,
                        status: status_from(row.opt_i64("status")?),
                        server_ip: row.opt_text("server_ip")?,
                        bytes: row.i64("bytes")?,
                        duration_ms: row.i64("duration_ms")?,
                        error: row.opt_text("error")?,
                    })
                })
                .collect()
        })
    }

    /// Fetches recorded for all hosts of one registrable domain (for per-domain budgets).
    pub async fn domain_pages_fetched(&self, registrable_domain: &str) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COALESCE(SUM(pages_fetched), 0) AS n FROM hosts \
            WHERE registrable_domain = $1";
        crate::error::check_text(
            "registrable domain",
            registrable_domain,
            MAX_HOST_KEY_BYTES,
            true,
        )?;
        on_backend!(self.backend, |pool, d| {
            // SUM over BIGINT is NUMERIC on PostgreSQL; the cast keeps one Rust type.
            let sql = d.pick(
                SQL,
                "SELECT CAST(COALESCE(SUM(pages_fetched), 0) AS BIGINT) AS n \
                FROM hosts WHERE registrable_domain = $1",
            );
            Ok(sqlx::query(sql)
                .bind(registrable_domain)
                .fetch_one(pool)
                .await?
                .i64("n")?)
        })
    }

    /// URLs of a host whose canonical URL starts with `prefix` (for per-path budgets
    /// against traps). Scans the host's URLs, so callers should cache the answer.
    pub async fn urls_under(&self, host: HostId, prefix: &str) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) AS n FROM urls WHERE host_id = $1 \
            AND substr(url, 1, CAST($2 AS INTEGER)) = $3";
        crate::error::check_text("URL prefix", prefix, MAX_URL_BYTES, true)?;
        let chars = i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX);
        on_backend!(self.backend, |pool, d| {
            Ok(sqlx::query(SQL)
                .bind(host.0)
                .bind(chars)
                .bind(prefix)
                .fetch_one(pool)
                .await?
                .i64("n")?)
        })
    }
}
