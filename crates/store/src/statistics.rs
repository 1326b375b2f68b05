//! Read-only aggregates for the statistics pages and their JSON form: notices sent per
//! provider by kind, the facts of items opened in a time window, and event counts per time
//! bucket (notices sent, removals, matches, reports). Every query takes a half-open window
//! `[from, to)` in Unix milliseconds and, where the rows belong to a hotline, an optional
//! hotline filter so one hotline's operators see only their own notices and reports.
//!
//! Must not write, and holds no rule about what the numbers mean (the server decides how to
//! bucket and what to show); test notices are never counted.

use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::StoreError;
use crate::notices::ItemFact;

/// Notices sent (or possibly sent: `uncertain`) to one provider in the window, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderNotices {
    pub provider_name: String,
    pub initial: i64,
    pub renotice: i64,
    pub escalation: i64,
    pub reupload: i64,
}

/// Which events a [`Statistics::series`] counts, and by which time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Series {
    /// Notices by `sent_at` (state `sent` or `uncertain`, not test notices).
    NoticesSent,
    /// Notice items by `removed_at` (state `removed`).
    Removals,
    /// Bank matches by `matched_at` (the crawl is shared: no hotline filter applies).
    Matches,
    /// Reported URLs by `reported_at`.
    Reports,
}

impl Series {
    pub fn as_str(self) -> &'static str {
        match self {
            Series::NoticesSent => "notices_sent",
            Series::Removals => "removals",
            Series::Matches => "matches",
            Series::Reports => "reports",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Series::NoticesSent => {
                "SELECT (sent_at - $1) / $3 AS bucket, COUNT(*) AS n FROM notices \
                 WHERE state IN ('sent', 'uncertain') AND test = 0 AND kind <> 'withdrawal' \
                 AND sent_at >= $1 \
                 AND sent_at < $2 AND ($4 IS NULL OR hotline = $4) GROUP BY bucket ORDER BY bucket"
            }
            Series::Removals => {
                "SELECT (removed_at - $1) / $3 AS bucket, COUNT(*) AS n FROM notice_items \
                 WHERE state = 'removed' AND removed_at >= $1 AND removed_at < $2 \
                 AND ($4 IS NULL OR hotline = $4) GROUP BY bucket ORDER BY bucket"
            }
            Series::Matches => {
                "SELECT (matched_at - $1) / $3 AS bucket, COUNT(*) AS n FROM matches \
                 WHERE matched_at >= $1 AND matched_at < $2 GROUP BY bucket ORDER BY bucket"
            }
            Series::Reports => {
                "SELECT (reported_at - $1) / $3 AS bucket, COUNT(*) AS n FROM reports \
                 WHERE reported_at >= $1 AND reported_at < $2 AND ($4 IS NULL OR hotline = $4) \
                 GROUP BY bucket ORDER BY bucket"
            }
        }
    }
}

/// Aggregates over notices, items, matches and reports.
pub struct Statistics<'a> {
    backend: &'a crate::backend::Backend,
}

fn check_window(from: UnixMillis, to: UnixMillis) -> Result<(), StoreError> {
    if from < to {
        Ok(())
    } else {
        Err(StoreError::OutOfRange {
            field: "statistics window",
            value: to.saturating_sub(from),
            min: 1,
            max: i64::MAX,
        })
    }
}

impl<'a> Statistics<'a> {
    pub(crate) fn new(backend: &'a crate::backend::Backend) -> Self {
        Statistics { backend }
    }

