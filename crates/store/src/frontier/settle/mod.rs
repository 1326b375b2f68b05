//! A page settled in one write transaction: the media the crawler fetched for it (media rows,
//! sightings, matches) and the completions of the page and those media URLs, all or nothing.
//! On SQLite, where writers take turns on one lock, this is one turn per page instead of one
//! per media file plus one for the completions.
//!
//! Must not decide anything: what counts as the page's media and what each completion says
//! come from the crawler, as for [`Frontier::complete_urls`] and
//! [`crate::MediaStore::record_seen`].
//!
//! Here the public calls and the one transaction of a batch ([`settle_in_transaction!`]);
//! the pages written together in [`together`], each page alone (the fallback) in [`alone`],
//! what is planned before writing in [`plan`].

mod alone;
mod plan;
mod together;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use self::alone::settle_alone;
use self::together::{settle_together, writable_together};
use super::enqueue::{HostLocks, check_batch, host_ids_in};
use super::lease::{CompletionRow, hold_leases};
use super::{Completion, EnqueuedUrl, FetchOutcome, Lease, NewUrl, Priority, UrlId};
use crate::UnixMillis;
use crate::backend::{Dialect, Get, on_backend};
use crate::error::StoreError;
use crate::media::{MediaRecord, NewSighting, SightingId, TimedMatch, catch_up_embeds, check_seen};

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
    ///
    /// [`Frontier::settle_pages`] of this one page without links, so that it takes its rows
    /// in the one order of every settlement (media by SHA-256, sightings by their unique key,
    /// not in `seen`'s order): a settlement listing the same photos in another order would
    /// otherwise hold the rows this one waits for on PostgreSQL. Answered in `seen`'s order.
    pub async fn settle_page(
        &self,
        lease: &Lease,
        seen: &[SeenMedia],
        urls: &[(UrlId, &FetchOutcome)],
        now: UnixMillis,
    ) -> Result<SettledPage, StoreError> {
        let page = PageSettlement {
            lease: lease.clone(),
            seen: seen.to_vec(),
            completions: urls
                .iter()
                .map(|(url, outcome)| (*url, (*outcome).clone()))
                .collect(),
            links: Vec::new(),
            raise_known_to: None,
            requeue_if_matched: None,
        };
        let settled = self.settle_pages(std::slice::from_ref(&page), now).await?;
        // `settle_pages` answers every page it is given; without an answer the page was not
        // written, as `settle_pages` itself says of a page before it answers.
        match settled.into_iter().next() {
            Some(settled) => settled.map(|settled| settled.page),
            None => Err(lease.lost()),
        }
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
    /// [`Frontier::schedule_recheck`]).
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
    /// all or nothing, so one lost lease or refused field fails that page alone. Returns one
    /// result per page, in order; `Err` as a whole only when the transaction itself could not
    /// be opened or committed, and then nothing was written.
    ///
    /// Per page, in this order: its media with sightings and matches (as
    /// [`crate::MediaStore::record_seen`], embeds included), its links enqueued (known ones
    /// raised to `raise_known_to`), its completions (under its lease).
    ///
    /// The results are those of settling the pages one after the other, but the pages whose
    /// lease holds are written together, a few multi-row statements for the whole batch (on
    /// SQLite each statement is a round trip to the connection's thread, and the batch holds
    /// the process's one write turn): see [`settle_together!`]. If that fails (a page the
    /// checks let through but the database refuses, or a completion of a URL not in its
    /// lease), the transaction is undone and each live page is written by [`settle_alone!`]
    /// in a transaction of its own, so the failure is that page's alone (its transaction's
    /// opening or commit failing too). Not one after the other in one transaction: that
    /// would take the pages' media and sighting rows in the batch's page order, against the
    /// one order of every other writer (see [`settle_in_transaction!`]).
    pub async fn settle_pages(
        &self,
        pages: &[PageSettlement],
        now: UnixMillis,
    ) -> Result<Vec<Result<SettledLinks, StoreError>>, StoreError> {
        let mut results: Vec<Result<SettledLinks, StoreError>> = Vec::with_capacity(pages.len());
        // The pages the checks accept, by index, with their completions.
        let mut accepted: Vec<(usize, Vec<CompletionRow>)> = Vec::new();
        for (index, page) in pages.iter().enumerate() {
            let checked = page
                .seen
                .iter()
                .try_for_each(|s| check_seen(&s.media, &s.sighting, &s.matches))
                .and_then(|()| check_batch(&page.links));
            match checked {
                Err(refused) => results.push(Err(refused)),
                Ok(()) => {
                    // Answered below.
                    results.push(Err(page.lease.lost()));
                    let rows = page
                        .completions
                        .iter()
                        .map(|(url, outcome)| CompletionRow::new(*url, outcome, now))
                        .collect();
                    accepted.push((index, rows));
                }
            }
        }
        on_backend!(self.backend, |pool, d| {
            // The whole batch in one transaction; the pages it leaves unwritten (when it is
            // undone) each in one of their own. A batch of one page falls back in its own.
            let mut groups: Vec<Vec<&(usize, Vec<CompletionRow>)>> =
                vec![accepted.iter().collect()];
            let mut writing = if accepted.len() <= 1 {
                Writing::TogetherElseAlone
            } else {
                Writing::Together
            };
            while !groups.is_empty() {
                let mut unwritten = Vec::new();
                for group in &groups {
                    let batch: Vec<(&PageSettlement, &[CompletionRow])> = group
                        .iter()
                        .filter_map(|(index, rows)| Some((pages.get(*index)?, rows.as_slice())))
                        .collect();
                    let written = async {
                        Ok::<_, StoreError>(settle_in_transaction!(pool, d, &batch, now, writing))
                    }
                    .await;
                    let answers = match written {
                        Ok(answers) => answers,
                        // Nothing written: the batch's failure is the call's, a page's its own.
                        Err(failed) if writing != Writing::Alone => return Err(failed),
                        Err(failed) => vec![Some(Err(failed))],
                    };
                    for (page, answer) in group.iter().zip(answers) {
                        match answer {
                            Some(answer) => {
                                if let Some(slot) = results.get_mut(page.0) {
                                    *slot = answer;
                                }
                            }
                            None => unwritten.push(vec![*page]),
                        }
                    }
                }
                groups = unwritten;
                writing = Writing::Alone;
            }
            Ok::<_, StoreError>(())
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

/// How a transaction of [`Frontier::settle_pages`] writes its live pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Writing {
    /// Together ([`settle_together!`]); if they cannot be, the transaction is undone.
    Together,
    /// Together, else each by [`settle_alone!`] in a savepoint (a batch of one page).
    TogetherElseAlone,
    /// Each by [`settle_alone!`] in a savepoint (the fallback, one page a transaction).
    Alone,
}

/// One write transaction of [`Frontier::settle_pages`] on `$pool` (dialect `$d`), settling
/// `$batch` (its pages the checks accepted, with their completions) as `$writing` says;
/// evaluates to one answer per page, in order: `Some` result if its lease was lost or it was
/// written (or refused), `None` if it is live but the pages could not be written together
/// and the transaction was undone ([`Writing::Together`]).
///
/// Its row locks in the one order of every settlement, so that concurrent settlements on
/// PostgreSQL cannot wait for each other's rows: its host rows first (see `HostLocks`: the
/// hosts its live pages' links create, by key, then all of them by key, its leases' too),
/// then its media rows by SHA-256 and its sightings by their unique key ([`sight_together!`],
/// [`settle_alone!`]), then URL rows on hosts it holds. Which pages are live is seen
/// before the locks, to create their links' hosts first, and checked again under them: a
/// lease live only at the second look (renewed in between) undoes the transaction, which
/// starts over creating that lease's pages' hosts too, rather than create them with host
/// rows held (`tests/settle_lock_order.rs`, the renewed lease).
///
/// [`sight_together!`]: together::sight_together!
macro_rules! settle_in_transaction {
    ($pool:ident, $d:ident, $batch:expr, $now:expr, $writing:expr) => {{
        let pages: &[(&PageSettlement, &[CompletionRow])] = $batch;
        let now: UnixMillis = $now;
        let writing: Writing = $writing;
        let mut leases: Vec<&Lease> = Vec::new();
        for (page, _) in pages {
            if !leases.contains(&&page.lease) {
                leases.push(&page.lease);
            }
        }
        let key = |lease: &Lease| (lease.host_id.0, lease.owner.clone(), lease.epoch);
        // The leases whose pages' new hosts are created before any host row is locked: those
        // live at the unlocked look, and those found live by an attempt undone below.
        let mut maybe_live: HashSet<(i64, String, i64)> = HashSet::new();
        let (mut tx, held) = loop {
            let mut tx = $pool.begin_with($d.begin_write()).await?;
            if $d == Dialect::Postgres {
                // Every host row this transaction will lock, in the one order of
                // `HostLocks`: the hosts its live pages' links create, then all of them.
                maybe_live.extend(hold_leases!(tx, $d, &leases, now, false));
                let create: Vec<(&str, &str)> = pages
                    .iter()
                    .filter(|(page, _)| maybe_live.contains(&key(&page.lease)))
                    .flat_map(|(page, _)| &page.links)
                    .map(|link| (link.host_key.as_str(), link.registrable_domain.as_str()))
                    .collect::<BTreeMap<&str, &str>>()
                    .into_iter()
                    .collect();
                host_ids_in!(tx, &create, now);
                let ids: Vec<i64> = leases.iter().map(|lease| lease.host_id.0).collect();
                let keys: Vec<&str> = pages
                    .iter()
                    .flat_map(|(page, _)| &page.links)
                    .map(|link| link.host_key.as_str())
                    .collect::<BTreeSet<&str>>()
                    .into_iter()
                    .collect();
                let requeued: Vec<i64> = pages
                    .iter()
                    .filter_map(|(page, _)| page.requeue_if_matched)
                    .map(|(url, _)| url.0)
                    .collect();
                HostLocks::lock_hosts_in_order(&mut *tx, &ids, &keys, &requeued).await?;
            }
            // Every lease once, up front: on PostgreSQL the live ones stay locked until the
            // commit, as each page's own check would have kept them. This check is the one
            // that counts (a lease lost since the look above is lost).
            let held = hold_leases!(tx, $d, &leases, now);
            // A lease lost at the look above and live now (renewed in between, with a clock
            // behind ours): its pages' new hosts are not created, and `enqueue_in!` would
            // create them with host rows locked, against the one order. Undone (the locks
            // released) and planned again with it; each attempt undone adds a lease, so
            // this ends.
            let unplanned = pages.iter().any(|(page, _)| {
                let lease = key(&page.lease);
                !page.links.is_empty() && held.contains(&lease) && !maybe_live.contains(&lease)
            });
            if $d == Dialect::Postgres && unplanned {
                tx.rollback().await?;
                maybe_live.extend(held);
                continue;
            }
            break (tx, held);
        };
        let batch: Vec<(&PageSettlement, &[CompletionRow])> = pages
            .iter()
            .filter(|(page, _)| held.contains(&key(&page.lease)))
            .copied()
            .collect();
        let mut together = None;
        if writing != Writing::Alone && !batch.is_empty() && writable_together(&batch) {
            let mut sp = sqlx::Acquire::begin(&mut *tx).await?;
            let written: Result<Vec<SettledLinks>, StoreError> =
                async { Ok(settle_together!(sp, &batch, now)) }.await;
            match written {
                Ok(settled) => {
                    sp.commit().await?;
                    together = Some(settled);
                }
                Err(_) => sp.rollback().await?,
            }
        }
        let written: Option<Vec<Result<SettledLinks, StoreError>>> = match together {
            Some(settled) => Some(settled.into_iter().map(Ok).collect()),
            None if batch.is_empty() => Some(Vec::new()),
            None if writing != Writing::Together => {
                let mut settled = Vec::with_capacity(batch.len());
                for (page, rows) in &batch {
                    let mut sp = sqlx::Acquire::begin(&mut *tx).await?;
                    let written: Result<SettledLinks, StoreError> =
                        async { Ok(settle_alone!(sp, $d, page, *rows, now)) }.await;
                    match &written {
                        Ok(_) => sp.commit().await?,
                        Err(_) => sp.rollback().await?,
                    }
                    settled.push(written);
                }
                Some(settled)
            }
            None => None,
        };
        match written {
            Some(_) => tx.commit().await?,
            None => tx.rollback().await?,
        }
        let mut written = written.map(Vec::into_iter);
        pages
            .iter()
            .map(|(page, _)| {
                if !held.contains(&key(&page.lease)) {
                    return Some(Err(page.lease.lost()));
                }
                written
                    .as_mut()
                    .map(|w| w.next().unwrap_or_else(|| Err(page.lease.lost())))
            })
            .collect::<Vec<Option<Result<SettledLinks, StoreError>>>>()
    }};
}
use settle_in_transaction;
