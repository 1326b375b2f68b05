//! What the web UI lists of reports: a hotline's reports newest first, and what came of each
//! one's URL (the URL reported and the redirect targets it followed). Read-only.
//!
//! Cheap by construction: every count starts from the report's own rows in `report_urls`
//! (its primary key) and follows indexed joins (sightings by page, matches by sighting,
//! notice items by sighting, notice entries by item). Pages crawled further from the report
//! (links followed) are not counted: `urls.report_id` has no index.

use super::{Report, ReportId, Reports, report_from_row};
use crate::backend::{Get, on_backend};
use crate::error::StoreError;

/// What came of one report's URLs so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportOutcome {
    /// URLs of the report (the URL reported, redirect targets) fetched at least once.
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

const LIST_ALL: &str = "SELECT id, url, reporter, hotline, notes, reported_at, status, reason \
    FROM reports WHERE id < $1 ORDER BY id DESC LIMIT $2";
const LIST_HOTLINE: &str = "SELECT id, url, reporter, hotline, notes, reported_at, status, \
    reason FROM reports WHERE hotline = $3 AND id < $1 ORDER BY id DESC LIMIT $2";

const PAGE_SIGHTINGS: &str = "FROM report_urls ru JOIN sightings s ON s.page_url_id = ru.url_id";

fn outcome_sql() -> String {
    format!(
        "SELECT \
         (SELECT COUNT(*) FROM report_urls ru JOIN urls u ON u.id = ru.url_id \
          WHERE ru.report_id = $1 AND u.last_fetched_at IS NOT NULL) AS fetched, \
         (SELECT COUNT(DISTINCT s.media_sha256) {PAGE_SIGHTINGS} WHERE ru.report_id = $1) AS media, \
         (SELECT COUNT(DISTINCT s.media_sha256) {PAGE_SIGHTINGS} \
          JOIN matches m ON m.sighting_id = s.id WHERE ru.report_id = $1) AS matched, \
         (SELECT COUNT(DISTINCT ne.notice_id) {PAGE_SIGHTINGS} \
          JOIN notice_items ni ON ni.sighting_id = s.id \
          JOIN notice_entries ne ON ne.item_id = ni.id WHERE ru.report_id = $1) AS notices, \
         (SELECT COUNT(DISTINCT ni.id) {PAGE_SIGHTINGS} \
          JOIN notice_items ni ON ni.sighting_id = s.id \
          WHERE ru.report_id = $1 AND ni.state = 'removed') AS removed"
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

    /// What came of the report's URLs so far (all zero for an unknown id).
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
