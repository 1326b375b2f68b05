//! From the crawler's review queue to review items, and from items to analysts: grouping of
//! near-duplicates by PDQ (through an exact index), priority by exposure, serving each item to an analyst at most
//! once, the daily cap and break reminders.

use aranea_store::{Attach, ReviewItemId, UnixMillis};

use crate::Review;
use crate::access::Actor;
use crate::audit::{self, AuditAction};
use crate::error::ReviewError;
use crate::near_duplicates::NearDuplicates;

const DAY_MS: i64 = 86_400_000;
/// A pause this long between two items ends a stretch of continuous review.
const BREAK_GAP_MS: i64 = 10 * 60_000;

/// What [`Review::intake`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IntakeReport {
    /// New items opened.
    pub opened: usize,
    /// Media attached to an existing item as a near-duplicate.
    pub grouped: usize,
    /// Media decided negative before: closed without an item.
    pub known_negative: usize,
    /// Thumbnails made and sealed into the vault for media entering an item (needs the
    /// vault's secret key; one that fails here is made at the media's first view).
    pub thumbnails: usize,
    /// Exposure recounts of undecided items whose media the crawler sighted again since
    /// the last intake (an item is recounted once per 10,000 new sightings that name it).
    pub exposure_recounted: u64,
}

/// An analyst's exposure today, for the timer and break reminders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wellness {
    /// Items served since midnight UTC.
    pub served_today: u32,
    /// How many the analyst may be served per day.
    pub daily_cap: u32,
    /// Minutes of the current stretch of review (items less than 10 minutes apart).
    pub stretch_minutes: u32,
    /// Milliseconds of the current stretch, `None` when no stretch is running: where a
    /// live clock starts from.
    pub stretch_ms: Option<i64>,
    /// Minutes of review after which a break is due (configured).
    pub break_after_minutes: u32,
    /// Whether the stretch is longer than the configured break interval.
    pub break_due: bool,
}

impl Wellness {
    pub fn cap_reached(&self) -> bool {
        self.served_today >= self.daily_cap
    }
}

impl Review {
    /// Turns queued media into review items: known negatives are closed, media within the
    /// near-duplicate distance of an undecided item's PDQ joins that item, the rest opens
    /// new items; each media's blurred thumbnail is made and sealed into the vault. Then
    /// the undecided items whose media were sighted on more pages since are recounted, so
    /// the queue keeps serving the most exposed first as media spreads.
    /// Idempotent; run it after crawling or on a timer.
    pub async fn intake(&self, now: UnixMillis) -> Result<IntakeReport, ReviewError> {
        let desk = self.store().review_desk();
        let mut report = IntakeReport::default();
        let mut near = NearDuplicates::new(&desk.undecided_item_pdqs().await?)?;
        loop {
            let batch = desk.unassigned_queued_media(500).await?;
            if batch.is_empty() {
                report.exposure_recounted = desk.refresh_exposure_of_new_sightings(now).await?;
                return Ok(report);
            }
            for media in batch {
                if desk.is_negative(&media.sha256).await? {
                    desk.close_queued_media(&media.sha256).await?;
                    report.known_negative += 1;
                    continue;
                }
                let radius = self.config().near_duplicate_distance;
                loop {
                    let Some((item, distance)) =
                        media.pdq.as_ref().and_then(|p| near.nearest(p, radius))
                    else {
                        let item = desk.open_item(&media, now).await?;
                        if let Some(pdq) = &media.pdq {
                            near.push(item, pdq)?;
                        }
                        report.opened += 1;
                        break;
                    };
                    match desk
                        .attach_media(item, &media.sha256, distance, now)
                        .await?
                    {
                        Attach::Joined => report.grouped += 1,
                        Attach::AlreadyHeld => {}
                        // Decided since this intake listed the undecided items (an intake
                        // can run for minutes): joined to it, the media would never be
                        // served, decided or purged. Look again among those still open.
                        Attach::ItemDecided => {
                            near = NearDuplicates::new(&desk.undecided_item_pdqs().await?)?;
                            continue;
                        }
                    }
                    break;
                }
                // Decoded once here, so showing the item never decodes the original.
                if let Some(vault) = &self.inner.vault
                    && let Ok(Some(_)) = vault.thumbnail(&media.sha256).await
                {
                    report.thumbnails += 1;
                }
            }
        }
    }

    /// Today's exposure of the actor.
    pub async fn wellness(&self, actor: &Actor, now: UnixMillis) -> Result<Wellness, ReviewError> {
        let day_start = now - now.rem_euclid(DAY_MS);
        let served = self
            .store()
            .review_desk()
            .served_since(actor.user.id, day_start)
            .await?;
        let mut stretch_start = None;
        if let Some(&last) = served.last()
            && now - last < BREAK_GAP_MS
        {
            let mut start = last;
            for &t in served.iter().rev().skip(1) {
                if start - t >= BREAK_GAP_MS {
                    break;
                }
                start = t;
            }
            stretch_start = Some(start);
        }
        let stretch_ms = stretch_start.map(|s| (now - s).max(0));
        let stretch_minutes = u32::try_from(stretch_ms.unwrap_or(0) / 60_000).unwrap_or(u32::MAX);
        Ok(Wellness {
            served_today: u32::try_from(served.len()).unwrap_or(u32::MAX),
            daily_cap: actor.user.daily_cap.unwrap_or(actor.hotline.daily_cap),
            stretch_minutes,
            stretch_ms,
            break_after_minutes: self.config().break_after_minutes,
            break_due: stretch_minutes >= self.config().break_after_minutes,
        })
    }

    /// The item the analyst should classify next: one served earlier and not yet voted on,
    /// else the most exposed open item in their pool that they were never served, unless
    /// the daily cap is reached (then nothing, whatever is waiting).
    pub async fn next_item(
        &self,
        actor: &Actor,
        now: UnixMillis,
    ) -> Result<Option<ReviewItemId>, ReviewError> {
        actor.require_reviewer()?;
        let desk = self.store().review_desk();
        if let Some(pending) = desk.served_unvoted(actor.user.id).await?.first() {
            return Ok(Some(*pending));
        }
        if self.wellness(actor, now).await?.cap_reached() {
            return Ok(None);
        }
        let served = desk
            .serve_next_item(
                actor.user.id,
                &actor.hotline.code,
                actor.hotline.shares_review_pool,
                now,
            )
            .await?;
        if let Some(item) = served {
            audit::record(
                self.store(),
                actor.into(),
                AuditAction::View,
                &format!("item:{item}"),
                "served",
                now,
            )
            .await?;
        }
        Ok(served)
    }
}
