//! Leasing hosts to workers and recording what they did under the lease.
//!
//! PostgreSQL: `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)`, so concurrent
//! claimers pass each other by instead of queueing. SQLite: the same statement inside
//! `BEGIN IMMEDIATE`, which serialises writers on the file lock.

use super::enqueue::push_tuples;
use super::{
    Host, HostId, MAX_ROBOTS_BYTES, RobotsCache, UrlId, UrlRecord, UrlState, host_columns,
    host_from_row, url_columns, url_from_row,
};
use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::{StoreError, check_range, check_text};

/// Longest worker name accepted, in bytes.
pub const MAX_WORKER_BYTES: usize = 200;
/// Longest lease accepted: a day. Longer would strand a dead worker's hosts.
pub const MAX_LEASE_MS: i64 = 24 * 3600 * 1000;
/// Most hosts or URLs handed out by one call.
pub const MAX_BATCH: u32 = 10_000;
/// Longest error text kept; longer text is cut at a character boundary.
const MAX_ERROR_BYTES: usize = 2000;
/// Longest validator (ETag, Last-Modified) kept; longer ones are dropped as useless.
const MAX_VALIDATOR_BYTES: usize = 1024;

/// A worker's claim on one host, valid until [`Lease::until`]; see the module contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub(super) host_id: HostId,
    pub(super) owner: String,
    pub(super) epoch: i64,
    until: UnixMillis,
}

impl Lease {
    pub fn host_id(&self) -> HostId {
        self.host_id
    }
    pub fn owner(&self) -> &str {
        &self.owner
    }
    /// The host's claim counter when this lease was granted.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }
    /// The lease is void from this time on unless renewed before.
    pub fn until(&self) -> UnixMillis {
        self.until
    }
    pub(super) fn lost(&self) -> StoreError {
        StoreError::LeaseLost {
            host_id: self.host_id.0,
            owner: self.owner.clone(),
        }
    }
}

/// A host just claimed, with its state as of the claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeasedHost {
    pub lease: Lease,
    pub host: Host,
}

/// What the URL becomes after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlNext {
    Done,
    Failed,
    Skipped,
    /// Skipped by a rule a reported URL is exempt from (budgets, depth, a quiet site,
    /// robots.txt when reports ignore it), judged from the URL as it was handed out. If the
    /// URL is a reported one when the completion is written (it was reported while in
    /// flight), it is queued again now at [`super::Priority::Reported`] instead, and its
    /// reports wait for that fetch; else it is [`UrlNext::Skipped`]. Decided in the
    /// completion's own statement, under the URL's row lock, so a report committed before it
    /// is seen and one committed after it requeues the skipped URL itself.
    SkippedUnlessReported,
    /// Queued again, not before this time (a retry after an error, or a re-check).
    RetryAt(UnixMillis),
}

/// The outcome of one attempt at a URL, as the crawler saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchOutcome {
    /// True if a request was made; a fetch row is recorded only then.
    pub fetched: bool,
    pub status: Option<u16>,
    pub server_ip: Option<String>,
    pub bytes: u64,
    pub duration_ms: u64,
    /// Why the fetch failed; cut to 2000 bytes, NUL bytes replaced.
    pub error: Option<String>,
    /// Validators for conditional re-fetches; dropped if over 1 KiB or holding NUL.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub next: UrlNext,
}

impl FetchOutcome {
    /// A fetch answered with `status`, after which the URL is `next`.
    pub fn fetched(status: u16, bytes: u64, next: UrlNext) -> FetchOutcome {
        FetchOutcome {
            fetched: true,
            status: Some(status),
            server_ip: None,
            bytes,
            duration_ms: 0,
            error: None,
            etag: None,
            last_modified: None,
            next,
        }
    }

    /// A fetch that failed without an HTTP answer (DNS, refused, timeout, limit).
    pub fn failed(error: &str, next: UrlNext) -> FetchOutcome {
        FetchOutcome {
            error: Some(error.to_string()),
            status: None,
            ..FetchOutcome::fetched(0, 0, next)
        }
    }

    /// No request made (robots, budget, scope): the URL just changes state.
    pub fn not_fetched(next: UrlNext) -> FetchOutcome {
        FetchOutcome {
            fetched: false,
            status: None,
            ..FetchOutcome::fetched(0, 0, next)
        }
    }
}

/// Whether [`super::Frontier::complete_url`] wrote anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    Recorded,
    /// Recorded, but not as the skip asked for: the URL, skipped by a rule reported URLs are
    /// exempt from ([`UrlNext::SkippedUnlessReported`]), was reported meanwhile and is queued
    /// again at the reported priority (so the crawler counts it when it is fetched, not as
    /// skipped).
    QueuedForReport,
    /// The URL was not in flight under this lease (already completed): nothing written.
    AlreadyRecorded,
}

/// Per-host politeness state the crawler computed; stored as given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HostPolicy {
    pub delay_ms: i64,
    pub crawl_delay_ms: Option<i64>,
    pub error_streak: i64,
    pub quiet_pages: i64,
}

