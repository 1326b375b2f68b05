//! The planning of a settlement batch, before anything is written: which pages each
//! media is sighted on, each sighting row and match row once, and where a batch must be cut
//! so that writing its pages together gives what writing them one after the other would.
//!
//! Must not touch the database: it reads the pages and the embeds already looked up.

use std::collections::{HashMap, HashSet};

use super::{PageSettlement, SeenMedia};
use crate::UnixMillis;
use crate::frontier::{EnqueuedUrl, UrlSource};
use crate::media::TimedMatch;

/// A sighting's archive member path (`""` outside archives), as the sightings table keys it.
pub(super) fn member(seen: &SeenMedia) -> &str {
    seen.sighting.member_path.as_deref().unwrap_or("")
}

/// The pages media seen is sighted on, as [`crate::media::SIGHT_ALL`] writes it: its own
/// page first, then (outside archives) every other page embedding its URL.
pub(super) fn sighted_on(seen: &SeenMedia, embeds: &HashMap<i64, Vec<i64>>) -> Vec<i64> {
    let own = seen.sighting.page.unwrap_or(seen.sighting.url).0;
    let mut on = vec![own];
    if member(seen).is_empty()
        && let Some(pages) = embeds.get(&seen.sighting.url.0)
    {
        on.extend(pages.iter().copied().filter(|page| *page != own));
    }
    on
}

/// One sighting row of a batch.
pub(super) struct SightingRow<'a> {
    pub(super) sha: &'a [u8; 32],
    pub(super) url: i64,
    pub(super) page: i64,
    pub(super) member: &'a str,
    pub(super) first_seen_at: UnixMillis,
    pub(super) last_seen_at: UnixMillis,
    pub(super) server_ip: Option<&'a str>,
}

/// The sightings of a run's media, each row once (PostgreSQL refuses a statement that
/// updates a row twice): the first to write a row gives its first time and server, the
/// latest time seen is its last, as upserts one after the other would leave it.
pub(super) struct SightingPlan<'a> {
    pub(super) rows: Vec<SightingRow<'a>>,
    /// Per page, per media seen: its rows in [`SightingPlan::rows`], as [`sighted_on`].
    pub(super) of_seen: Vec<Vec<Vec<usize>>>,
}

pub(super) fn plan_sightings<'a>(
    pages: &[&'a PageSettlement],
    embeds: &HashMap<i64, Vec<i64>>,
) -> SightingPlan<'a> {
    let mut rows: Vec<SightingRow<'a>> = Vec::new();
    let mut index: HashMap<(&'a [u8; 32], i64, i64, &'a str), usize> = HashMap::new();
    let mut of_seen = Vec::with_capacity(pages.len());
    for page in pages {
        let mut page_rows = Vec::with_capacity(page.seen.len());
        for seen in &page.seen {
            let sighting = &seen.sighting;
            let member = member(seen);
            let mut seen_rows = Vec::new();
            for on in sighted_on(seen, embeds) {
                let key = (&sighting.media_sha256, sighting.url.0, on, member);
                let at = *index.entry(key).or_insert_with(|| {
                    rows.push(SightingRow {
                        sha: &sighting.media_sha256,
                        url: sighting.url.0,
                        page: on,
                        member,
                        first_seen_at: sighting.seen_at,
                        last_seen_at: sighting.seen_at,
                        server_ip: sighting.server_ip.as_deref(),
                    });
                    rows.len() - 1
                });
                if let Some(row) = rows.get_mut(at) {
                    row.last_seen_at = row.last_seen_at.max(sighting.seen_at);
                }
                seen_rows.push(at);
            }
            page_rows.push(seen_rows);
        }
        of_seen.push(page_rows);
    }
    SightingPlan { rows, of_seen }
}

/// The match rows of a run: each media's matches on each of its sightings (`ids`, per
/// [`SightingPlan::rows`]), each (sighting, bank, entry) once, the first as inserts one
/// after the other would keep it.
pub(super) fn plan_matches<'a>(
    pages: &[&'a PageSettlement],
    plan: &SightingPlan<'_>,
    ids: &[i64],
) -> Vec<(i64, &'a TimedMatch)> {
    let mut first: HashSet<(i64, i64, i64)> = HashSet::new();
    let mut matches = Vec::new();
    for (page, of_page) in pages.iter().zip(&plan.of_seen) {
        for (seen, rows) in page.seen.iter().zip(of_page) {
            for sighting in rows.iter().filter_map(|&row| ids.get(row)) {
                for m in &seen.matches {
                    if first.insert((*sighting, m.hit.bank_id, m.hit.entry_id)) {
                        matches.push((*sighting, m));
                    }
                }
            }
        }
    }
    matches
}

/// How many of `pages` (from the first) can write their media together before any of them
/// enqueues links, and their completions and requeues after: up to the first page whose
/// matched media would be sighted on an earlier page asking to be requeued if matched
/// (that page looks for matches before this one writes them), and at most through the first
/// page whose links record embeds (later pages' media are sighted on what they record).
pub(super) fn run_length(pages: &[&PageSettlement], embeds: &HashMap<i64, Vec<i64>>) -> usize {
    let mut asking: HashSet<i64> = HashSet::new();
    for (n, page) in pages.iter().enumerate() {
        let sighted_on_asking = page
            .seen
            .iter()
            .filter(|s| !s.matches.is_empty())
            .flat_map(|s| sighted_on(s, embeds))
            .any(|on| asking.contains(&on));
        if n > 0 && sighted_on_asking {
            return n;
        }
        if let Some((url, _)) = page.requeue_if_matched {
            asking.insert(url.0);
        }
        let records_embeds = page
            .links
            .iter()
            .any(|l| l.source == UrlSource::Embed && l.parent.is_some());
        if records_embeds {
            return n + 1;
        }
    }
    pages.len()
}

/// How many of `pages` (from the first; `links` their links as enqueued) can raise their
/// known links, then complete, then requeue together: up to the first page that raises a
/// link an earlier page completes or requeues, or completes a URL an earlier page requeues
/// (one at a time, the earlier page's write comes first).
pub(super) fn segment_length(pages: &[&PageSettlement], links: &[Vec<EnqueuedUrl>]) -> usize {
    let mut completed: HashSet<i64> = HashSet::new();
    let mut requeued: HashSet<i64> = HashSet::new();
    for (n, (page, links)) in pages.iter().zip(links).enumerate() {
        let raises_settled = page.raise_known_to.is_some()
            && links.iter().any(|l| {
                !l.inserted && (completed.contains(&l.id.0) || requeued.contains(&l.id.0))
            });
        let completes_requeued = page
            .completions
            .iter()
            .any(|(url, _)| requeued.contains(&url.0));
        if n > 0 && (raises_settled || completes_requeued) {
            return n;
        }
        completed.extend(page.completions.iter().map(|(url, _)| url.0));
        if let Some((url, _)) = page.requeue_if_matched {
            requeued.insert(url.0);
        }
    }
    pages.len()
}
