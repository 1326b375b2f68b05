//! A page settled in one write transaction: the media the crawler fetched for it (media rows,
//! sightings, matches) and the completions of the page and those media URLs, all or nothing.
//! On SQLite, where writers take turns on one lock, this is one turn per page instead of one
//! per media file plus one for the completions.
//!
//! Must not decide anything: what counts as the page's media and what each completion says
//! come from the crawler, as for [`Frontier::complete_urls`] and
//! [`crate::MediaStore::record_seen`].

use super::enqueue::{check_batch, enqueue_in, requeue_if_matched};
use super::lease::{CompletionRow, complete_in, hold_lease};
use super::{Completion, EnqueuedUrl, FetchOutcome, Lease, NewUrl, Priority, UrlId};
use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::StoreError;
use crate::media::{
    MediaRecord, NewSighting, SightingId, TimedMatch, catch_up_embeds, check_seen, record_seen_in,
};

/// Media seen, with its sighting and matches, to be written with a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenMedia {
    pub media: MediaRecord,
    pub sighting: NewSighting,
    pub matches: Vec<TimedMatch>,
}

/// What [`Frontier::settle_page`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettledPage {
    /// One sighting per [`SeenMedia`], in order.
    pub sightings: Vec<SightingId>,
    /// Per [`SeenMedia`], in order: the other pages embedding its URL, which got sightings
    /// of it too (see [`crate::MediaStore::record_seen`]).
    pub also_on: Vec<Vec<UrlId>>,
    /// One completion per URL, in order.
    pub completions: Vec<Completion>,
}

impl super::Frontier<'_> {
    /// Records `seen` (as [`crate::MediaStore::record_seen`] does, idempotently) and completes
    /// `urls` (as [`Frontier::complete_urls`] does, under `lease`) in one write transaction. A
    /// lost lease writes nothing and fails.
    pub async fn settle_page(
        &self,
        lease: &Lease,
        seen: &[SeenMedia],
        urls: &[(UrlId, &FetchOutcome)],
        now: UnixMillis,
    ) -> Result<SettledPage, StoreError> {
        for s in seen {
            check_seen(&s.media, &s.sighting, &s.matches)?;
        }
        let rows: Vec<CompletionRow> = urls
            .iter()
            .map(|(url, outcome)| CompletionRow::new(*url, outcome, now))
            .collect();
        let mut settled = on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            hold_lease!(tx, d, lease, now);
            let mut sightings = Vec::with_capacity(seen.len());
            let mut also_on = Vec::with_capacity(seen.len());
            for s in seen {
                let recorded = record_seen_in!(tx, &s.media, &s.sighting, &s.matches, now);
                sightings.push(recorded.sighting);
                also_on.push(recorded.also_on);
            }
            let completions = complete_in!(tx, lease, &rows, now);
            tx.commit().await?;
            Ok::<_, StoreError>(SettledPage {
                sightings,
                also_on,
                completions,
            })
        })?;
        let pairs: Vec<(&NewSighting, &[TimedMatch])> = seen
            .iter()
            .map(|s| (&s.sighting, s.matches.as_slice()))
            .collect();
        catch_up_embeds(self.backend, &pairs, &mut settled.also_on, now).await?;
        Ok(settled)
    }
}

/// Everything one page's verdict writes, for [`Frontier::settle_pages`].
#[derive(Clone, Debug)]
pub struct PageSettlement {
    pub lease: Lease,
    /// The page's media, held until its verdict (as for [`Frontier::settle_page`]).
    pub seen: Vec<SeenMedia>,
    /// Completions: the held media's URLs, and the page's own last when nothing else (review)
    /// must come before it.
    pub completions: Vec<(UrlId, FetchOutcome)>,
    /// The page's links to follow (as [`Frontier::enqueue_urls`]).
    pub links: Vec<NewUrl>,
    /// Known links (not inserted) are raised to this priority (a page with a match).
    pub raise_known_to: Option<Priority>,
    /// A page completed here on a verdict of "no match": if a match on it is recorded by the
    /// time its completion is written (media on another host, committed after the crawler
    /// looked), it is queued again at this priority in the same savepoint
    /// ([`SettledLinks::requeued`]), so it is fetched again and its links are followed after
    /// all. A match committed later finds the page completed (see
    /// [`Frontier::schedule_recheck`](super::Frontier::schedule_recheck)).
    pub requeue_if_matched: Option<(UrlId, Priority)>,
}