const CLAIM_SQLITE: &str = concat!(
    "UPDATE hosts SET lease_owner = $1, lease_until = $2, due_at = $2, \
     lease_epoch = lease_epoch + 1 \
     WHERE id IN (SELECT id FROM hosts WHERE due_at <= $3 \
       AND (lease_owner IS NULL OR lease_until <= $3) ORDER BY due_at, id LIMIT $4) \
     RETURNING ",
    host_columns!()
);
const CLAIM_POSTGRES: &str = concat!(
    "UPDATE hosts SET lease_owner = $1, lease_until = $2, due_at = $2, \
     lease_epoch = lease_epoch + 1 \
     WHERE id IN (SELECT id FROM hosts WHERE due_at <= $3 \
       AND (lease_owner IS NULL OR lease_until <= $3) ORDER BY due_at, id LIMIT $4 \
       FOR UPDATE SKIP LOCKED) \
     RETURNING ",
    host_columns!()
);
pub(super) const HOLD_SQLITE: &str = "SELECT id FROM hosts WHERE id = $1 AND lease_owner = $2 \
    AND lease_epoch = $3 AND lease_until > $4";
// FOR NO KEY UPDATE: a claimer's FOR UPDATE SKIP LOCKED then passes this host by until we
// commit, and a release or renewal waits, as under FOR UPDATE; but other writers' URL
// inserts on the host (whose foreign keys take FOR KEY SHARE) are not held up, and it is
// the one lock every writer of host rows takes (see `super::enqueue::HostLocks`), so no
// transaction upgrades a lock it holds.
pub(super) const HOLD_POSTGRES: &str = "SELECT id FROM hosts WHERE id = $1 AND lease_owner = $2 \
    AND lease_epoch = $3 AND lease_until > $4 FOR NO KEY UPDATE";
// The host's queued URLs in the order they are handed out, read from the index in that order
// (its rowid, `id`, ends each entry), stopping at `$4` due ones. SQLite's planner, without
// statistics, took `urls_queued_by_time` for `next_fetch_at <= $3` instead, then read every
// due URL of the host and sorted them: ~100 µs against ~17 at 1M queued URLs and 100 per
// host (docs/store.md), and in proportion to the host's size, a big site's millions.
macro_rules! next_urls {
    ($indexed_by:literal) => {
        concat!(
            "UPDATE urls SET leased_epoch = $2 WHERE id IN (SELECT id FROM urls ",
            $indexed_by,
            "WHERE host_id = $1 \
               AND state = 'queued' AND next_fetch_at <= $3 \
               AND (leased_epoch IS NULL OR leased_epoch <> $2) \
               ORDER BY priority, next_fetch_at, id LIMIT $4) \
             RETURNING ",
            url_columns!()
        )
    };
}
const NEXT_URLS_SQLITE: &str = next_urls!("INDEXED BY urls_queued_by_priority ");
const NEXT_URLS_POSTGRES: &str = next_urls!("");
const RENEW: &str = "UPDATE hosts SET lease_until = $5, due_at = $5 WHERE id = $1 \
    AND lease_owner = $2 AND lease_epoch = $3 AND lease_until > $4 RETURNING id";
const RELEASE: &str = "UPDATE hosts SET lease_owner = NULL, lease_until = NULL, \
    next_allowed_at = $4, \
    due_at = (SELECT CASE WHEN MIN(u.next_fetch_at) IS NULL THEN NULL \
                          WHEN MIN(u.next_fetch_at) < CAST($4 AS BIGINT) THEN CAST($4 AS BIGINT) \
                          ELSE MIN(u.next_fetch_at) END \
              FROM urls u WHERE u.host_id = $1 AND u.state = 'queued') \
    WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3 RETURNING id";
const UPDATE_POLICY: &str = "UPDATE hosts SET delay_ms = $5, crawl_delay_ms = $6, \
    error_streak = $7, quiet_pages = $8 WHERE id = $1 AND lease_owner = $2 \
    AND lease_epoch = $3 AND lease_until > $4 RETURNING id";
const STORE_ROBOTS: &str = "UPDATE hosts SET robots_status = $5, robots_body = $6, \
    robots_fetched_at = $7, robots_expires_at = $8 WHERE id = $1 AND lease_owner = $2 \
    AND lease_epoch = $3 AND lease_until > $4 RETURNING id";

/// One URL's completion, checked and converted for binding.
pub(super) struct CompletionRow {
    pub(super) url: UrlId,
    pub(super) state: UrlState,
    pub(super) next_fetch_at: UnixMillis,
    /// 1 for [`UrlNext::SkippedUnlessReported`]: queued instead if the URL is reported now.
    pub(super) unless_reported: i64,
    /// False for a redirect followed for its reports ([`super::Frontier::complete_redirect`]),
    /// which settles them itself: the redirect's answer is not theirs.
    pub(super) settles_reports: bool,
    pub(super) fetched: i64,
    pub(super) status: Option<i64>,
    pub(super) etag: Option<String>,
    pub(super) last_modified: Option<String>,
    pub(super) error: Option<String>,
    /// Why the URL's reports are rejected if this completion settles it failed or skipped.
    pub(super) reason: String,
    pub(super) server_ip: Option<String>,
    pub(super) bytes: i64,
    pub(super) duration: i64,
}

