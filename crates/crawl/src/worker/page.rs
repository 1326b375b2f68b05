//! What a fetched body teaches: a page's links and media, media's hashes and matches, and the
//! page's verdict once its media are in.
//!
//! A page is not completed when fetched: it waits (in memory, with its links) until the
//! media it embeds on the same host have been fetched and matched, so the verdict — did
//! anything on it match? — decides whether its links are followed and whether its unknown
//! media go to review. If the worker dies first, the page is still in flight in the store and
//! the next lease holder fetches it again; what was recorded meanwhile is idempotent.
//! Pages themselves are never kept.

use std::collections::HashSet;
use std::sync::Arc;

use aranea_store::{
    EnqueuedUrl, FetchOutcome, NewSighting, NewUrl, PageSettlement, Priority, ReviewReason,
    SeenMedia, SightingId, StoreError, TimedMatch, UnixMillis, UrlId, UrlNext, UrlRecord,
    UrlSource, UrlState,
};
use bytes::Bytes;
use url::Url;

use super::hashing::Hashed;
use super::host::{HostWork, outcome_of};
use super::links::{Origin, frontier_entry, new_url};
use super::progress::Counters;
use super::{Context, now_ms};
use crate::extract::extract;
use crate::fetch::{BodyKind, Response};
use crate::pipeline::{
    ForReview, MatchedMedia, Reviewed, queue_for_review, record_sighting, untimed,
};

/// Media of a page, fetched and matched, recorded when the page settles, together with the
/// page's other media and their URLs' completions in one write transaction (an archive's
/// members are several of these with one URL). If the worker dies first, neither the page
/// nor these URLs were completed, so the next lease holder fetches them again.
pub(super) struct HeldMedia {
    pub url: UrlRecord,
    pub outcome: FetchOutcome,
    pub seen: SeenMedia,
    pub matched: bool,
    /// The bytes of unknown media, kept until the verdict in case it goes to review.
    pub bytes: Option<Bytes>,
}

/// Media just recorded at a URL, for the page it was fetched for.
pub(super) struct Sighted {
    pub matched: bool,
    pub sha256: [u8; 32],
    pub sighting: SightingId,
    /// The page it was fetched for; `None` when fetched directly.
    pub page: Option<UrlId>,
}

/// A page fetched whose verdict waits for its media.
pub(crate) struct PendingPage {
    pub(super) url: UrlRecord,
    pub(super) outcome: FetchOutcome,
    links: Vec<NewUrl>,
    waiting: HashSet<UrlId>,
    pub(super) held: Vec<HeldMedia>,
}

impl PendingPage {
    pub fn waits_for(&self, url: UrlId) -> bool {
        self.waiting.contains(&url)
    }
    pub fn stop_waiting(&mut self, url: UrlId) {
        self.waiting.remove(&url);
    }
    pub fn ready(&self) -> bool {
        self.waiting.is_empty()
    }
    pub fn held_bytes(&self) -> u64 {
        self.held
            .iter()
            .filter_map(|h| h.bytes.as_ref())
            .map(|b| b.len() as u64)
            .sum()
    }
}

impl HostWork {
    /// A 2xx body: media is hashed and matched, HTML is mined for links, anything else just
    /// completes the URL.
    pub(crate) async fn process_body(
        &mut self,
        cx: &Context,
        url: UrlRecord,
        response: Response,
    ) -> Result<(), StoreError> {
        match response.kind {
            BodyKind::Media(_) => {
                self.start_hashing(url, response);
                Ok(())
            }
            BodyKind::Html if url.source != UrlSource::Embed => {
                self.process_page(cx, url, response).await
            }
            _ if crate::archive::sniff(&response.body).is_some() => {
                self.process_archive(cx, url, response).await
            }
            _ => {
                self.complete(cx, &url, &outcome_of(&response, UrlNext::Done))
                    .await?;
                self.media_gone(cx, &url).await
            }
        }
    }