/// What [`Frontier::settle_pages`] wrote for one page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettledLinks {
    pub page: SettledPage,
    /// One per link, in order.
    pub links: Vec<EnqueuedUrl>,
    /// The page of [`PageSettlement::requeue_if_matched`] had a match and was queued again.
    pub requeued: bool,
}

impl super::Frontier<'_> {
    /// Settles many pages, of any leases, in one write transaction (group commit): each page
    /// all or nothing (a savepoint of its own), so one lost lease or refused field fails
    /// that page alone. Returns one result per page, in order; `Err` as a whole only when
    /// the transaction itself could not be opened or committed, and then nothing was written.
    ///
    /// Per page, in this order: its media with sightings and matches (as
    /// [`crate::MediaStore::record_seen`], embeds included), its links enqueued (known ones
    /// raised to `raise_known_to`), its completions (under its lease).
    pub async fn settle_pages(
        &self,
        pages: &[PageSettlement],
        now: UnixMillis,
    ) -> Result<Vec<Result<SettledLinks, StoreError>>, StoreError> {
        let checked: Vec<Result<Vec<CompletionRow>, StoreError>> = pages
            .iter()
            .map(|page| {
                for s in &page.seen {
                    check_seen(&s.media, &s.sighting, &s.matches)?;
                }
                check_batch(&page.links)?;
                Ok(page
                    .completions
                    .iter()
                    .map(|(url, outcome)| CompletionRow::new(*url, outcome, now))
                    .collect())
            })
            .collect();
        let mut results = on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let mut results = Vec::with_capacity(pages.len());
            for (page, rows) in pages.iter().zip(checked) {
                let rows = match rows {
                    Ok(rows) => rows,
                    Err(refused) => {
                        results.push(Err(refused));
                        continue;
                    }
                };
                let mut sp = sqlx::Acquire::begin(&mut *tx).await?;
                let written: Result<SettledLinks, StoreError> = async {
                    let lease = &page.lease;
                    hold_lease!(sp, d, lease, now);
                    let mut sightings = Vec::with_capacity(page.seen.len());
                    let mut also_on = Vec::with_capacity(page.seen.len());
                    for s in &page.seen {
                        let recorded = record_seen_in!(sp, &s.media, &s.sighting, &s.matches, now);
                        sightings.push(recorded.sighting);
                        also_on.push(recorded.also_on);
                    }
                    let links = enqueue_in!(sp, &page.links, now);
                    if let Some(priority) = page.raise_known_to {
                        let mut known: Vec<i64> = links
                            .iter()
                            .filter(|l| !l.inserted)
                            .map(|l| l.id.0)
                            .collect();
                        known.sort_unstable();
                        known.dedup();
                        for chunk in known.chunks(super::enqueue::ROWS_PER_STATEMENT) {
                            let sql = super::enqueue::raise_priorities_sql(chunk.len());
                            let mut query =
                                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(priority as i64);
                            for url in chunk {
                                query = query.bind(*url);
                            }
                            query.execute(&mut *sp).await?;
                        }
                    }
                    let completions = complete_in!(sp, lease, &rows, now);
                    // After the page's row is written (and, on PostgreSQL, locked): a match
                    // committed before this statement is seen here, one committed after it
                    // finds the page completed when its recheck locks the row.
                    let requeued = match page.requeue_if_matched {
                        Some((url, priority)) => requeue_if_matched!(sp, url, priority, now),
                        None => false,
                    };
                    Ok(SettledLinks {
                        page: SettledPage {
                            sightings,
                            also_on,
                            completions,
                        },
                        links,
                        requeued,
                    })
                }
                .await;
                match &written {
                    Ok(_) => sp.commit().await?,
                    Err(_) => sp.rollback().await?,
                }
                results.push(written);
            }
            tx.commit().await?;
            Ok::<_, StoreError>(results)
        })?;
        // PostgreSQL's embeds, once more after the commit (see `sight_embeds_in!`).
        for (page, result) in pages.iter().zip(results.iter_mut()) {
            if let Ok(settled) = result {
                let pairs: Vec<(&NewSighting, &[TimedMatch])> = page
                    .seen
                    .iter()
                    .map(|s| (&s.sighting, s.matches.as_slice()))
                    .collect();
                catch_up_embeds(self.backend, &pairs, &mut settled.page.also_on, now).await?;
            }
        }
        Ok(results)
    }
}