impl CompletionRow {
    pub(super) fn new(url: UrlId, outcome: &FetchOutcome, now: UnixMillis) -> CompletionRow {
        let (state, next_fetch_at) = match outcome.next {
            UrlNext::Done => (UrlState::Done, now),
            UrlNext::Failed => (UrlState::Failed, now),
            UrlNext::Skipped | UrlNext::SkippedUnlessReported => (UrlState::Skipped, now),
            UrlNext::RetryAt(at) => (UrlState::Queued, at),
        };
        CompletionRow {
            url,
            state,
            next_fetch_at,
            unless_reported: i64::from(outcome.next == UrlNext::SkippedUnlessReported),
            settles_reports: true,
            fetched: i64::from(outcome.fetched),
            status: outcome.status.map(i64::from),
            etag: validator(&outcome.etag).map(str::to_owned),
            last_modified: validator(&outcome.last_modified).map(str::to_owned),
            error: outcome
                .error
                .as_deref()
                .map(|e| sanitise(e, MAX_ERROR_BYTES)),
            reason: reason_of(outcome, state),
            server_ip: outcome.server_ip.as_deref().map(|ip| sanitise(ip, 64)),
            bytes: i64::try_from(outcome.bytes).unwrap_or(i64::MAX),
            duration: i64::try_from(outcome.duration_ms).unwrap_or(i64::MAX),
        }
    }
}

/// What a rejected report says of the completion that settled its URL: the error or skip
/// reason given, else the status answered, else the state.
fn reason_of(outcome: &FetchOutcome, state: UrlState) -> String {
    let reason = match (&outcome.error, outcome.status) {
        (Some(error), _) => format!("{}: {error}", state.as_str()),
        (None, Some(status)) => format!("{}: HTTP {status}", state.as_str()),
        (None, None) => state.as_str().to_owned(),
    };
    sanitise(&reason, MAX_ERROR_BYTES)
}

/// Replaces NUL bytes, then cuts to at most `max` bytes at a character boundary.
fn sanitise(text: &str, max: usize) -> String {
    let clean = text.replace('\0', "\u{fffd}");
    let mut end = clean.len().min(max);
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    clean.get(..end).unwrap_or("").to_string()
}

fn validator(value: &Option<String>) -> Option<&str> {
    value
        .as_deref()
        .filter(|v| v.len() <= MAX_VALIDATOR_BYTES && !v.contains('\0'))
}

/// Inside a write transaction: locks the host row if `lease` is still live, else returns
/// [`StoreError::LeaseLost`] from the enclosing function.
macro_rules! hold_lease {
    ($tx:ident, $d:ident, $lease:expr, $now:expr) => {
        let held = sqlx::query($d.pick(
            $crate::frontier::lease::HOLD_SQLITE,
            $crate::frontier::lease::HOLD_POSTGRES,
        ))
        .bind($lease.host_id.0)
        .bind(&$lease.owner)
        .bind($lease.epoch)
        .bind($now)
        .fetch_optional(&mut *$tx)
        .await?;
        if held.is_none() {
            return Err($lease.lost());
        }
    };
}

/// Which of `rows` leases (host, owner, epoch, from `$2`) are still live at `$1`: their
/// hosts, owners and epochs. With `lock` (PostgreSQL) their rows are locked as
/// [`HOLD_POSTGRES`] locks one, in key order (the one order of host locks, see
/// `super::enqueue::HostLocks`), until the transaction ends.
pub(super) fn hold_leases_sql(rows: usize, lock: bool) -> String {
    const TYPES: [&str; 3] = ["BIGINT", "TEXT", "BIGINT"];
    // `$1` in a CTE of its own, ahead of the rows, so that the placeholders appear in the
    // order they are bound (see `crate::backend::native_sql`).
    let mut sql = String::from(
        "WITH p(now) AS (VALUES (CAST($1 AS BIGINT))), v(id, owner, epoch) AS (VALUES ",
    );
    push_tuples(&mut sql, rows, TYPES.len(), 2, &TYPES);
    sql.push_str(
        ") SELECT hosts.id, hosts.lease_owner, hosts.lease_epoch FROM hosts \
         JOIN v ON hosts.id = v.id AND hosts.lease_owner = v.owner AND hosts.lease_epoch = v.epoch \
         JOIN p ON hosts.lease_until > p.now ORDER BY hosts.key",
    );
    if lock {
        sql.push_str(" FOR NO KEY UPDATE OF hosts");
    }
    sql
}