    /// Media hashed and matched ([`super::hashing`]): recorded for the pages waiting for
    /// it, or as media on its own.
    pub(super) async fn media_hashed(
        &mut self,
        cx: &Context,
        url: UrlRecord,
        response: Response,
        hashed: Hashed,
    ) -> Result<(), StoreError> {
        let media = match hashed {
            Ok(Ok(media)) => media,
            Ok(Err(error)) => {
                return self
                    .unreadable(cx, &url, &response, &error.to_string())
                    .await;
            }
            Err(error) => {
                return self
                    .unreadable(cx, &url, &response, &error.to_string())
                    .await;
            }
        };
        Counters::bump(&cx.counters.media);
        let now = now_ms();
        let page = match url.source {
            UrlSource::Embed | UrlSource::Link => url.parent_id,
            _ => None,
        };
        let server_ip = response.server_ip.map(|ip| ip.to_string());
        let matched = !media.matches.is_empty();
        if matched {
            Counters::bump(&cx.counters.matches);
        }
        let mut outcome = outcome_of(&response, UrlNext::Done);
        if let Some(why) = &media.undecodable {
            // Recorded and matched by its digests; fetching it again would not decode it.
            outcome.error = Some(format!("unreadable media: {why}"));
            Counters::bump(&cx.counters.errors);
        }
        self.sighted_on_other_pages(cx, &media, &url, page, now)
            .await?;
        if let Some(at) = self.pending.iter().position(|p| p.waits_for(url.id)) {
            let keep = !matched
                && self.held_bytes + response.body.len() as u64 <= cx.config.max_held_bytes;
            if keep {
                self.held_bytes += response.body.len() as u64;
            }
            if let Some(pending) = self.pending.get_mut(at) {
                pending.stop_waiting(url.id);
                pending.held.push(HeldMedia {
                    seen: SeenMedia {
                        sighting: NewSighting {
                            media_sha256: media.record.sha256,
                            url: url.id,
                            page,
                            member_path: None,
                            seen_at: now,
                            server_ip,
                        },
                        media: media.record,
                        matches: media.matches,
                    },
                    matched,
                    bytes: keep.then(|| response.body.clone()),
                    url,
                    outcome,
                });
            }
            return self.settle_ready(cx).await;
        }
        let turn = cx.writes.take().await;
        let recorded =
            record_sighting(&cx.store, &media, url.id, page, None, server_ip, now).await?;
        drop(turn);
        let seen = Sighted {
            matched,
            sha256: media.record.sha256,
            sighting: recorded.sighting,
            page,
        };
        let bytes = Some(response.body.clone());
        super::verdict::embedded_elsewhere(cx, &seen, &recorded.also_on, bytes.clone()).await?;
        self.direct_media(cx, seen, bytes).await?;
        self.complete(cx, &url, &outcome).await
    }

    /// Every pending page that waits for `url` embeds the media: each gets its own sighting
    /// (the crawl may have reached it before the page that queued the URL), and all but the
    /// first stop waiting; the first holds the media as usual.
    async fn sighted_on_other_pages(
        &mut self,
        cx: &Context,
        media: &MatchedMedia,
        url: &UrlRecord,
        recorded_for: Option<UrlId>,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let waiting: Vec<UrlId> = self
            .pending
            .iter()
            .filter(|p| p.waits_for(url.id))
            .map(|p| p.url.id)
            .collect();
        for (nth, page_id) in waiting.into_iter().enumerate() {
            if Some(page_id) != recorded_for {
                record_sighting(&cx.store, media, url.id, Some(page_id), None, None, now).await?;
            }
            if nth > 0
                && let Some(page) = self.pending.iter_mut().find(|p| p.url.id == page_id)
            {
                page.stop_waiting(url.id);
            }
        }
        Ok(())
    }

    /// Media not waited for by a page of this lease: reported directly, linked rather than
    /// embedded, on another host, or fetched again after a restart.
    pub(super) async fn direct_media(
        &mut self,
        cx: &Context,
        seen: Sighted,
        bytes: Option<Bytes>,
    ) -> Result<(), StoreError> {
        let Sighted {
            matched,
            sha256,
            sighting,
            page,
        } = seen;
        let facts = cx.store.crawl_facts();
        let now = now_ms();
        if matched {
            // Its page was settled without knowing: fetch the page again so its links are
            // followed and its other media reviewed.
            if let Some(page) = page {
                cx.store
                    .frontier()
                    .schedule_recheck(page, now, Priority::MatchLink)
                    .await?;
            }
            return Ok(());
        }
        let reason = if page.is_none() {
            Some(ReviewReason::Reported)
        } else if let Some(page) = page
            && facts.page_has_match(page).await?
        {
            Some(ReviewReason::OnMatchingPage)
        } else {
            None
        };
        if let Some(reason) = reason
            && queue_for_review(
                &cx.store,
                &cx.sink,
                &cx.cpu,
                ForReview {
                    sha256,
                    sighting,
                    reason,
                },
                bytes,
                now,
            )
            .await?
                == Reviewed::Queued
        {
            Counters::bump(&cx.counters.review);
        }
        Ok(())
    }

    async fn unreadable(
        &mut self,
        cx: &Context,
        url: &UrlRecord,
        response: &Response,
        why: &str,
    ) -> Result<(), StoreError> {
        let outcome = FetchOutcome {
            error: Some(format!("unreadable media: {why}")),
            ..outcome_of(response, UrlNext::Failed)
        };
        self.complete(cx, url, &outcome).await?;
        Counters::bump(&cx.counters.errors);
        self.media_gone(cx, url).await
    }

