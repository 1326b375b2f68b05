//! The re-check stage: noticed URLs are re-fetched on their schedule (+1 h, +6 h, then every
//! 24 h by default) until two consecutive checks agree they are gone; the next notice is
//! scheduled (re-notice or escalation) while they stay; removed URLs stay watched, and the
//! same media at the same URL again opens a re-upload item. The pages a removed item's media
//! was seen on are handed back to the crawler at each watch check, so a copy put back under
//! another URL is found too.

use std::collections::BTreeSet;

use aranea_store::{CheckRecord, HostRevisit, ItemId, NewItem, NoticeItem, Priority, UrlId};

use super::{NoticeEngine, PassReport, ms};
use crate::NoticeError;
use crate::clock::{Clock, SystemClock, UnixMillis};
use crate::recheck::{self, CheckOutcome};

/// Items re-checked per pass at most.
const MAX_PER_PASS: i64 = 500;
/// Pages queued again per watch check of one removed item at most (a photo embedded on
/// thousands of pages must not flood the frontier).
const MAX_REVISITS_PER_ITEM: usize = 100;

impl NoticeEngine {
    pub(super) async fn recheck_due(&self, report: &mut PassReport) -> Result<(), NoticeError> {
        let now = self.clock.now();
        let due = self
            .store
            .notices()
            .items_due_check(now, MAX_PER_PASS)
            .await?;
        if due.is_empty() {
            return Ok(());
        }
        let fetcher = aranea_crawl::fetch::Fetcher::new(self.fetch.clone()).map_err(|e| {
            NoticeError::Setup {
                message: e.to_string(),
            }
        })?;
        for item in due {
            let found = recheck::check(
                &fetcher,
                &item.url,
                &item.sha256,
                item.pdq.as_deref(),
                self.config.pdq_threshold,
            )
            .await;
            let at = self.clock.now();
            report.checked += 1;
            if item.state == "removed" {
                self.watch(
                    &item,
                    found.outcome,
                    found.http_status,
                    &found.detail,
                    at,
                    report,
                )
                .await?;
                continue;
            }
            let mut record = CheckRecord {
                at,
                outcome: found.outcome.as_str().to_owned(),
                http_status: found.http_status,
                detail: found.detail.clone(),
                next_check_at: None,
                pending: None,
                removed: None,
            };
            let confirm = at.saturating_add(ms(self.config.confirm_after_secs));
            match found.outcome {
                outcome if outcome.is_removal() => {
                    match (&item.pending_outcome, item.pending_since) {
                        (Some(first), Some(since)) => {
                            // Two consecutive removal observations: removed since the first. A
                            // placeholder is recorded as such even if the first saw a 404.
                            let kind = if outcome == CheckOutcome::Placeholder {
                                "placeholder".to_owned()
                            } else {
                                first.clone()
                            };
                            record.removed = Some((kind, since));
                            record.next_check_at =
                                Some(at.saturating_add(ms(self.config.watch_every_secs)));
                            report.removed += 1;
                        }
                        _ => {
                            record.pending = Some((outcome.as_str().to_owned(), at));
                            record.next_check_at = Some(confirm);
                        }
                    }
                }
                CheckOutcome::Inconclusive => {
                    record.pending = item.pending_outcome.clone().zip(item.pending_since);
                    record.next_check_at = Some(confirm);
                }
                _ => {
                    record.next_check_at = Some(self.next_regular_check(&item, at));
                }
            }
            self.store
                .notices()
                .record_check(ItemId(item.id), &record)
                .await?;
            if found.outcome == CheckOutcome::Present {
                self.schedule_next_notice(&item).await?;
            }
        }
        Ok(())
    }

    /// Checks go at the configured offsets from the first notice (as gaps between them),
    /// then every interval.
    fn next_regular_check(&self, item: &NoticeItem, at: UnixMillis) -> UnixMillis {
        let offsets = &self.config.recheck_after_secs;
        let k = usize::try_from(item.checks_done).unwrap_or(usize::MAX);
        let gap = match (
            offsets.get(k),
            k.checked_add(1).and_then(|n| offsets.get(n)),
        ) {
            (Some(a), Some(b)) if b > a => b - a,
            _ => self.config.recheck_every_secs,
        };
        at.saturating_add(ms(gap))
    }

    /// Still present: the next notice is due `renotify` after the last one (whether it is a
    /// reminder or an escalation is decided when it is composed).
    async fn schedule_next_notice(&self, item: &NoticeItem) -> Result<(), NoticeError> {
        if item.pending_notice_id.is_some() || item.notice_due_at.is_some() {
            return Ok(());
        }
        let Some(last) = item.last_notice_at else {
            return Ok(());
        };
        let due = last.saturating_add(ms(self.config.renotify_secs));
        self.store
            .notices()
            .schedule_notice(ItemId(item.id), due, item.escalation_level)
            .await?;
        Ok(())
    }

