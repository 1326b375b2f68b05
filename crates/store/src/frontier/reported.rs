//! A report's URL into the frontier: the one way a report becomes `queued`, and the link
//! (`report_urls`) through which it settles when its URL does (see
//! [`super::Frontier::complete_url`]).
//!
//! Must not fetch, judge or settle anything itself: a URL already in the frontier is only
//! made a reported URL again, and its reports settle with its next completion.

use super::enqueue::{enqueue_in, requeue_in};
use super::{EnqueuedUrl, NewUrl, Priority, UrlSource};
use crate::UnixMillis;
use crate::backend::{Dialect, Get, on_backend};
use crate::error::StoreError;
use crate::reports::ReportId;

const LINK: &str =
    "INSERT INTO report_urls (report_id, url_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
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
    /// `rejected` once failed or skipped. Returns `None`, writing nothing, when the report
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
                if d == Dialect::Postgres {
                    sqlx::query(LOCK_URL_POSTGRES)
                        .bind(queued.id.0)
                        .fetch_optional(&mut *tx)
                        .await?;
                }
                sqlx::query(MAKE_REPORTED)
                    .bind(queued.id.0)
                    .bind(report.0)
                    .bind(Priority::Reported as i64)
                    .execute(&mut *tx)
                    .await?;
                requeue_in!(tx, queued.id.0, Priority::Reported, now);
            }
            tx.commit().await?;
            Ok(Some(queued))
        })
    }
}
