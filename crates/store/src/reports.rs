//! Reported URLs as received (intake API, form, `aranea report add`). The crawler seeds
//! the frontier from them ([`crate::Frontier::enqueue_reported`], which links each report to
//! its URL); this module records them and reads their status. A report's status moves on
//! with its URL, in the transaction that settles the URL: several reports of one URL settle
//! together.

use crate::UnixMillis;
use crate::backend::{Backend, Get, on_backend};
use crate::error::{StoreError, check_line, check_text};
use crate::frontier::{MAX_URL_BYTES, UrlId, text_enum};

mod reference;
mod views;
pub use reference::ReportReference;
pub use views::ReportOutcome;

/// Longest reporter or hotline name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 500;
/// Longest notes accepted, in bytes.
pub const MAX_NOTES_BYTES: usize = 64 * 1024;

/// A report's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportId(pub(crate) i64);

impl ReportId {
    pub fn get(self) -> i64 {
        self.0
    }
    /// A report id from its number (as printed by a tool).
    pub fn from_raw(id: i64) -> ReportId {
        ReportId(id)
    }
}

/// Where a report stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportStatus {
    /// Recorded, not yet in the frontier.
    Received,
    /// Its URL is in the frontier and not settled yet (waiting, being fetched, or waiting
    /// for another attempt after a transient error).
    Queued,
    /// Its URL's fetch is final: the site answered (whatever it answered) and what the URL
    /// held was recorded; for a URL that redirects, the fetch at the end of the chain.
    Crawled,
    /// Refused (malformed, out of scope), or its URL was skipped by the crawler's own rules
    /// (robots.txt, deny-list, SSRF guard) or failed for good, or a redirect on the way was
    /// not followed, looped or was one too many ([`Report::reason`] says which).
    Rejected,
}

text_enum!(ReportStatus, "report status", {
    Received => "received", Queued => "queued", Crawled => "crawled", Rejected => "rejected",
});

/// A URL a report is linked to (`report_urls`): the URL reported, or a redirect target it
/// followed from there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportLink {
    pub url: UrlId,
    /// Redirects followed from the URL reported to this one (0 for the URL reported).
    pub redirects: u32,
}

/// A report to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReport {
    /// The URL as reported (not canonicalised: evidence keeps what the reporter sent).
    pub url: String,
    pub reporter: String,
    pub hotline: String,
    pub notes: String,
}

/// A recorded report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The internal id, sequential: for staff only (it tells how many reports there are).
    pub id: ReportId,
    /// The public reference, random: what a public reporter is told.
    pub reference: ReportReference,
    pub url: String,
    pub reporter: String,
    pub hotline: String,
    pub notes: String,
    pub reported_at: UnixMillis,
    pub status: ReportStatus,
    /// Why it was rejected when it settled (its URL's error or skip, the end of a redirect
    /// chain): `None` for any other status, and for reports settled before schema 9.
    pub reason: Option<String>,
}

fn report_from_row(row: &impl Get) -> Result<Report, StoreError> {
    Ok(Report {
        id: ReportId(row.i64("id")?),
        reference: ReportReference::from_stored(row.text("reference")?),
        url: row.text("url")?,
        reporter: row.text("reporter")?,
        hotline: row.text("hotline")?,
        notes: row.text("notes")?,
        reported_at: row.i64("reported_at")?,
        status: ReportStatus::parse(&row.text("status")?)?,
        reason: row.opt_text("reason")?,
    })
}

/// Reports: record, read, move through their statuses.
pub struct Reports<'a> {
    backend: &'a Backend,
}

impl<'a> Reports<'a> {
    pub(crate) fn new(backend: &'a Backend) -> Self {
        Reports { backend }
    }

    /// Records a report as received at `now`. Its hotline must be a registered hotline's
    /// code ([`crate::NewHotline::code`]) once any hotline is registered: an unknown one
    /// (a typo, a hotline not yet added) is refused with [`StoreError::UnknownHotline`] and
    /// nothing is written, as its items would reach no hotline's desk. Before the first
    /// hotline is registered there is no desk to reach and the name is kept as given.
    pub async fn add(&self, report: &NewReport, now: UnixMillis) -> Result<ReportId, StoreError> {
        self.add_with_reference(report, now).await.map(|(id, _)| id)
    }

