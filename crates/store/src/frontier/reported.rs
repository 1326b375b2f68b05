//! A report's URL into the frontier: the one way a report becomes `queued`, and the link
//! (`report_urls`) through which it settles when its URL does (see
//! [`super::Frontier::complete_url`]).
//!
//! A report follows its URL's redirects ([`super::Frontier::complete_redirect`]): the
//! target is linked to it too, and it settles by the end of the chain.
//!
//! Must not fetch or judge anything itself: a URL already in the frontier is only made a
//! reported URL again, and its reports settle with its next completion, or with the end of
//! the redirect chain it starts.

use super::enqueue::{HostLocks, check_batch, enqueue_in, host_ids_in, requeue_in, url_hash};
use super::lease::{CompletionRow, complete_in, hold_lease};
use super::{Completion, EnqueuedUrl, FetchOutcome, Lease, NewUrl, Priority, UrlId, UrlSource};
use crate::UnixMillis;
use crate::backend::{Dialect, Get, on_backend};
use crate::error::StoreError;
use crate::reports::ReportId;

/// Where a redirect leads, for [`super::Frontier::complete_redirect`].
#[derive(Clone, Copy, Debug)]
pub enum RedirectTarget<'a> {
    /// Followed: the target, as the crawler enqueues it for the URL that redirected (its
    /// source, depth, priority, page and report).
    Followed(&'a NewUrl),
    /// Not followed (unparsable, off scope, deny-listed): why, as a report rejected for it
    /// says.
    Refused(&'a str),
}

const LINK: &str =
    "INSERT INTO report_urls (report_id, url_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
// A redirect's target, `$3` redirects from the reported URL.
const LINK_HOP: &str = "INSERT INTO report_urls (report_id, url_id, hops) VALUES ($1, $2, $3) \
    ON CONFLICT DO NOTHING";
// The reports of a URL still waiting for it, with how many redirects led there.
const WAITING: &str = "SELECT ru.report_id, ru.hops FROM report_urls ru \
    JOIN reports r ON r.id = ru.report_id WHERE ru.url_id = $1 AND r.status = 'queued' \
    ORDER BY ru.report_id";
const LINKED: &str = "SELECT 1 AS linked FROM report_urls WHERE report_id = $1 AND url_id = $2";
const URL_BY_KEY: &str = "SELECT id FROM urls WHERE url_hash = $1";
const REJECT: &str =
    "UPDATE reports SET status = 'rejected', reason = $2 WHERE id = $1 AND status = 'queued'";
// A URL known for another reason (a link, a page's media, a re-check) becomes a reported
// one: the crawler's budgets, depth and quiet-site rules do not keep a report from being
// fetched. Seeds already are treated as reported. The first report that led to the URL is
// kept (the review desk attributes its media to it). A URL settled before (done, failed,
// skipped) is fetched afresh for the new report, so its attempts count from zero again: the
// crawler gives up once they reach `max_attempts`, and one transient error would otherwise
// reject the new report at once.
const MAKE_REPORTED: &str = "UPDATE urls SET report_id = COALESCE(report_id, $2), \
    source = CASE WHEN source = 'seed' THEN source ELSE 'report' END, depth = 0, \
    priority = CASE WHEN priority > $3 THEN $3 ELSE priority END, \
    attempts = CASE WHEN state = 'queued' THEN attempts ELSE 0 END WHERE id = $1";
const MARK_QUEUED: &str =
    "UPDATE reports SET status = 'queued' WHERE id = $1 AND status = 'received'";
// The URL's row, so a transaction completing it (which holds its host first, as this one
// does after enqueueing) is waited for before its state is read.
const LOCK_URL_POSTGRES: &str = "SELECT id FROM urls WHERE id = $1 FOR UPDATE";

/// Inside the open write transaction `$tx` (dialect `$d`): makes `$url`, a URL known before,
/// a reported URL for report `$report` ([`MAKE_REPORTED`]) and queues it again now at the
/// reported priority. A macro, as [`requeue_in!`] is, because the transaction's type is the
/// back-end's.
macro_rules! make_reported_in {
    ($tx:ident, $d:expr, $url:expr, $report:expr, $now:expr) => {{
        let url: i64 = $url;
        if $d == Dialect::Postgres {
            sqlx::query(LOCK_URL_POSTGRES)
                .bind(url)
                .fetch_optional(&mut *$tx)
                .await?;
        }
        sqlx::query(MAKE_REPORTED)
            .bind(url)
            .bind($report)
            .bind(Priority::Reported as i64)
            .execute(&mut *$tx)
            .await?;
        requeue_in!($tx, url, Priority::Reported, $now);
    }};
}

impl super::Frontier<'_> {
    /// Queues `url` for `report` and marks the report `queued`, in one transaction.
    /// `url` is queued as [`UrlSource::Report`] at [`Priority::Reported`], depth 0, whatever
    /// it says. A URL already known:
    /// - done, failed or skipped: queued again now as a reported URL (a report asks what
    ///   the URL holds now, not what it held when it was last fetched);
    /// - queued: made a reported URL at the reported priority;
    /// - in flight: made a reported URL; the completion of the attempt under way settles
    ///   this report with the others.
    ///
    /// Every report linked to a URL settles when the URL settles: `crawled` once done,
    /// `rejected` once failed or skipped (a skip by a rule reported URLs are exempt from,
    /// [`super::UrlNext::SkippedUnlessReported`], queues it again instead); a redirect carries
    /// them on to its target ([`super::Frontier::complete_redirect`]). Returns `None`, writing nothing, when the report
    /// is not `received` (unknown, or queued by another worker meanwhile).
    pub async fn enqueue_reported(
        &self,
        report: ReportId,
        url: &NewUrl,
        now: UnixMillis,
    ) -> Result<Option<EnqueuedUrl>, StoreError> {
        let url = NewUrl {
            source: UrlSource::Report,
            priority: Priority::Reported,
            depth: 0,
            report_id: Some(report),
            ..url.clone()
        };
        let batch = [url];
        super::enqueue::check_batch(&batch)?;
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let marked = sqlx::query(MARK_QUEUED)
                .bind(report.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if marked == 0 {
                // Unknown, or queued by another worker meanwhile.
                return Ok(None);
            }
            // Locks the URL's host on PostgreSQL, as a completion holds it.
            let done = enqueue_in!(tx, &batch, now);
            let Some(queued) = done.first().copied() else {
                return Err(StoreError::NotFound {
                    what: "URL just enqueued",
                    id: batch[0].url.clone(),
                });
            };
            sqlx::query(LINK)
                .bind(report.0)
                .bind(queued.id.0)
                .execute(&mut *tx)
                .await?;
            if !queued.inserted {
                make_reported_in!(tx, d, queued.id.0, report.0, now);
            }
            tx.commit().await?;
            Ok(Some(queued))
        })
    }
}