/// [`hold_lease!`] for many leases at once, one statement per
/// [`super::enqueue::ROWS_PER_STATEMENT`] leases: evaluates to the set of those still live,
/// as `(host id, owner, epoch)`, their rows locked on PostgreSQL until the transaction ends.
/// With a fifth argument `false`, only looked at (locked nowhere).
macro_rules! hold_leases {
    ($tx:ident, $d:ident, $leases:expr, $now:expr) => {
        $crate::frontier::lease::hold_leases!(
            $tx,
            $d,
            $leases,
            $now,
            $d == $crate::backend::Dialect::Postgres
        )
    };
    ($tx:ident, $d:ident, $leases:expr, $now:expr, $lock:expr) => {{
        let leases: &[&$crate::frontier::Lease] = $leases;
        let lock: bool = $lock;
        let mut held: std::collections::HashSet<(i64, String, i64)> =
            std::collections::HashSet::new();
        for chunk in leases.chunks($crate::frontier::enqueue::ROWS_PER_STATEMENT) {
            let sql = $crate::frontier::lease::hold_leases_sql(chunk.len(), lock);
            let mut query =
                sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(&*$tx, sql)))
                    .bind($now);
            for lease in chunk {
                query = query
                    .bind(lease.host_id.0)
                    .bind(&lease.owner)
                    .bind(lease.epoch);
            }
            for row in query.fetch_all(&mut *$tx).await? {
                held.insert((
                    row.i64("id")?,
                    row.text("lease_owner")?,
                    row.i64("lease_epoch")?,
                ));
            }
        }
        held
    }};
}

/// The fetch rows of `rows` completions at once.
pub(super) fn insert_fetches_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO fetches (url_id, fetched_at, lease_epoch, status, server_ip, bytes, \
         duration_ms, error) VALUES ",
    );
    push_tuples(&mut sql, rows, 8, 1, &[]);
    sql
}

/// Records that `rows` hosts were fetched from an address (per row address, host, time):
/// a new pair is inserted, a known one's last time moves only once it is an hour old, so a
/// busy host's row is not rewritten at every batch (`host_addresses`, migration 14).
pub(super) fn record_host_addresses_sql(rows: usize) -> String {
    let mut sql = String::from("WITH v(server_ip, host_id, at) AS (VALUES ");
    push_tuples(&mut sql, rows, 3, 1, &["TEXT", "BIGINT", "BIGINT"]);
    // `WHERE` before `ON CONFLICT`: SQLite's parser needs one after an `INSERT … SELECT`.
    sql.push_str(&format!(
        ") INSERT INTO host_addresses (server_ip, host_id, first_seen_at, last_seen_at) \
         SELECT v.server_ip, v.host_id, v.at, v.at FROM v WHERE true \
         ON CONFLICT (server_ip, host_id) DO UPDATE SET last_seen_at = excluded.last_seen_at \
         WHERE host_addresses.last_seen_at <= excluded.last_seen_at - {ADDRESS_SEEN_EVERY_MS}"
    ));
    sql
}

/// How stale a host address's last time may get before a fetch moves it.
pub(super) const ADDRESS_SEEN_EVERY_MS: i64 = 3_600_000;

/// A URL's completion for `rows` URLs of any leases at once: `$1` now, then per row host,
/// lease epoch, id, state, next fetch time, unless reported (0/1), fetched (0/1), status,
/// ETag, Last-Modified. Returns the ids updated, with the state written.
///
/// A row "unless reported" ([`UrlNext::SkippedUnlessReported`]) of a URL whose row says it
/// is reported now (source `report` or `seed`, as the crawler judges it) queues the URL
/// again, due now at the reported priority, instead of skipping it.
pub(super) fn complete_leased_urls_sql(rows: usize) -> String {
    const TYPES: [&str; 10] = [
        "BIGINT", "BIGINT", "BIGINT", "TEXT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "TEXT",
        "TEXT",
    ];
    // The time in a CTE of its own, ahead of the rows, so that the placeholders appear in
    // the order they are bound (see `crate::backend::native_sql`).
    let mut sql = String::from(
        "WITH p(now) AS (VALUES (CAST($1 AS BIGINT))), \
         v(host_id, epoch, id, state, next_fetch_at, unless_reported, fetched, status, etag, \
         last_modified) AS (VALUES ",
    );
    push_tuples(&mut sql, rows, TYPES.len(), 2, &TYPES);
    sql.push_str(
        ") UPDATE urls SET \
         state = CASE WHEN v.unless_reported = 1 AND urls.source IN ('report', 'seed') \
           THEN 'queued' ELSE v.state END, \
         next_fetch_at = CASE WHEN v.unless_reported = 1 AND urls.source IN ('report', 'seed') \
           THEN p.now ELSE v.next_fetch_at END, \
         priority = CASE WHEN v.unless_reported = 1 AND urls.source IN ('report', 'seed') \
           THEN 0 ELSE urls.priority END, \
         leased_epoch = NULL, attempts = urls.attempts + v.fetched, \
         last_status = CASE WHEN v.fetched = 1 THEN v.status ELSE urls.last_status END, \
         last_fetched_at = CASE WHEN v.fetched = 1 THEN p.now ELSE urls.last_fetched_at END, \
         etag = COALESCE(v.etag, urls.etag), \
         last_modified = COALESCE(v.last_modified, urls.last_modified) \
         FROM v, p WHERE urls.id = v.id AND urls.host_id = v.host_id \
         AND urls.leased_epoch = v.epoch RETURNING urls.id, urls.state, urls.report_id",
    );
    sql
}