    /// A removed URL checked again: the same media back at the same URL is a re-upload.
    async fn watch(
        &self,
        item: &NoticeItem,
        outcome: CheckOutcome,
        http_status: Option<u16>,
        detail: &str,
        at: UnixMillis,
        report: &mut PassReport,
    ) -> Result<(), NoticeError> {
        let record = CheckRecord {
            at,
            outcome: format!("watch_{}", outcome.as_str()),
            http_status,
            detail: detail.to_owned(),
            next_check_at: Some(at.saturating_add(ms(self.config.watch_every_secs))),
            pending: None,
            removed: None,
        };
        self.store
            .notices()
            .record_check(ItemId(item.id), &record)
            .await?;
        report.revisits += self.revisit_pages(item).await?;
        report.revisits += self.revisit_neighbours(item, at, report).await?;
        if outcome != CheckOutcome::Present {
            return Ok(());
        }
        let Ok(attribution) = self.attributor.attribute(&item.url, at).await else {
            return Ok(());
        };
        let reopened = NewItem {
            sighting_id: item.sighting_id,
            url: item.url.clone(),
            sha256: item.sha256.clone(),
            md5: item.md5.clone(),
            sha1: item.sha1.clone(),
            pdq: item.pdq.clone(),
            media_kind: item.media_kind.clone(),
            classification: item.classification.clone(),
            first_seen_at: at,
            reupload_of: Some(ItemId(item.id)),
            ..self.item_attribution(&attribution, at)
        };
        if self
            .store
            .notices()
            .open_item(&reopened, at)
            .await?
            .is_some()
        {
            report.reuploads += 1;
        }
        Ok(())
    }

    /// Queues every page the removed media was seen on for the crawler to fetch again
    /// ([`Priority::Recheck`]); returns how many were queued. A re-upload is usually put
    /// back on the page it was taken from under a new URL, which only a new fetch of the
    /// page finds (the crawler fetches a page once otherwise); the match it records is then
    /// ingested as a re-upload of this item. Pages queued or in flight already are left
    /// alone. The frontier's times are the crawler's, the real clock, whatever this
    /// engine's clock is (the demo's runs days ahead).
    async fn revisit_pages(&self, item: &NoticeItem) -> Result<usize, NoticeError> {
        let Some(sha256) = crate::recheck::hash32_from_hex(&item.sha256) else {
            return Ok(0);
        };
        let sightings = self.store.media().sightings_of(&sha256).await?;
        // A sighting whose page is its own URL was fetched directly: the watch check above
        // fetched that URL already.
        let pages: BTreeSet<UrlId> = sightings
            .iter()
            .filter(|s| s.page != s.url)
            .map(|s| s.page)
            .collect();
        let at = SystemClock.now();
        let mut queued = 0;
        for page in pages.into_iter().take(MAX_REVISITS_PER_ITEM) {
            if self
                .store
                .frontier()
                .schedule_recheck(page, at, Priority::Recheck)
                .await?
            {
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// Sends the crawler back to the known sites of the removed item's provider around its
    /// server: a provider's customer whose photo was taken down often puts it up again on
    /// another of their sites there, on pages where nothing was ever noticed. Candidates are
    /// the hosts the crawler fetched anything from at an address of the removed copy's
    /// neighbourhood ([`neighbourhood`]); each must attribute to the item's provider now.
    /// Each host's done pages go back to the frontier at [`Priority::Recheck`] at most once
    /// per `revisit_host_every_secs` (the store keeps the time, shared by every worker), at
    /// the crawl's own pace. A site nothing links to, or on another network of the
    /// provider, stays out of reach. Returns the pages queued.
    async fn revisit_neighbours(
        &self,
        item: &NoticeItem,
        at: UnixMillis,
        report: &mut PassReport,
    ) -> Result<usize, NoticeError> {
        if self.config.revisit_hosts == 0 {
            return Ok(0);
        }
        let Some(sha256) = crate::recheck::hash32_from_hex(&item.sha256) else {
            return Ok(0);
        };
        let servers: BTreeSet<std::net::IpAddr> = self
            .store
            .media()
            .sightings_of(&sha256)
            .await?
            .iter()
            .filter_map(|s| s.server_ip.as_deref()?.parse().ok())
            .collect();
        let addresses: Vec<String> = servers
            .into_iter()
            .take(aranea_store::MAX_REVISIT_ADDRESSES / 256)
            .flat_map(neighbourhood)
            .collect();
        let min_interval_ms = ms(self.config.revisit_host_every_secs);
        // Hosts revisited within the interval are left out before attribution: the revisit
        // would refuse them, and every watch check of every removal around them would
        // otherwise look each up again.
        let hosts = self
            .store
            .frontier()
            .hosts_served_from(
                &addresses,
                self.config.revisit_hosts,
                at.saturating_sub(min_interval_ms.max(0)),
            )
            .await?;
        let fetch_at = SystemClock.now();
        let mut queued = 0;
        for host in hosts {
            let same_provider = self
                .attributor
                .attribute(&format!("{host}/"), at)
                .await
                .is_ok_and(|a| a.provider_key == item.provider_key);
            if !same_provider {
                continue;
            }
            let revisit = HostRevisit {
                host_key: &host,
                at,
                min_interval_ms,
                fetch_at,
                pages: self.config.revisit_pages_per_host,
                priority: Priority::Recheck,
            };
            if let Some(pages) = self.store.frontier().revisit_host(&revisit).await? {
                report.revisited_hosts += 1;
                queued += pages;
            }
        }
        Ok(queued)
    }
}

/// The addresses sharing all but the last 8 bits with `server`: its /24 for IPv4, /120 for
/// IPv6. Shared hosting and one customer's servers sit there; a whole announced prefix (a
/// large provider's /12) would send the crawler to thousands of unrelated sites.
fn neighbourhood(server: std::net::IpAddr) -> Vec<String> {
    match server {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            (0..=255u8)
                .map(|d| std::net::Ipv4Addr::new(a, b, c, d).to_string())
                .collect()
        }
        std::net::IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            (0..=255u8)
                .map(|last| {
                    octets[15] = last;
                    std::net::Ipv6Addr::from(octets).to_string()
                })
                .collect()
        }
    }
}