    async fn process_page(
        &mut self,
        cx: &Context,
        url: UrlRecord,
        response: Response,
    ) -> Result<(), StoreError> {
        let body = response.body.clone();
        let base = response.final_url.clone();
        let content_type = response.content_type.clone();
        let config = cx.extract.clone();
        let found = cx
            .cpu
            .run(move || extract(&body, &base, content_type.as_deref(), &config))
            .await;
        let outcome = outcome_of(&response, UrlNext::Done);
        let Ok(found) = found else {
            return self.complete(cx, &url, &outcome).await;
        };
        Counters::bump(&cx.counters.pages);
        let now = now_ms();
        let embed = Origin {
            source: UrlSource::Embed,
            priority: url.priority,
            depth: url.depth.saturating_add(1),
            parent: Some(url.id),
            report: None,
            // Media sort before the host's other URLs of the same priority, so the page's
            // verdict comes soon.
            not_before: 0,
        };
        // A link straight to a media file (a gallery's full-size photo, a directory listing's
        // files) is the page's media as much as an <img> is.
        let (linked_media, page_links): (Vec<Url>, Vec<Url>) =
            found.page_links.into_iter().partition(looks_like_media);
        let media_links: Vec<Url> = found.media_links.into_iter().chain(linked_media).collect();
        let media: Vec<NewUrl> = self.entries(cx, &media_links, &embed);
        let enqueued = cx
            .enqueues
            .enqueue(&cx.store, &cx.writes, &self.lease, &media)
            .await?;
        self.fetch_first(&media, &enqueued, now);
        // A URL of this host held by a settlement still being written looks queued and
        // unfetched: wait for it, or the page would wait for media never fetched again.
        self.settled().await?;
        let waiting = self.seen_media(cx, &url, &enqueued).await?;
        let link = Origin {
            source: UrlSource::Link,
            not_before: now,
            ..embed
        };
        let links = if link.depth <= cx.config.budgets.max_depth {
            self.entries(cx, &page_links, &link)
        } else {
            Vec::new()
        };
        self.pending.push(PendingPage {
            url,
            outcome,
            links,
            waiting,
            held: Vec::new(),
        });
        self.settle_ready(cx).await
    }

    /// The page's new media on this host, taken under the lease as they were queued, go
    /// before the host's other URLs: its verdict comes soon, and the hashing pool is fed
    /// while the host's other pages are still to come.
    fn fetch_first(&mut self, media: &[NewUrl], enqueued: &[EnqueuedUrl], now: UnixMillis) {
        let taken = media
            .iter()
            .zip(enqueued)
            .filter(|(_, e)| e.inserted && e.host_id == self.host.id)
            .map(|(new, e)| UrlRecord {
                id: e.id,
                host_id: e.host_id,
                url: new.url.clone(),
                source: new.source,
                priority: new.priority,
                depth: new.depth,
                state: UrlState::Queued,
                next_fetch_at: new.next_fetch_at,
                attempts: 0,
                last_status: None,
                last_fetched_at: None,
                etag: None,
                last_modified: None,
                report_id: new.report_id,
                parent_id: new.parent,
                created_at: now,
            });
        self.take_first(taken.collect());
    }

    fn entries(&self, cx: &Context, urls: &[Url], origin: &Origin) -> Vec<NewUrl> {
        urls.iter()
            .filter_map(|u| frontier_entry(u, &cx.canonical, &*cx.deny).ok())
            .map(|(u, key, domain)| new_url(&u, key, domain, origin))
            .collect()
    }

    /// The media URLs this page waits for (new, on this host); media already fetched for
    /// another page are recorded as sighted here too, with their matches.
    async fn seen_media(
        &mut self,
        cx: &Context,
        page: &UrlRecord,
        enqueued: &[EnqueuedUrl],
    ) -> Result<HashSet<UrlId>, StoreError> {
        let mut waiting = HashSet::new();
        let now = now_ms();
        for entry in enqueued {
            if entry.inserted {
                if entry.host_id == self.host.id {
                    waiting.insert(entry.id);
                }
                continue;
            }
            let shas = cx.store.crawl_facts().media_at_url(entry.id).await?;
            if shas.is_empty()
                && entry.host_id == self.host.id
                && self.still_queued(cx, entry.id).await?
            {
                // Queued for another page and not fetched yet: this page waits for it too,
                // so its sighting here is recorded whichever page the crawl reached first.
                waiting.insert(entry.id);
                continue;
            }
            for sha in shas {
                let Some(known) = cx.store.media().get(&sha).await? else {
                    continue;
                };
                let matches = rematch(cx, &sha, &known.record).await?;
                let media = MatchedMedia {
                    record: known.record,
                    matches,
                    undecodable: None,
                };
                record_sighting(&cx.store, &media, entry.id, Some(page.id), None, None, now)
                    .await?;
            }
        }
        Ok(waiting)
    }