    /// Notices sent in `[from, to)` per provider and kind, providers by name.
    pub async fn notices_by_provider(
        &self,
        hotline: Option<&str>,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<Vec<ProviderNotices>, StoreError> {
        check_window(from, to)?;
        const SQL: &str = "SELECT provider_name, kind, COUNT(*) AS n FROM notices \
            WHERE state IN ('sent', 'uncertain') AND test = 0 AND kind <> 'withdrawal' \
            AND sent_at >= $1 AND sent_at < $2 \
            AND ($3 IS NULL OR hotline = $3) GROUP BY provider_name, kind ORDER BY provider_name";
        let counts: Vec<(String, String, i64)> = on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(SQL)
                .bind(from)
                .bind(to)
                .bind(hotline)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| Ok((row.text("provider_name")?, row.text("kind")?, row.i64("n")?)))
                .collect::<Result<Vec<_>, StoreError>>()
        })?;
        let mut out: Vec<ProviderNotices> = Vec::new();
        for (provider, kind, n) in counts {
            if out.last().is_none_or(|p| p.provider_name != provider) {
                out.push(ProviderNotices {
                    provider_name: provider,
                    ..ProviderNotices::default()
                });
            }
            if let Some(row) = out.last_mut() {
                match kind.as_str() {
                    "initial" => row.initial += n,
                    "renotice" => row.renotice += n,
                    "escalation" => row.escalation += n,
                    "reupload" => row.reupload += n,
                    _ => {}
                }
            }
        }
        Ok(out)
    }

    /// The facts of items created in `[from, to)` (the first notice time from the notices
    /// sent), oldest first.
    pub async fn item_facts(
        &self,
        hotline: Option<&str>,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<Vec<ItemFact>, StoreError> {
        check_window(from, to)?;
        const SQL: &str = "SELECT i.id, i.provider_name, i.country, i.hotline, i.state, \
            i.created_at, i.removed_at, i.removal_kind, i.reupload_of, i.notices_sent, \
            (SELECT MIN(n.sent_at) FROM notices n JOIN notice_entries e ON e.notice_id = n.id \
             WHERE e.item_id = i.id AND n.state IN ('sent', 'uncertain') AND n.test = 0 \
             AND n.kind <> 'withdrawal') \
             AS first_notice_at \
            FROM notice_items i WHERE i.created_at >= $1 AND i.created_at < $2 \
            AND ($3 IS NULL OR i.hotline = $3) ORDER BY i.id";
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(SQL)
                .bind(from)
                .bind(to)
                .bind(hotline)
                .fetch_all(pool)
                .await?;
            rows.iter().map(ItemFact::from_row).collect()
        })
    }

    /// The time of the newest notice sent, removal recorded or item opened (for the hotline
    /// when given), or `None` when there is none. Statistics measure ages to the later of
    /// this and the real clock, so a clock that ran ahead (the demo's) neither hides recent
    /// events from the default window nor makes an age negative.
    pub async fn latest_event_at(
        &self,
        hotline: Option<&str>,
    ) -> Result<Option<UnixMillis>, StoreError> {
        const SQL: &str = "SELECT MAX(t) AS latest FROM ( \
            SELECT MAX(sent_at) AS t FROM notices WHERE state IN ('sent', 'uncertain') \
            AND test = 0 AND kind <> 'withdrawal' AND ($1 IS NULL OR hotline = $1) \
            UNION ALL SELECT MAX(removed_at) AS t FROM notice_items WHERE state = 'removed' \
            AND ($1 IS NULL OR hotline = $1) \
            UNION ALL SELECT MAX(created_at) AS t FROM notice_items \
            WHERE ($1 IS NULL OR hotline = $1)) AS latest_events";
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query(SQL).bind(hotline).fetch_one(pool).await?;
            Ok(row.opt_i64("latest")?)
        })
    }

    /// The time of the newest notice event or re-check of any kind (composed, sent, answered,
    /// checked, removed, …), or `None` when there is none: where a notice engine's clock that
    /// ran ahead (the demo's) left off, so that a later run can continue from there.
    pub async fn latest_notice_record_at(&self) -> Result<Option<UnixMillis>, StoreError> {
        const SQL: &str = "SELECT MAX(t) AS latest FROM ( \
            SELECT MAX(at) AS t FROM notice_events \
            UNION ALL SELECT MAX(at) AS t FROM notice_checks) AS recorded";
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query(SQL).fetch_one(pool).await?;
            Ok(row.opt_i64("latest")?)
        })
    }

    /// How many `series` events fell in each `bucket_ms`-wide bucket of `[from, to)`:
    /// `(bucket index from 0, count)`, only buckets with events, in order.
    pub async fn series(
        &self,
        series: Series,
        hotline: Option<&str>,
        from: UnixMillis,
        to: UnixMillis,
        bucket_ms: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        check_window(from, to)?;
        if bucket_ms <= 0 {
            return Err(StoreError::OutOfRange {
                field: "statistics bucket",
                value: bucket_ms,
                min: 1,
                max: i64::MAX,
            });
        }
        on_backend!(self.backend, |pool, d| {
            let mut query = sqlx::query(series.sql())
                .bind(from)
                .bind(to)
                .bind(bucket_ms);
            if series != Series::Matches {
                query = query.bind(hotline);
            }
            let rows = query.fetch_all(pool).await?;
            rows.iter()
                .map(|row| Ok((row.i64("bucket")?, row.i64("n")?)))
                .collect()
        })
    }
}