/// Settles the reports still `queued` that are linked to any of `rows` URLs (`report_urls`)
/// from their URL's state: `crawled` once it is done, `rejected` once it failed or was
/// skipped, with the reason given per row; a URL queued again (a retry) settles nothing.
/// Per row: URL id, reason.
pub(super) fn settle_reports_sql(rows: usize) -> String {
    let mut sql = String::from("WITH v(url_id, reason) AS (VALUES ");
    push_tuples(&mut sql, rows, 2, 1, &["BIGINT", "TEXT"]);
    sql.push_str(
        ") UPDATE reports SET status = CASE WHEN u.state = 'done' THEN 'crawled' \
         ELSE 'rejected' END, \
         reason = CASE WHEN u.state = 'done' THEN NULL ELSE v.reason END \
         FROM report_urls ru JOIN urls u ON u.id = ru.url_id JOIN v ON v.url_id = ru.url_id \
         WHERE ru.report_id = reports.id AND reports.status = 'queued' \
         AND u.state IN ('done', 'failed', 'skipped')",
    );
    sql
}

/// The fetch counters of `rows` hosts at once: per row host, bytes, fetches.
pub(super) fn count_fetches_sql(rows: usize) -> String {
    const TYPES: [&str; 3] = ["BIGINT", "BIGINT", "BIGINT"];
    let mut sql = String::from("WITH v(id, bytes, fetched) AS (VALUES ");
    push_tuples(&mut sql, rows, TYPES.len(), 1, &TYPES);
    sql.push_str(
        ") UPDATE hosts SET pages_fetched = hosts.pages_fetched + v.fetched, \
         bytes_fetched = hosts.bytes_fetched + v.bytes FROM v WHERE hosts.id = v.id",
    );
    sql
}

/// The host of each of `rows` URL ids (those that exist).
pub(super) fn url_hosts_sql(rows: usize) -> String {
    let mut sql = String::from("SELECT id, host_id FROM urls WHERE id IN ");
    push_tuples(&mut sql, 1, rows, 1, &[]);
    sql
}

