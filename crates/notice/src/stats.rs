//! Removal statistics per provider, country and hotline: notices sent, items removed, median
//! and 90th-percentile time to removal (from the first notice), share removed within 24 h,
//! outstanding items and their age, re-uploads. Exported as JSON rows or CSV.
//!
//! Computed from [`aranea_store::NoticeStore::item_facts`]; must not write anything.
//!
//! Ages are measured to [`as_of`]: the later of the real clock and the newest event the
//! database records. A database written on a clock that ran ahead of the real one (the
//! demo's accelerated world) would otherwise show negative ages until the real clock caught
//! up; taking its newest event as "now" reads it as of the moment it was left.

use std::collections::BTreeMap;

use aranea_store::{ItemFact, Store, StoreError};
use serde::Serialize;

use crate::clock::UnixMillis;

/// One row of statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsRow {
    /// `provider`, `country` or `hotline`.
    pub dimension: String,
    pub key: String,
    pub items: usize,
    pub notices_sent: i64,
    pub removed: usize,
    pub median_hours_to_removal: Option<f64>,
    pub p90_hours_to_removal: Option<f64>,
    pub share_removed_within_24h: Option<f64>,
    pub outstanding: usize,
    pub oldest_outstanding_hours: Option<f64>,
    pub reuploads: usize,
}

/// The value at quantile `q` (nearest rank) of sorted values.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

fn hours(ms: i64) -> f64 {
    ms as f64 / 3_600_000.0
}

/// The time statistics are taken at: the later of `real_now` and the newest notice sent,
/// removal or item opened (of `hotline` when given), so that no age is negative.
pub async fn as_of(
    store: &Store,
    hotline: Option<&str>,
    real_now: UnixMillis,
) -> Result<UnixMillis, StoreError> {
    let latest = store.statistics().latest_event_at(hotline).await?;
    Ok(latest.map_or(real_now, |t| t.max(real_now)))
}

/// Statistics by provider, country and hotline, at `now` ([`as_of`]), raised to the newest
/// item's opening when that is later (an item opened between reading `now` and reading the
/// facts), so that no age is negative.
pub fn compute(facts: &[ItemFact], now: UnixMillis) -> Vec<StatsRow> {
    let now = facts.iter().map(|f| f.created_at).fold(now, i64::max);
    let mut rows = Vec::new();
    type Key = fn(&ItemFact) -> String;
    let dimensions: [(&str, Key); 3] = [
        ("provider", |f| f.provider_name.clone()),
        ("country", |f| {
            f.country.clone().unwrap_or_else(|| "??".to_owned())
        }),
        ("hotline", |f| f.hotline.clone()),
    ];
    for (dimension, key_of) in dimensions {
        let mut groups: BTreeMap<String, Vec<&ItemFact>> = BTreeMap::new();
        for fact in facts.iter().filter(|f| f.state != "withdrawn") {
            groups.entry(key_of(fact)).or_default().push(fact);
        }
        for (key, group) in groups {
            rows.push(row(dimension, key, &group, now));
        }
    }
    rows
}

fn row(dimension: &str, key: String, group: &[&ItemFact], now: UnixMillis) -> StatsRow {
    let mut ttr: Vec<f64> = group
        .iter()
        .filter_map(|f| Some(hours(f.removed_at? - f.first_notice_at?).max(0.0)))
        .collect();
    ttr.sort_by(f64::total_cmp);
    let outstanding: Vec<&&ItemFact> = group.iter().filter(|f| f.state == "open").collect();
    StatsRow {
        dimension: dimension.to_owned(),
        key,
        items: group.len(),
        notices_sent: group.iter().map(|f| f.notices_sent).sum(),
        removed: group.iter().filter(|f| f.state == "removed").count(),
        median_hours_to_removal: quantile(&ttr, 0.5),
        p90_hours_to_removal: quantile(&ttr, 0.9),
        share_removed_within_24h: (!ttr.is_empty())
            .then(|| ttr.iter().filter(|h| **h <= 24.0).count() as f64 / ttr.len() as f64),
        outstanding: outstanding.len(),
        oldest_outstanding_hours: outstanding
            .iter()
            .map(|f| hours(now - f.created_at))
            .max_by(f64::total_cmp),
        reuploads: group.iter().filter(|f| f.reupload_of.is_some()).count(),
    }
}

/// CSV with a header row.
pub fn to_csv(rows: &[StatsRow]) -> String {
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_default();
    let mut out = String::from(
        "dimension,key,items,notices_sent,removed,median_hours_to_removal,p90_hours_to_removal,\
         share_removed_within_24h,outstanding,oldest_outstanding_hours,reuploads\n",
    );
    for r in rows {
        let key = if r.key.contains([',', '"', '\n']) {
            format!("\"{}\"", r.key.replace('"', "\"\""))
        } else {
            r.key.clone()
        };
        out.push_str(&format!(
            "{},{key},{},{},{},{},{},{},{},{},{}\n",
            r.dimension,
            r.items,
            r.notices_sent,
            r.removed,
            opt(r.median_hours_to_removal),
            opt(r.p90_hours_to_removal),
            opt(r.share_removed_within_24h),
            r.outstanding,
            opt(r.oldest_outstanding_hours),
            r.reuploads
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(provider: &str, notice: Option<i64>, removed: Option<i64>, state: &str) -> ItemFact {
        ItemFact {
            id: 1,
            provider_name: provider.to_owned(),
            country: Some("NL".to_owned()),
            hotline: String::new(),
            state: state.to_owned(),
            created_at: 0,
            first_notice_at: notice,
            removed_at: removed,
            removal_kind: None,
            reupload_of: None,
            notices_sent: 1,
        }
    }

    #[test]
    fn quantiles_and_shares_follow_the_facts() {
        let h = 3_600_000;
        let facts = vec![
            fact("A", Some(0), Some(2 * h), "removed"),
            fact("A", Some(0), Some(10 * h), "removed"),
            fact("A", Some(0), Some(30 * h), "removed"),
            fact("A", Some(0), None, "open"),
        ];
        let rows = compute(&facts, 48 * h);
        let a = rows.iter().find(|r| r.dimension == "provider").unwrap();
        assert_eq!((a.items, a.removed, a.outstanding), (4, 3, 1));
        assert_eq!(a.median_hours_to_removal, Some(10.0));
        assert_eq!(a.p90_hours_to_removal, Some(30.0));
        assert_eq!(a.share_removed_within_24h, Some(2.0 / 3.0));
        assert_eq!(a.oldest_outstanding_hours, Some(48.0));
        assert!(to_csv(&rows).lines().count() == 4);
    }

    #[test]
    fn an_item_opened_after_now_is_not_aged_negatively() {
        let h = 3_600_000;
        let mut older = fact("A", None, None, "open");
        older.created_at = 2 * h;
        let mut newer = fact("A", None, None, "open");
        newer.created_at = 10 * h;
        let rows = compute(&[older, newer], 0);
        for row in rows {
            assert_eq!(row.oldest_outstanding_hours, Some(8.0), "{row:?}");
        }
    }
}
