//! What the web UI lists of reports: a hotline's reports newest first, and what came of each
//! one (every URL it reached). Read-only.
//!
//! A report reached the URLs linked to it in `report_urls` (the URL reported, the redirect
//! targets it followed) and every URL whose `urls.report_id` is the report: the pages and
//! media the crawler found from there by following links and embeds, which inherit it from
//! the page they were found on. `urls.report_id` is the first report that led to a URL, so
//! a page two reports reach through links counts for the first of them only (see
//! docs/reports.md, "What came of it").
//!
//! Cheap by construction: the URLs come from two indexes (`report_urls`' primary key and
//! `urls_by_report`), deduplicated, and every count follows indexed joins from them
//! (sightings by page, matches by sighting, notice items by sighting, notice entries by
//! item). The work is bounded by the report's own crawl, not the frontier's size.

use super::{Report, ReportId, Reports, report_from_row};
use crate::backend::{Get, on_backend};
use crate::error::StoreError;

/// What came of one report so far, over every URL it reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportOutcome {
    /// URLs the report reached (the URL reported, redirect targets, pages and media found
    /// from them) fetched at least once.
    pub fetched: i64,
    /// Distinct media seen on those pages, or fetched at those URLs directly.
    pub media: i64,
    /// Of those, media that matched a bank entry.
    pub matched: i64,
    /// Removal notices whose items are sightings on those pages.
    pub notices: i64,
    /// Notice items on those pages whose media the re-checks found removed.
    pub removed: i64,
}

const LIST_ALL: &str = "SELECT id, reference, url, reporter, hotline, notes, reported_at, \
    status, reason FROM reports WHERE id < $1 ORDER BY id DESC LIMIT $2";
const LIST_HOTLINE: &str = "SELECT id, reference, url, reporter, hotline, notes, reported_at, \
    status, reason FROM reports WHERE hotline = $3 AND id < $1 ORDER BY id DESC LIMIT $2";

/// Every URL the report reached, once: its `report_urls` rows and the URLs that carry it.
const REACHED: &str = "SELECT ru.url_id FROM report_urls ru WHERE ru.report_id = $1 \
    UNION SELECT u.id FROM urls u WHERE u.report_id = $1";

// `removed` filters on the state by CASE, not WHERE: a WHERE on it lets SQLite start from
// the index on `notice_items (state, …)`, every removed item of every report.
fn outcome_sql() -> String {
    let sightings = format!("FROM sightings s WHERE s.page_url_id IN ({REACHED})");
    format!(
        "SELECT \
         (SELECT COUNT(*) FROM urls f WHERE f.id IN ({REACHED}) \
          AND f.last_fetched_at IS NOT NULL) AS fetched, \
         (SELECT COUNT(DISTINCT s.media_sha256) {sightings}) AS media, \
         (SELECT COUNT(DISTINCT s.media_sha256) {sightings} \
          AND EXISTS (SELECT 1 FROM matches m WHERE m.sighting_id = s.id)) AS matched, \
         (SELECT COUNT(DISTINCT ne.notice_id) FROM notice_items ni \
          JOIN notice_entries ne ON ne.item_id = ni.id \
          WHERE ni.sighting_id IN (SELECT s.id {sightings})) AS notices, \
         (SELECT COUNT(CASE WHEN ni.state = 'removed' THEN 1 END) FROM notice_items ni \
          WHERE ni.sighting_id IN (SELECT s.id {sightings})) AS removed"
    )
}

impl Reports<'_> {
    /// Up to `limit` reports with an id below `before` (all when `None`), newest first: of
    /// `hotline` (its code), or of every hotline when `None`.
    pub async fn newest(
        &self,
        hotline: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Report>, StoreError> {
        let before = before.unwrap_or(i64::MAX);
        on_backend!(self.backend, |pool, d| {
            let rows = match hotline {
                Some(code) => {
                    sqlx::query(LIST_HOTLINE)
                        .bind(before)
                        .bind(i64::from(limit))
                        .bind(code)
                        .fetch_all(pool)
                        .await?
                }
                None => {
                    sqlx::query(LIST_ALL)
                        .bind(before)
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await?
                }
            };
            rows.iter().map(report_from_row).collect()
        })
    }

    /// What came of the report so far, over every URL it reached (all zero for an unknown id).
    pub async fn outcome(&self, id: ReportId) -> Result<ReportOutcome, StoreError> {
        let sql = outcome_sql();
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(id.0)
                .fetch_one(pool)
                .await?;
            Ok(ReportOutcome {
                fetched: row.i64("fetched")?,
                media: row.i64("media")?,
                matched: row.i64("matched")?,
                notices: row.i64("notices")?,
                removed: row.i64("removed")?,
            })
        })
    }
}
