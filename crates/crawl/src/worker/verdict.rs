//! What a page's verdict does once its settlement is written (which settles the reports of
//! its URLs too): its media's sightings on other pages that embed them followed up (a match there
//! fetches that page again, unknown media on a matching page goes to review), and for a page
//! with a match, its unknown media queued for review before the page completes.
//!
//! Runs as a task of its own while the host goes on with its next request
//! ([`super::host::HostWork::settled`] waits for it). Must not decide the verdict: it
//! arrives decided, with the settlement.

use std::collections::HashSet;

use aranea_store::{
    Completion, FetchOutcome, Lease, PageSettlement, Priority, ReviewReason, SightingId,
    StoreError, UnixMillis, UrlId, UrlRecord,
};
use bytes::Bytes;

use super::page::{HeldMedia, PendingPage, Sighted};
use super::progress::Counters;
use super::{Context, now_ms};
use crate::pipeline::{ForReview, Reviewed, queue_for_review};

/// Writes `settlement` (group commit), then does what the verdict asks of the written page.
pub(super) async fn write(
    cx: &Context,
    lease: &Lease,
    page: PendingPage,
    settlement: PageSettlement,
    matched: bool,
    now: UnixMillis,
) -> Result<(), StoreError> {
    let settled = cx
        .commits
        .settle(&cx.store, &cx.writes, settlement)
        .await?
        .page;
    let elsewhere: Vec<(&HeldMedia, SightingId, &Vec<UrlId>)> = page
        .held
        .iter()
        .zip(&settled.sightings)
        .zip(&settled.also_on)
        .filter(|(_, also_on)| !also_on.is_empty())
        .map(|((held, sighting), also_on)| (held, *sighting, also_on))
        .collect();
    for (held, sighting, also_on) in elsewhere {
        let seen = Sighted {
            matched: held.matched,
            sha256: held.seen.media.sha256,
            sighting,
            page: held.seen.sighting.page,
        };
        embedded_elsewhere(cx, &seen, also_on, held.bytes.clone()).await?;
    }
    if matched {
        review_and_complete(cx, lease, &page, &settled.sightings, now).await?;
    }
    Ok(())
}

/// Records the outcome of `url` under `lease`. The reports of the URL settle in the same
/// transaction once the URL is settled (see [`aranea_store::Frontier::enqueue_reported`]);
/// a URL queued again for a retry leaves them `queued`. Says what the store made of it: a
/// skip may have queued the URL again for a report instead ([`Completion::QueuedForReport`]).
pub(super) async fn complete_url(
    cx: &Context,
    lease: &Lease,
    url: &UrlRecord,
    outcome: &FetchOutcome,
) -> Result<Completion, StoreError> {
    let turn = cx.writes.take().await;
    let completion = cx
        .store
        .frontier()
        .complete_url(lease, url.id, outcome, now_ms())
        .await?;
    drop(turn);
    Ok(completion)
}

/// Media recorded on pages that embed its URL besides the one it was fetched for (pages
/// mined before it was fetched, on any host): a match there means the page's links are
/// to be followed after all, so it is fetched again; unknown media on such a page that
/// has a match goes to review.
pub(super) async fn embedded_elsewhere(
    cx: &Context,
    seen: &Sighted,
    also_on: &[UrlId],
    bytes: Option<Bytes>,
) -> Result<(), StoreError> {
    let now = now_ms();
    for page in also_on {
        if seen.matched {
            cx.store
                .frontier()
                .schedule_recheck(*page, now, Priority::MatchLink)
                .await?;
        } else if cx.store.crawl_facts().page_has_match(*page).await? {
            let item = ForReview {
                sha256: seen.sha256,
                sighting: seen.sighting,
                reason: ReviewReason::OnMatchingPage,
            };
            let queued = queue_for_review(&cx.store, &cx.sink, &cx.cpu, item, bytes, now).await?;
            if queued == Reviewed::Queued {
                Counters::bump(&cx.counters.review);
            }
            return Ok(());
        }
    }
    Ok(())
}

/// A page with a match: its unknown media go to review, then the page completes (a page
/// completed is a page whose links and review are in).
async fn review_and_complete(
    cx: &Context,
    lease: &Lease,
    page: &PendingPage,
    sightings: &[SightingId],
    now: UnixMillis,
) -> Result<(), StoreError> {
    let facts = cx.store.crawl_facts();
    let mut refetch = Vec::new();
    for (held, sighting) in page.held.iter().zip(sightings).filter(|(h, _)| !h.matched) {
        let reviewed = queue_for_review(
            &cx.store,
            &cx.sink,
            &cx.cpu,
            ForReview {
                sha256: held.seen.media.sha256,
                sighting: *sighting,
                reason: ReviewReason::OnMatchingPage,
            },
            held.bytes.clone(),
            now,
        )
        .await?;
        if reviewed == Reviewed::Queued {
            Counters::bump(&cx.counters.review);
            if held.bytes.is_none() {
                refetch.push(held.url.id);
            }
        }
    }
    let held_urls: HashSet<UrlId> = page.held.iter().map(|h| h.url.id).collect();
    for other in facts.unmatched_on_page(page.url.id).await? {
        if held_urls.contains(&other.url) {
            continue;
        }
        let reviewed = queue_for_review(
            &cx.store,
            &cx.sink,
            &cx.cpu,
            ForReview {
                sha256: other.media_sha256,
                sighting: other.sighting,
                reason: ReviewReason::OnMatchingPage,
            },
            None,
            now,
        )
        .await?;
        if reviewed == Reviewed::Queued {
            Counters::bump(&cx.counters.review);
            refetch.push(other.url);
        }
    }
    complete_url(cx, lease, &page.url, &page.outcome).await?;
    // Review entries without bytes: fetch the media again so the sink receives them (after
    // completing them, as a URL still in flight is not queued again).
    for url in refetch {
        cx.store
            .frontier()
            .schedule_recheck(url, now, Priority::MatchLink)
            .await?;
    }
    Ok(())
}