    /// [`Reports::add`], returning the report's public reference too (what a public
    /// reporter is told).
    pub async fn add_with_reference(
        &self,
        report: &NewReport,
        now: UnixMillis,
    ) -> Result<(ReportId, ReportReference), StoreError> {
        check_line("report URL", &report.url, MAX_URL_BYTES)?;
        check_text("reporter", &report.reporter, MAX_NAME_BYTES, false)?;
        check_text("hotline", &report.hotline, MAX_NAME_BYTES, false)?;
        check_text("notes", &report.notes, MAX_NOTES_BYTES, true)?;
        // A reference taken already (60 random bits: all but never) is drawn again.
        let mut draws = 0;
        loop {
            draws += 1;
            let reference = ReportReference::random()?;
            let inserted = on_backend!(self.backend, |pool, d| {
                // One statement, so a hotline registered or removed meanwhile cannot slip
                // in between the check and the insert.
                let row = sqlx::query(
                    "INSERT INTO reports (url, reporter, hotline, notes, reported_at, reference) \
                     SELECT $1, $2, $3, $4, $5, $6 \
                     WHERE EXISTS (SELECT 1 FROM hotlines WHERE code = $3) \
                     OR NOT EXISTS (SELECT 1 FROM hotlines) RETURNING id",
                )
                .bind(&report.url)
                .bind(&report.reporter)
                .bind(&report.hotline)
                .bind(&report.notes)
                .bind(now)
                .bind(reference.as_str())
                .fetch_optional(pool)
                .await;
                match row {
                    Ok(Some(row)) => Some(ReportId(row.i64("id")?)),
                    Ok(None) => {
                        return Err(StoreError::UnknownHotline {
                            code: report.hotline.clone(),
                        });
                    }
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() && draws < 5 => None,
                    Err(e) => return Err(e.into()),
                }
            });
            if let Some(id) = inserted {
                return Ok((id, reference));
            }
        }
    }

    /// The report with the public `reference`, if any.
    pub async fn by_reference(
        &self,
        reference: &ReportReference,
    ) -> Result<Option<Report>, StoreError> {
        const SQL: &str = "SELECT id, reference, url, reporter, hotline, notes, reported_at, \
            status, reason FROM reports WHERE reference = $1";
        on_backend!(self.backend, |pool, d| {
            match sqlx::query(SQL)
                .bind(reference.as_str())
                .fetch_optional(pool)
                .await?
            {
                Some(row) => report_from_row(&row).map(Some),
                None => Ok(None),
            }
        })
    }

    /// The report, if any.
    pub async fn get(&self, id: ReportId) -> Result<Option<Report>, StoreError> {
        const SQL: &str = "SELECT id, reference, url, reporter, hotline, notes, reported_at, \
            status, reason FROM reports WHERE id = $1";
        on_backend!(self.backend, |pool, d| {
            match sqlx::query(SQL).bind(id.0).fetch_optional(pool).await? {
                Some(row) => report_from_row(&row).map(Some),
                None => Ok(None),
            }
        })
    }

    /// The URLs the report is linked to, the URL reported first, then the redirect
    /// targets in the order followed.
    pub async fn links(&self, id: ReportId) -> Result<Vec<ReportLink>, StoreError> {
        const SQL: &str = "SELECT url_id, hops FROM report_urls WHERE report_id = $1 \
            ORDER BY hops, url_id";
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(SQL).bind(id.0).fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    Ok(ReportLink {
                        url: UrlId::from_raw(row.i64("url_id")?),
                        redirects: u32::try_from(row.i64("hops")?).unwrap_or(u32::MAX),
                    })
                })
                .collect()
        })
    }

    /// Up to `limit` reports in `status`, oldest first.
    pub async fn with_status(
        &self,
        status: ReportStatus,
        limit: u32,
    ) -> Result<Vec<Report>, StoreError> {
        const SQL: &str = "SELECT id, reference, url, reporter, hotline, notes, reported_at, \
            status, reason FROM reports WHERE status = $1 ORDER BY reported_at, id LIMIT $2";
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(SQL)
                .bind(status.as_str())
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
            rows.iter().map(report_from_row).collect()
        })
    }

    /// Rejects a report still `received` (its URL cannot be crawled: not a URL, not
    /// http(s), deny-listed) for `reason`; returns whether it was. A report queued meanwhile
    /// by another worker is left to settle with its URL.
    pub async fn reject_received(&self, id: ReportId, reason: &str) -> Result<bool, StoreError> {
        check_text("reason", reason, MAX_NOTES_BYTES, true)?;
        let rejected = on_backend!(self.backend, |pool, d| {
            sqlx::query(
                "UPDATE reports SET status = 'rejected', reason = $2 \
                 WHERE id = $1 AND status = 'received'",
            )
            .bind(id.0)
            .bind(reason)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(rejected == 1)
    }

    /// Moves a report to `status` (an operator's correction; the crawler never calls this
    /// for a queued report, which settles with its URL).
    pub async fn set_status(&self, id: ReportId, status: ReportStatus) -> Result<(), StoreError> {
        self.set_status_in(id, status, None).await
    }

    /// Moves a report to `status` by hand, with why as its [`Report::reason`] (it stays
    /// until the report settles again, when the crawler writes its own or clears it).
    pub async fn correct_status(
        &self,
        id: ReportId,
        status: ReportStatus,
        reason: &str,
    ) -> Result<(), StoreError> {
        check_text("reason", reason, MAX_NOTES_BYTES, true)?;
        self.set_status_in(id, status, Some(reason)).await
    }

    async fn set_status_in(
        &self,
        id: ReportId,
        status: ReportStatus,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let found = on_backend!(self.backend, |pool, d| {
            sqlx::query(
                "UPDATE reports SET status = $2, reason = COALESCE($3, reason) WHERE id = $1",
            )
            .bind(id.0)
            .bind(status.as_str())
            .bind(reason)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if found == 0 {
            return Err(StoreError::NotFound {
                what: "report",
                id: id.0.to_string(),
            });
        }
        Ok(())
    }
}