/// Records the completions of many pages inside the open transaction `$tx`, each
/// `(lease, rows)` with its lease checked ([`hold_lease!`], [`hold_leases!`]); evaluates to
/// one `Vec<Completion>` per page. The URLs are updated and their fetches inserted in
/// multi-row statements of any leases (on SQLite each statement is a round trip to the
/// connection's thread), as if the pages were completed one after the other: a URL listed
/// again (by the same page or a later one) is recorded by its first row, and a row that
/// updated nothing is explained by a look at its URL. A row that would fail its page (its
/// URL unknown, or of another host) fails the whole call.
macro_rules! complete_leased_in {
    ($tx:ident, $pages:expr, $now:expr) => {{
        use $crate::frontier::Completion;
        use $crate::frontier::enqueue::ROWS_PER_STATEMENT;
        use $crate::frontier::lease::CompletionRow;
        let pages: &[(&$crate::frontier::Lease, &[CompletionRow])] = $pages;
        let now: $crate::UnixMillis = $now;
        let mut first: std::collections::HashSet<i64> = std::collections::HashSet::new();
        let unique: Vec<(&$crate::frontier::Lease, &CompletionRow)> = pages
            .iter()
            .flat_map(|(lease, rows)| rows.iter().map(move |row| (*lease, row)))
            .filter(|(_, row)| first.insert(row.url.0))
            .collect();
        let mut updated: std::collections::HashMap<i64, Completion> =
            std::collections::HashMap::new();
        let mut settled_reported: Vec<(i64, &str)> = Vec::new();
        let rows_by_url: std::collections::HashMap<i64, &CompletionRow> =
            unique.iter().map(|(_, row)| (row.url.0, *row)).collect();
        for chunk in unique.chunks(ROWS_PER_STATEMENT) {
            let sql = $crate::frontier::lease::complete_leased_urls_sql(chunk.len());
            let mut query =
                sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(&*$tx, sql))).bind(now);
            for (lease, row) in chunk {
                query = query
                    .bind(lease.host_id.0)
                    .bind(lease.epoch)
                    .bind(row.url.0)
                    .bind(row.state.as_str())
                    .bind(row.next_fetch_at)
                    .bind(row.unless_reported)
                    .bind(row.fetched)
                    .bind(row.status)
                    .bind(row.etag.as_deref())
                    .bind(row.last_modified.as_deref());
            }
            for done in query.fetch_all(&mut *$tx).await? {
                let id = done.i64("id")?;
                let queued = done.text("state")? == "queued";
                let row = rows_by_url.get(&id);
                let requeued = queued && row.is_some_and(|row| row.unless_reported == 1);
                updated.insert(
                    id,
                    if requeued {
                        Completion::QueuedForReport
                    } else {
                        Completion::Recorded
                    },
                );
                // Only a URL a report led to can have reports to settle (see
                // migrations/*/0007_reports.sql).
                if let Some(row) = row.filter(|row| row.settles_reports)
                    && done.opt_i64("report_id")?.is_some()
                    && !queued
                {
                    settled_reported.push((id, row.reason.as_str()));
                }
            }
        }
        for chunk in settled_reported.chunks(ROWS_PER_STATEMENT) {
            let sql = $crate::frontier::lease::settle_reports_sql(chunk.len());
            let mut query =
                sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(&*$tx, sql)));
            for (url, reason) in chunk {
                query = query.bind(*url).bind(*reason);
            }
            query.execute(&mut *$tx).await?;
        }
        let mut done: Vec<Vec<Option<Completion>>> = Vec::with_capacity(pages.len());
        let mut fetches: Vec<(&$crate::frontier::Lease, &CompletionRow)> = Vec::new();
        let mut unexplained: std::collections::BTreeSet<i64> = std::collections::BTreeSet::new();
        for (lease, rows) in pages {
            let mut page = Vec::with_capacity(rows.len());
            for row in *rows {
                // `remove`: a URL listed again after its first row is already recorded.
                if let Some(completion) = updated.remove(&row.url.0) {
                    if row.fetched == 1 {
                        fetches.push((*lease, row));
                    }
                    page.push(Some(completion));
                } else {
                    unexplained.insert(row.url.0);
                    page.push(None);
                }
            }
            done.push(page);
        }
        let unexplained: Vec<i64> = unexplained.into_iter().collect();
        let mut owners: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
        for chunk in unexplained.chunks(ROWS_PER_STATEMENT) {
            let sql = $crate::frontier::lease::url_hosts_sql(chunk.len());
            let mut query =
                sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(&*$tx, sql)));
            for url in chunk {
                query = query.bind(*url);
            }
            for row in query.fetch_all(&mut *$tx).await? {
                owners.insert(row.i64("id")?, row.i64("host_id")?);
            }
        }
        let mut completions: Vec<Vec<Completion>> = Vec::with_capacity(pages.len());
        for ((lease, rows), page) in pages.iter().zip(done) {
            let mut resolved = Vec::with_capacity(page.len());
            for (row, slot) in rows.iter().zip(page) {
                let completion = match (slot, owners.get(&row.url.0)) {
                    (Some(recorded), _) => recorded,
                    (None, None) => {
                        return Err($crate::StoreError::NotFound {
                            what: "URL",
                            id: row.url.0.to_string(),
                        });
                    }
                    (None, Some(owner)) if *owner != lease.host_id.0 => {
                        return Err($crate::StoreError::UrlNotInLease {
                            url_id: row.url.0,
                            host_id: lease.host_id.0,
                        });
                    }
                    (None, Some(_)) => Completion::AlreadyRecorded,
                };
                resolved.push(completion);
            }
            completions.push(resolved);
        }
        // Each host's counters once for the whole batch.
        let mut counts: std::collections::BTreeMap<i64, (i64, i64)> =
            std::collections::BTreeMap::new();
        for chunk in fetches.chunks(ROWS_PER_STATEMENT) {
            let sql = $crate::frontier::lease::insert_fetches_sql(chunk.len());
            let mut query =
                sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(&*$tx, sql)));
            for (lease, row) in chunk {
                query = query
                    .bind(row.url.0)
                    .bind(now)
                    .bind(lease.epoch)
                    .bind(row.status)
                    .bind(row.server_ip.as_deref())
                    .bind(row.bytes)
                    .bind(row.duration)
                    .bind(row.error.as_deref());
                let count = counts.entry(lease.host_id.0).or_insert((0, 0));
                count.0 = count.0.saturating_add(row.bytes);
                count.1 += 1;
            }
            query.execute(&mut *$tx).await?;
        }
        // Each (address, host) once per batch, in key order (the order every writer takes).
        let addresses: std::collections::BTreeSet<(&str, i64)> = fetches
            .iter()
            .filter_map(|(lease, row)| Some((row.server_ip.as_deref()?, lease.host_id.0)))
            .collect();
        let addresses: Vec<(&str, i64)> = addresses.into_iter().collect();
        for chunk in addresses.chunks(ROWS_PER_STATEMENT) {
            let sql = $crate::frontier::lease::record_host_addresses_sql(chunk.len());
            let mut query =
                sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(&*$tx, sql)));
            for (address, host) in chunk {
                query = query.bind(*address).bind(*host).bind(now);
            }
            query.execute(&mut *$tx).await?;
        }
        let counts: Vec<(i64, (i64, i64))> = counts.into_iter().collect();
        for chunk in counts.chunks(ROWS_PER_STATEMENT) {
            let sql = $crate::frontier::lease::count_fetches_sql(chunk.len());
            let mut query =
                sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(&*$tx, sql)));
            for (host, (bytes, fetched)) in chunk {
                query = query.bind(*host).bind(*bytes).bind(*fetched);
            }
            query.execute(&mut *$tx).await?;
        }
        completions
    }};
}