    async fn still_queued(&self, cx: &Context, url: UrlId) -> Result<bool, StoreError> {
        let record = cx.store.frontier().url(url).await?;
        Ok(record.is_some_and(|r| r.state == UrlState::Queued))
    }

    /// The page's media are all in: decide, follow, review, complete. The page's media,
    /// links and (when no review must come first) its own completion are one settlement,
    /// written with other hosts' pages in one transaction ([`super::commit`]) by a task of
    /// its own ([`super::verdict::write`]), while the host makes its next request: nothing
    /// of the page is acknowledged before that commit, and a kill before it leaves the page
    /// and its media in flight for the next lease holder.
    pub(crate) async fn settle(
        &mut self,
        cx: &Context,
        page: PendingPage,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let facts = cx.store.crawl_facts();
        let matched =
            page.held.iter().any(|h| h.matched) || facts.page_has_match(page.url.id).await?;
        if matched {
            self.quiet_pages = 0;
        } else {
            self.quiet_pages += 1;
        }
        let reported = matches!(page.url.source, UrlSource::Report | UrlSource::Seed);
        let links: Vec<NewUrl> = if matched || reported {
            let priority = HostWork::link_priority(matched);
            page.links
                .iter()
                .cloned()
                .map(|l| NewUrl { priority, ..l })
                .collect()
        } else {
            Vec::new()
        };
        let mut completed = HashSet::new();
        let mut completions: Vec<(UrlId, FetchOutcome)> = page
            .held
            .iter()
            .filter(|held| completed.insert(held.url.id))
            .map(|held| (held.url.id, held.outcome.clone()))
            .collect();
        if !matched {
            // Nothing to review: the page completes with its media and links.
            completions.push((page.url.id, page.outcome.clone()));
        }
        let settlement = PageSettlement {
            lease: self.lease.clone(),
            seen: page.held.iter().map(|h| h.seen.clone()).collect(),
            completions,
            links,
            raise_known_to: matched.then_some(Priority::MatchLink),
            // The verdict was read before the transaction: a match another host's worker
            // committed since (its recheck of this page, in flight, did nothing) is looked
            // for again inside it, and the page queued again if there is one.
            requeue_if_matched: (!matched).then_some((page.url.id, Priority::MatchLink)),
        };
        // The host goes on with its next request while the settlement is written; its
        // next settlement, a page mined or the lease's release waits for this one.
        self.settled().await?;
        let cx = Arc::clone(&self.shared);
        let lease = self.lease.clone();
        self.settling = Some(tokio::spawn(async move {
            super::verdict::write(&cx, &lease, page, settlement, matched, now).await
        }));
        Ok(())
    }
}

/// File extensions of media and archives, for links that point straight at them.
const MEDIA_EXTENSIONS: [&str; 16] = [
    "jpg", "jpeg", "png", "gif", "webp", "bmp", "mp4", "webm", "mkv", "avi", "mov", "zip", "tar",
    "tgz", "gz", "m4v",
];

fn looks_like_media(url: &Url) -> bool {
    let last = url.path().rsplit('/').next().unwrap_or("");
    last.rsplit_once('.')
        .is_some_and(|(_, ext)| MEDIA_EXTENSIONS.iter().any(|m| m.eq_ignore_ascii_case(ext)))
}

/// The matches of media already recorded, seen again on another page: its digests and PDQ
/// against today's banks, and for video the frame and video matches of its first sighting
/// (frames are not kept, so they cannot be matched again).
async fn rematch(
    cx: &Context,
    sha256: &[u8; 32],
    record: &aranea_store::MediaRecord,
) -> Result<Vec<TimedMatch>, StoreError> {
    let mut matches = untimed(cx.matcher.match_record(record));
    let is_video = aranea_hash::MediaKind::from_name(&record.kind).is_some_and(|k| k.is_video());
    if is_video && let Some(first) = cx.store.media().sightings_of(sha256).await?.first() {
        for earlier in cx.store.media().timed_matches_of(first.id).await? {
            let known = matches.iter().any(|m| {
                m.hit.bank_id == earlier.hit.bank_id && m.hit.entry_id == earlier.hit.entry_id
            });
            if !known {
                matches.push(earlier);
            }
        }
    }
    Ok(matches)
}
