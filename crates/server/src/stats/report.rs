//! The numbers behind the statistics page and `/api/v1/statistics/removals`: live counters,
//! the per-provider removal table, the time-to-removal distribution and the series over
//! time, gathered from the store for one window and one hotline (or all). Read-only.

use aranea_notice::stats as removal;
use aranea_store::{ItemFact, Series, Store, StoreError};
use serde::Serialize;
use serde_json::{Value, json};

use crate::stats::window::{DAY_MS, Window, date_of, hour_of};

/// One row of the per-provider table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProviderRow {
    pub provider: String,
    /// Items (URLs) opened in the window.
    pub items: usize,
    pub removed: usize,
    pub outstanding: usize,
    pub median_hours_to_removal: Option<f64>,
    pub p90_hours_to_removal: Option<f64>,
    pub share_removed_within_24h: Option<f64>,
    /// Notices sent in the window, by kind.
    pub notices_sent: i64,
    pub renotices: i64,
    pub escalations: i64,
    pub reupload_notices: i64,
    /// Items that are re-uploads of removed ones.
    pub reuploads: usize,
}

/// Upper bounds (hours, from the first notice) of the distribution's buckets; the last
/// bucket is open-ended.
pub const TTR_BUCKETS: [(&str, f64); 6] = [
    ("≤ 1 h", 1.0),
    ("1–6 h", 6.0),
    ("6–24 h", 24.0),
    ("1–3 d", 72.0),
    ("3–7 d", 168.0),
    ("> 7 d", f64::INFINITY),
];

/// One series over the window's buckets (zeros filled in).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeriesData {
    pub name: &'static str,
    pub values: Vec<i64>,
}

/// Everything the page shows for one window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    /// `hour` or `day`.
    pub bucket: &'static str,
    /// The label of each bucket (`YYYY-MM-DD` or `YYYY-MM-DD HH:00`, UTC).
    pub buckets: Vec<String>,
    pub hotline: Option<String>,
    pub providers: Vec<ProviderRow>,
    /// Items removed in the window's item set, counted per [`TTR_BUCKETS`] bucket.
    pub time_to_removal: Vec<(String, i64)>,
    pub series: Vec<SeriesData>,
}

fn hours(ms: i64) -> f64 {
    ms as f64 / 3_600_000.0
}

fn distribution(facts: &[ItemFact]) -> Vec<(String, i64)> {
    let mut counts = [0i64; TTR_BUCKETS.len()];
    for fact in facts.iter().filter(|f| f.state == "removed") {
        let (Some(removed), Some(first)) = (fact.removed_at, fact.first_notice_at) else {
            continue;
        };
        let h = hours(removed - first).max(0.0);
        if let Some(i) = TTR_BUCKETS.iter().position(|(_, upper)| h <= *upper) {
            counts[i] += 1;
        }
    }
    TTR_BUCKETS
        .iter()
        .zip(counts)
        .map(|((label, _), n)| ((*label).to_owned(), n))
        .collect()
}

/// Gathers the report for `window`, limited to `hotline`'s notices and reports when given.
pub async fn gather(
    store: &Store,
    window: Window,
    hotline: Option<&str>,
    now: i64,
) -> Result<Report, StoreError> {
    let stats = store.statistics();
    let facts = stats.item_facts(hotline, window.from, window.to).await?;
    let notices = stats
        .notices_by_provider(hotline, window.from, window.to)
        .await?;
    let mut providers: Vec<ProviderRow> = removal::compute(&facts, now)
        .into_iter()
        .filter(|r| r.dimension == "provider")
        .map(|r| ProviderRow {
            provider: r.key,
            items: r.items,
            removed: r.removed,
            outstanding: r.outstanding,
            median_hours_to_removal: r.median_hours_to_removal,
            p90_hours_to_removal: r.p90_hours_to_removal,
            share_removed_within_24h: r.share_removed_within_24h,
            notices_sent: 0,
            renotices: 0,
            escalations: 0,
            reupload_notices: 0,
            reuploads: r.reuploads,
        })
        .collect();
    for sent in notices {
        let at = match providers
            .iter()
            .position(|p| p.provider == sent.provider_name)
        {
            Some(at) => at,
            None => {
                // Notices in the window about items opened before it.
                providers.push(ProviderRow {
                    provider: sent.provider_name.clone(),
                    items: 0,
                    removed: 0,
                    outstanding: 0,
                    median_hours_to_removal: None,
                    p90_hours_to_removal: None,
                    share_removed_within_24h: None,
                    notices_sent: 0,
                    renotices: 0,
                    escalations: 0,
                    reupload_notices: 0,
                    reuploads: 0,
                });
                providers.len() - 1
            }
        };
        if let Some(row) = providers.get_mut(at) {
            row.notices_sent = sent.initial + sent.renotice + sent.escalation + sent.reupload;
            row.renotices = sent.renotice;
            row.escalations = sent.escalation;
            row.reupload_notices = sent.reupload;
        }
    }
    providers.sort_by(|a, b| a.provider.cmp(&b.provider));
    let bucket_ms = window.bucket_ms();
    let count = window.buckets();
    let mut series = Vec::new();
    for kind in [
        Series::NoticesSent,
        Series::Removals,
        Series::Matches,
        Series::Reports,
    ] {
        let mut values = vec![0i64; count];
        for (bucket, n) in stats
            .series(kind, hotline, window.from, window.to, bucket_ms)
            .await?
        {
            if let Some(slot) = usize::try_from(bucket).ok().and_then(|b| values.get_mut(b)) {
                *slot = n;
            }
        }
        series.push(SeriesData {
            name: kind.as_str(),
            values,
        });
    }
    let buckets = (0..count)
        .map(|i| {
            let start = window.from + bucket_ms * i as i64;
            if bucket_ms < DAY_MS {
                hour_of(start)
            } else {
                date_of(start)
            }
        })
        .collect();
    let (from, to) = window.dates();
    Ok(Report {
        from,
        to,
        bucket: if bucket_ms < DAY_MS { "hour" } else { "day" },
        buckets,
        hotline: hotline.map(str::to_owned),
        time_to_removal: distribution(&facts),
        providers,
        series,
    })
}

/// The report as the JSON API returns it.
pub fn to_json(report: &Report) -> Value {
    let series: serde_json::Map<String, Value> = report
        .series
        .iter()
        .map(|s| (s.name.to_owned(), json!(s.values)))
        .collect();
    json!({
        "from": report.from,
        "to": report.to,
        "bucket": report.bucket,
        "buckets": report.buckets,
        "providers": report.providers,
        "time_to_removal": report.time_to_removal.iter()
            .map(|(label, n)| json!({ "bucket": label, "items": n })).collect::<Vec<_>>(),
        "series": series,
    })
}