/// Records the completions `$rows` under `$lease` inside the open transaction `$tx`, whose
/// lease was checked with [`hold_lease!`]; evaluates to one [`Completion`] per row: the
/// one-lease case of [`complete_leased_in!`].
macro_rules! complete_in {
    ($tx:ident, $lease:expr, $rows:expr, $now:expr) => {{
        let lease: &$crate::frontier::Lease = $lease;
        let rows: &[$crate::frontier::lease::CompletionRow] = $rows;
        $crate::frontier::lease::complete_leased_in!($tx, &[(lease, rows)], $now)
            .pop()
            .unwrap_or_default()
    }};
}
pub(super) use complete_in;
pub(super) use complete_leased_in;
pub(super) use hold_lease;
pub(super) use hold_leases;

impl super::Frontier<'_> {
    /// Leases up to `n` due hosts (due time ≤ `now`, lease free or expired) to `worker` for
    /// `lease_for_ms`, earliest due first. Hosts leased by a live lease are never returned.
    pub async fn claim_hosts(
        &self,
        worker: &str,
        n: u32,
        lease_for_ms: i64,
        now: UnixMillis,
    ) -> Result<Vec<LeasedHost>, StoreError> {
        check_text("worker", worker, MAX_WORKER_BYTES, false)?;
        check_range("lease duration", lease_for_ms, 1, MAX_LEASE_MS)?;
        check_range("batch size", i64::from(n), 1, i64::from(MAX_BATCH))?;
        let until = now.saturating_add(lease_for_ms);
        let mut hosts = on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let rows = sqlx::query(d.pick(CLAIM_SQLITE, CLAIM_POSTGRES))
                .bind(worker)
                .bind(until)
                .bind(now)
                .bind(i64::from(n))
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            rows.iter()
                .map(host_from_row)
                .collect::<Result<Vec<_>, _>>()?
        });
        hosts.sort_by_key(|h| h.id);
        Ok(hosts
            .into_iter()
            .map(|host| LeasedHost {
                lease: Lease {
                    host_id: host.id,
                    owner: worker.to_string(),
                    epoch: host.lease_epoch,
                    until,
                },
                host,
            })
            .collect())
    }

    /// Extends a live lease to `now + lease_for_ms`.
    pub async fn renew(
        &self,
        lease: &Lease,
        lease_for_ms: i64,
        now: UnixMillis,
    ) -> Result<Lease, StoreError> {
        check_range("lease duration", lease_for_ms, 1, MAX_LEASE_MS)?;
        let until = now.saturating_add(lease_for_ms);
        let renewed = on_backend!(self.backend, |pool, d| {
            sqlx::query(RENEW)
                .bind(lease.host_id.0)
                .bind(&lease.owner)
                .bind(lease.epoch)
                .bind(now)
                .bind(until)
                .fetch_optional(pool)
                .await?
                .is_some()
        });
        if !renewed {
            return Err(lease.lost());
        }
        Ok(Lease {
            until,
            ..lease.clone()
        })
    }

    /// Gives the host back: no request before `next_allowed_at`; it is due again then, or
    /// when its earliest queued URL is, or never if none is queued. Accepted after expiry
    /// unless another worker has claimed the host since.
    pub async fn release(
        &self,
        lease: &Lease,
        next_allowed_at: UnixMillis,
    ) -> Result<(), StoreError> {
        let released = on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let row = sqlx::query(RELEASE)
                .bind(lease.host_id.0)
                .bind(&lease.owner)
                .bind(lease.epoch)
                .bind(next_allowed_at)
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            row.is_some()
        });
        if released { Ok(()) } else { Err(lease.lost()) }
    }

    /// Hands out up to `n` queued URLs of the leased host that are due at `now`, highest
    /// priority first. A URL handed out is not handed out again under the same lease
    /// until completed; under a later lease (after expiry) it is.
    pub async fn next_urls(
        &self,
        lease: &Lease,
        n: u32,
        now: UnixMillis,
    ) -> Result<Vec<UrlRecord>, StoreError> {
        check_range("batch size", i64::from(n), 1, i64::from(MAX_BATCH))?;
        let mut urls = on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            hold_lease!(tx, d, lease, now);
            let rows = sqlx::query(d.pick(NEXT_URLS_SQLITE, NEXT_URLS_POSTGRES))
                .bind(lease.host_id.0)
                .bind(lease.epoch)
                .bind(now)
                .bind(i64::from(n))
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            rows.iter()
                .map(url_from_row)
                .collect::<Result<Vec<_>, _>>()?
        });
        urls.sort_by_key(|u| (u.priority, u.next_fetch_at, u.id));
        Ok(urls)
    }

    /// Records the outcome of an attempt at a URL handed out under `lease` and moves the URL
    /// to its next state, atomically. Repeating the call is harmless
    /// ([`Completion::AlreadyRecorded`]); a lost lease writes nothing and fails.
    pub async fn complete_url(
        &self,
        lease: &Lease,
        url: UrlId,
        outcome: &FetchOutcome,
        now: UnixMillis,
    ) -> Result<Completion, StoreError> {
        let done = self.complete_urls(lease, &[(url, outcome)], now).await?;
        Ok(done
            .into_iter()
            .next()
            .unwrap_or(Completion::AlreadyRecorded))
    }

    /// [`Frontier::complete_url`] for several URLs of one lease in one write transaction (a
    /// page and the media that waited for its verdict): all recorded, or none. Returns one
    /// [`Completion`] per input, in order.
    pub async fn complete_urls(
        &self,
        lease: &Lease,
        urls: &[(UrlId, &FetchOutcome)],
        now: UnixMillis,
    ) -> Result<Vec<Completion>, StoreError> {
        let rows: Vec<CompletionRow> = urls
            .iter()
            .map(|(url, outcome)| CompletionRow::new(*url, outcome, now))
            .collect();
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            hold_lease!(tx, d, lease, now);
            let done = complete_in!(tx, lease, &rows, now);
            tx.commit().await?;
            Ok(done)
        })
    }

    /// Stores the host's politeness state under a live lease.
    pub async fn update_host(
        &self,
        lease: &Lease,
        policy: &HostPolicy,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let updated = on_backend!(self.backend, |pool, d| {
            sqlx::query(UPDATE_POLICY)
                .bind(lease.host_id.0)
                .bind(&lease.owner)
                .bind(lease.epoch)
                .bind(now)
                .bind(policy.delay_ms)
                .bind(policy.crawl_delay_ms)
                .bind(policy.error_streak)
                .bind(policy.quiet_pages)
                .fetch_optional(pool)
                .await?
                .is_some()
        });
        if updated { Ok(()) } else { Err(lease.lost()) }
    }

    /// Caches the host's robots.txt under a live lease; bodies past 512 KiB are cut.
    pub async fn store_robots(
        &self,
        lease: &Lease,
        robots: &RobotsCache,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let body = robots.body.get(..MAX_ROBOTS_BYTES).unwrap_or(&robots.body);
        let updated = on_backend!(self.backend, |pool, d| {
            sqlx::query(STORE_ROBOTS)
                .bind(lease.host_id.0)
                .bind(&lease.owner)
                .bind(lease.epoch)
                .bind(now)
                .bind(robots.status.map(i64::from))
                .bind(body)
                .bind(robots.fetched_at)
                .bind(robots.expires_at)
                .fetch_optional(pool)
                .await?
                .is_some()
        });
        if updated { Ok(()) } else { Err(lease.lost()) }
    }
}