impl super::Frontier<'_> {
    /// Records `outcome`, a redirect answered for `url` (handed out under `lease`), as
    /// [`super::Frontier::complete_url`] does, and in the same transaction enqueues the
    /// target and carries the URL's waiting reports along the redirect instead of settling
    /// them by its answer: each is linked to the target, `hops` one more than it came to
    /// `url` with, and waits for the target's fetch; the target is made a reported URL (as
    /// [`super::Frontier::enqueue_reported`] does: reported priority, out of the crawl's
    /// budgets, fetched again if settled before). A report ends `rejected`, with the reason,
    /// when the redirect is not followed ([`RedirectTarget::Refused`]), when its target is a
    /// URL the report already went through (a loop), or when it would be more than
    /// `max_redirects` redirects from the URL reported. A URL without waiting reports only
    /// has its target enqueued as given. A repeated completion writes nothing.
    pub async fn complete_redirect(
        &self,
        lease: &Lease,
        url: UrlId,
        outcome: &FetchOutcome,
        target: RedirectTarget<'_>,
        max_redirects: u32,
        now: UnixMillis,
    ) -> Result<Completion, StoreError> {
        let mut row = CompletionRow::new(url, outcome, now);
        row.settles_reports = false;
        let rows = [row];
        if let RedirectTarget::Followed(target) = target {
            check_batch(std::slice::from_ref(target))?;
        }
        let max_hops = i64::from(max_redirects);
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            if d == Dialect::Postgres
                && let RedirectTarget::Followed(target) = target
            {
                // Host rows in the one order (see `HostLocks`): the target's created first,
                // then both locked by key, the lease's among them.
                let create = [(target.host_key.as_str(), target.registrable_domain.as_str())];
                host_ids_in!(tx, &create, now);
                HostLocks::lock_hosts_in_order(
                    &mut *tx,
                    &[lease.host_id.0],
                    &[target.host_key.as_str()],
                    &[],
                )
                .await?;
            }
            hold_lease!(tx, d, lease, now);
            let done = complete_in!(tx, lease, &rows, now);
            let completion = done.first().copied().unwrap_or(Completion::AlreadyRecorded);
            if completion != Completion::Recorded {
                tx.rollback().await?;
                return Ok(completion);
            }
            let mut waiting: Vec<(i64, i64)> = Vec::new();
            for row in sqlx::query(WAITING).bind(url.0).fetch_all(&mut *tx).await? {
                waiting.push((row.i64("report_id")?, row.i64("hops")?));
            }
            let mut rejected: Vec<(i64, String)> = Vec::new();
            let mut going_on: Vec<(i64, i64)> = Vec::new();
            match target {
                RedirectTarget::Refused(why) => {
                    rejected.extend(waiting.iter().map(|(report, _)| (*report, why.to_owned())));
                }
                RedirectTarget::Followed(target) => {
                    let known = sqlx::query(URL_BY_KEY)
                        .bind(&url_hash(&target.url)[..])
                        .fetch_optional(&mut *tx)
                        .await?;
                    let known = match known {
                        Some(row) => Some(row.i64("id")?),
                        None => None,
                    };
                    for (report, hops) in waiting {
                        if hops + 1 > max_hops {
                            let why = format!("more than {max_redirects} redirects");
                            rejected.push((report, why));
                            continue;
                        }
                        if let Some(known) = known {
                            let looped = sqlx::query(LINKED)
                                .bind(report)
                                .bind(known)
                                .fetch_optional(&mut *tx)
                                .await?
                                .is_some();
                            if looped {
                                let why = format!("redirect loop back to {}", target.url);
                                rejected.push((report, why));
                                continue;
                            }
                        }
                        going_on.push((report, hops + 1));
                    }
                    let first = going_on.first().map(|(report, _)| *report);
                    let batch = [match first {
                        // A reported URL, as `enqueue_reported` queues one.
                        Some(first) => NewUrl {
                            source: UrlSource::Report,
                            priority: Priority::Reported,
                            depth: 0,
                            next_fetch_at: now,
                            report_id: target.report_id.or(Some(ReportId(first))),
                            ..target.clone()
                        },
                        None => target.clone(),
                    }];
                    let enqueued = enqueue_in!(tx, &batch, now);
                    let Some(queued) = enqueued.first().copied() else {
                        return Err(StoreError::NotFound {
                            what: "URL just enqueued",
                            id: target.url.clone(),
                        });
                    };
                    for (report, hops) in &going_on {
                        sqlx::query(LINK_HOP)
                            .bind(*report)
                            .bind(queued.id.0)
                            .bind(*hops)
                            .execute(&mut *tx)
                            .await?;
                    }
                    if let Some(first) = first
                        && !queued.inserted
                    {
                        make_reported_in!(tx, d, queued.id.0, first, now);
                    }
                }
            }
            for (report, why) in &rejected {
                sqlx::query(REJECT)
                    .bind(*report)
                    .bind(why.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(completion)
        })
    }
}