#[cfg(test)]
mod tests {
    use super::super::enqueue::{
        insert_embeds_sql, insert_hosts_sql, insert_urls_sql, make_hosts_due_sql,
        pages_with_match_sql, select_hosts_sql, select_urls_sql,
    };
    use super::{
        complete_leased_urls_sql, count_fetches_sql, hold_leases_sql, insert_fetches_sql,
        record_host_addresses_sql, settle_reports_sql, url_hosts_sql,
    };
    use crate::backend::positional;

    /// The crawl's hot multi-row statements bind their parameters in the order they appear,
    /// so SQLite gets them as anonymous placeholders (see `crate::backend::native_sql`): one
    /// that stops doing so still works, only slower, and nothing else would notice.
    #[test]
    fn hot_multi_row_statements_have_their_placeholders_in_binding_order() {
        let built = [
            ("select hosts", select_hosts_sql(3)),
            ("insert hosts", insert_hosts_sql(3)),
            ("insert URLs", insert_urls_sql(3)),
            ("select URLs", select_urls_sql(3)),
            ("insert embeds", insert_embeds_sql(3)),
            ("make hosts due", make_hosts_due_sql(3)),
            ("pages with a match", pages_with_match_sql(3)),
            ("hold leases", hold_leases_sql(3, false)),
            ("hold and lock leases", hold_leases_sql(3, true)),
            ("complete leased URLs", complete_leased_urls_sql(3)),
            ("insert fetches", insert_fetches_sql(3)),
            ("count fetches", count_fetches_sql(3)),
            ("record host addresses", record_host_addresses_sql(3)),
            ("URL hosts", url_hosts_sql(3)),
            ("settle reports", settle_reports_sql(3)),
        ];
        for (what, sql) in built {
            let rewritten = positional(&sql).unwrap_or_else(|| panic!("{what}: {sql}"));
            assert!(!rewritten.contains('$'), "{what}: {rewritten}");
        }
    }
}
