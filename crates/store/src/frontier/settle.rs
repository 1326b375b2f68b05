//! A page settled in one write transaction: the media the crawler fetched for it (media rows,
//! sightings, matches) and the completions of the page and those media URLs, all or nothing.
//! On SQLite, where writers take turns on one lock, this is one turn per page instead of one
//! per media file plus one for the completions.
//!
//! Must not decide anything: what counts as the page's media and what each completion says
//! come from the crawler, as for [`Frontier::complete_urls`] and
//! [`crate::MediaStore::record_seen`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::enqueue::{
    HostLocks, ROWS_PER_STATEMENT, check_batch, enqueue_in, host_ids_in, push_tuples,
    raise_priorities_sql, requeue_if_matched, requeue_matched_in,
};
use super::lease::{CompletionRow, complete_in, complete_leased_in, hold_lease, hold_leases};
use super::{Completion, EnqueuedUrl, FetchOutcome, Lease, NewUrl, Priority, UrlId, UrlSource};
use crate::UnixMillis;
use crate::backend::{Dialect, Get, on_backend};
use crate::error::StoreError;
use crate::media::{
    INSERT_MEDIA_ROWS, INSERT_SIGHTINGS, INSERT_TIMED_MATCH_ROWS, MediaRecord, NewSighting,
    ON_MATCH_CONFLICT, ON_MEDIA_CONFLICT, ON_SIGHTING_CONFLICT, Recorded, SightingId, TimedMatch,
    catch_up_embeds, check_seen, sight_in, upsert_media_in,
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
/// [`settle_alone!`]), then URL rows on hosts it holds.
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
        let mut tx = $pool.begin_with($d.begin_write()).await?;
        if $d == Dialect::Postgres {
            // Every host row this transaction will lock, in the one order of
            // `HostLocks`: the hosts its live pages' links create, then all of them.
            let live = hold_leases!(tx, $d, &leases, now, false);
            let create: Vec<(&str, &str)> = pages
                .iter()
                .filter(|(page, _)| live.contains(&key(&page.lease)))
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

/// Whether the batch path can give the results of writing the pages one at a time: a
/// sighting of media other than the record written with it would meet (or not) another
/// page's media row depending on the order, so such a batch is written page by page.
fn writable_together(batch: &[(&PageSettlement, &[CompletionRow])]) -> bool {
    batch
        .iter()
        .flat_map(|(page, _)| &page.seen)
        .all(|s| s.sighting.media_sha256 == s.media.sha256)
}

/// One page settled alone inside the open savepoint `$tx` (the batch path's fallback, and
/// the reference it must agree with): evaluates to its [`SettledLinks`].
///
/// Its media rows by SHA-256, then its sightings by their unique key (each media's
/// sightings on the pages embedding its URL in page order, see [`crate::media::SIGHT_ALL`]),
/// as [`sight_together!`] takes them: on PostgreSQL each upsert locks its row, and another
/// settlement showing the same photos in another order would otherwise wait for this one's
/// rows while holding the rows it waits for. Answered in the page's order.
macro_rules! settle_alone {
    ($tx:ident, $d:ident, $page:expr, $rows:expr, $now:expr) => {{
        let page: &PageSettlement = $page;
        let rows: &[CompletionRow] = $rows;
        let lease = &page.lease;
        hold_lease!($tx, $d, lease, $now);
        let mut media: Vec<&MediaRecord> = page.seen.iter().map(|s| &s.media).collect();
        media.sort_by_key(|m| m.sha256);
        media.dedup_by_key(|m| m.sha256);
        for media in media {
            upsert_media_in!($tx, media, $now);
        }
        let mut in_key_order: Vec<(usize, &SeenMedia)> = page.seen.iter().enumerate().collect();
        in_key_order.sort_by_key(|(_, s)| {
            let sighting = &s.sighting;
            let on = sighting.page.unwrap_or(sighting.url).0;
            (sighting.media_sha256, sighting.url.0, on, member(s))
        });
        let mut recorded: Vec<Option<Recorded>> = vec![None; page.seen.len()];
        for (at, s) in in_key_order {
            let sighted = sight_in!($tx, &s.sighting, &s.matches, $now);
            if let Some(slot) = recorded.get_mut(at) {
                *slot = Some(sighted);
            }
        }
        let mut sightings = Vec::with_capacity(page.seen.len());
        let mut also_on = Vec::with_capacity(page.seen.len());
        for recorded in recorded.into_iter().flatten() {
            sightings.push(recorded.sighting);
            also_on.push(recorded.also_on);
        }
        let links = enqueue_in!($tx, &page.links, $now);
        if let Some(priority) = page.raise_known_to {
            let mut known: Vec<i64> = links
                .iter()
                .filter(|l| !l.inserted)
                .map(|l| l.id.0)
                .collect();
            known.sort_unstable();
            known.dedup();
            raise_in!($tx, priority, &known);
        }
        let completions = complete_in!($tx, lease, rows, $now);
        // After the page's row is written (and, on PostgreSQL, locked): a match committed
        // before this statement is seen here, one committed after it finds the page
        // completed when its recheck locks the row.
        let requeued = match page.requeue_if_matched {
            Some((url, priority)) => requeue_if_matched!($tx, url, priority, $now),
            None => false,
        };
        SettledLinks {
            page: SettledPage {
                sightings,
                also_on,
                completions,
            },
            links,
            requeued,
        }
    }};
}
use settle_alone;

/// Inside the open transaction `$tx`: raises the queued URLs `$urls` (sorted `i64` ids) to
/// `$priority`.
macro_rules! raise_in {
    ($tx:ident, $priority:expr, $urls:expr) => {{
        let urls: &[i64] = $urls;
        for chunk in urls.chunks(ROWS_PER_STATEMENT) {
            let sql = raise_priorities_sql(chunk.len());
            let mut query =
                sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(&*$tx, sql)))
                    .bind($priority as i64);
            for url in chunk {
                query = query.bind(*url);
            }
            query.execute(&mut *$tx).await?;
        }
    }};
}
use raise_in;

/// The pages, in batch order, written together inside the open savepoint `$tx`; evaluates
/// to one [`SettledLinks`] per page, the same as [`settle_alone!`] one page after the other
/// would give.
///
/// Each step is one statement (per [`ROWS_PER_STATEMENT`] rows) for many pages: their media
/// (after one look at the embeds of their URLs), then their links, then the known links
/// raised, the completions and the requeues. Writing page B's step before page A's later
/// step changes nothing where the two touch different rows; where they would not, the
/// pages are cut into runs that follow each other:
/// - a page whose links record embeds ends its run, since a later page's media must see
///   them ([`run_length`]);
/// - a page whose matches would be sighted on an earlier page asking to be requeued if
///   matched starts a run, since that page looked before ([`run_length`]);
/// - after the links, a page raising a link that an earlier page completes or requeues, or
///   completing a URL an earlier page requeues, starts a new round of raises, completions
///   and requeues ([`segment_length`]).
macro_rules! settle_together {
    ($tx:ident, $batch:expr, $now:expr) => {{
        let batch: &[(&PageSettlement, &[CompletionRow])] = $batch;
        let now: UnixMillis = $now;
        let mut settled: Vec<SettledLinks> = Vec::with_capacity(batch.len());
        let mut start = 0;
        while let Some(rest) = batch.get(start..).filter(|rest| !rest.is_empty()) {
            let pages: Vec<&PageSettlement> = rest.iter().map(|(page, _)| *page).collect();
            let embeds = embeds_of!($tx, &pages);
            let run = run_length(&pages, &embeds);
            let (pages, rows) = (&pages[..run], &rest[..run]);
            let mut sighted = sight_together!($tx, pages, &embeds, now).into_iter();
            let links: Vec<NewUrl> = pages
                .iter()
                .flat_map(|page| page.links.iter().cloned())
                .collect();
            let mut enqueued = enqueue_in!($tx, &links, now).into_iter();
            let links: Vec<Vec<EnqueuedUrl>> = pages
                .iter()
                .map(|page| enqueued.by_ref().take(page.links.len()).collect())
                .collect();
            let mut first = 0;
            while first < run {
                let length = segment_length(&pages[first..], &links[first..]);
                let segment = first..first + length;
                let mut raises: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
                for (page, links) in pages[segment.clone()].iter().zip(&links[segment.clone()]) {
                    if let Some(priority) = page.raise_known_to {
                        let known = links.iter().filter(|l| !l.inserted).map(|l| l.id.0);
                        raises.entry(priority as i64).or_default().extend(known);
                    }
                }
                for (priority, urls) in raises {
                    let urls: Vec<i64> = urls.into_iter().collect();
                    raise_in!($tx, priority, &urls);
                }
                let leased: Vec<(&Lease, &[CompletionRow])> = rows[segment.clone()]
                    .iter()
                    .map(|(page, rows)| (&page.lease, *rows))
                    .collect();
                let completions = complete_leased_in!($tx, &leased, now);
                let asks: Vec<Option<(UrlId, Priority)>> = pages[segment.clone()]
                    .iter()
                    .map(|page| page.requeue_if_matched)
                    .collect();
                let requeued = requeue_matched_in!($tx, &asks, now);
                for ((completions, requeued), links) in completions
                    .into_iter()
                    .zip(requeued)
                    .zip(&links[segment.clone()])
                {
                    let (sightings, also_on) = sighted.next().unwrap_or_default();
                    settled.push(SettledLinks {
                        page: SettledPage {
                            sightings,
                            also_on,
                            completions,
                        },
                        links: links.clone(),
                        requeued,
                    });
                }
                first += length;
            }
            start += run;
        }
        settled
    }};
}
use settle_together;

/// The pages embedding each URL of the `$pages`' media sighted outside archives (the
/// embeds [`crate::media::SIGHT_ALL`] sights media on too), inside the open transaction
/// `$tx`: a map from media URL to pages, in page order.
macro_rules! embeds_of {
    ($tx:ident, $pages:expr) => {{
        let pages: &[&PageSettlement] = $pages;
        let urls: Vec<i64> = pages
            .iter()
            .flat_map(|page| &page.seen)
            .filter(|s| member(s).is_empty())
            .map(|s| s.sighting.url.0)
            .collect::<BTreeSet<i64>>()
            .into_iter()
            .collect();
        let mut embeds: HashMap<i64, Vec<i64>> = HashMap::new();
        for chunk in urls.chunks(ROWS_PER_STATEMENT) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(
                &*$tx,
                embeds_sql(chunk.len()),
            )));
            for url in chunk {
                query = query.bind(*url);
            }
            for row in query.fetch_all(&mut *$tx).await? {
                embeds
                    .entry(row.i64("media_url_id")?)
                    .or_default()
                    .push(row.i64("page_url_id")?);
            }
        }
        embeds
    }};
}
use embeds_of;

/// The embeds of `rows` media URLs, by URL and page.
fn embeds_sql(rows: usize) -> String {
    let mut sql =
        String::from("SELECT media_url_id, page_url_id FROM embeds WHERE media_url_id IN ");
    push_tuples(&mut sql, 1, rows, 1, &[]);
    sql.push_str(" ORDER BY media_url_id, page_url_id");
    sql
}

/// The `$pages`' media written inside the open transaction `$tx` as
/// [`crate::MediaStore::record_seen`] one after the other would (`$embeds` from
/// [`embeds_of!`]): media rows, sightings (each media's own and those on the pages embedding
/// its URL), matches, each in multi-row statements; evaluates to one `(sightings, also_on)`
/// per page, as [`SettledPage`] holds them.
macro_rules! sight_together {
    ($tx:ident, $pages:expr, $embeds:expr, $now:expr) => {{
        let pages: &[&PageSettlement] = $pages;
        let now: UnixMillis = $now;
        let plan = plan_sightings(pages, $embeds);
        // Each media once: PostgreSQL refuses a statement that updates a row twice.
        let mut shas: HashSet<&[u8; 32]> = HashSet::new();
        let mut media: Vec<&MediaRecord> = pages
            .iter()
            .flat_map(|page| &page.seen)
            .map(|s| &s.media)
            .filter(|m| shas.insert(&m.sha256))
            .collect();
        // In one order for every writer (by SHA-256): on PostgreSQL each upsert locks its
        // row, and two batches showing the same photos in other orders would each hold one
        // and wait for the other's (the same photo re-uploaded on many hosts is common).
        media.sort_unstable_by_key(|m| m.sha256);
        for chunk in media.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from(INSERT_MEDIA_ROWS);
            sql.push_str("VALUES ");
            push_tuples(&mut sql, chunk.len(), 11, 1, &[]);
            sql.push_str(ON_MEDIA_CONFLICT);
            let mut query =
                sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(&*$tx, sql)));
            for media in chunk {
                query = query
                    .bind(&media.sha256[..])
                    .bind(&media.md5[..])
                    .bind(&media.sha1[..])
                    .bind(media.pdq.as_ref().map(|p| &p[..]))
                    .bind(media.pdq_quality.map(i64::from))
                    .bind(i64::try_from(media.size).unwrap_or(i64::MAX))
                    .bind(&media.kind)
                    .bind(media.width.map(i64::from))
                    .bind(media.height.map(i64::from))
                    .bind(now)
                    .bind(now);
            }
            query.execute(&mut *$tx).await?;
        }
        let mut written: HashMap<(Vec<u8>, i64, i64, String), i64> = HashMap::new();
        // Sightings in one order for every writer too (their unique key): a page's sightings
        // are also written by batches settling other pages that embed the same media URL.
        let mut in_key_order: Vec<_> = plan.rows.iter().collect();
        in_key_order.sort_unstable_by_key(|row| (row.sha, row.url, row.page, row.member));
        for chunk in in_key_order.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from(INSERT_SIGHTINGS);
            sql.push_str("VALUES ");
            push_tuples(&mut sql, chunk.len(), 7, 1, &[]);
            sql.push_str(ON_SIGHTING_CONFLICT);
            sql.push_str(" RETURNING id, media_sha256, url_id, page_url_id, member_path");
            let mut query =
                sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(&*$tx, sql)));
            for row in chunk {
                query = query
                    .bind(&row.sha[..])
                    .bind(row.url)
                    .bind(row.page)
                    .bind(row.member)
                    .bind(row.first_seen_at)
                    .bind(row.last_seen_at)
                    .bind(row.server_ip);
            }
            for done in query.fetch_all(&mut *$tx).await? {
                let key = (
                    done.bytes("media_sha256")?,
                    done.i64("url_id")?,
                    done.i64("page_url_id")?,
                    done.text("member_path")?,
                );
                written.insert(key, done.i64("id")?);
            }
        }
        let mut ids: Vec<i64> = Vec::with_capacity(plan.rows.len());
        for row in &plan.rows {
            let key = (row.sha.to_vec(), row.url, row.page, row.member.to_string());
            let Some(id) = written.get(&key) else {
                return Err(StoreError::NotFound {
                    what: "sighting just written",
                    id: row.page.to_string(),
                });
            };
            ids.push(*id);
        }
        let matches = plan_matches(pages, &plan, &ids);
        for chunk in matches.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from(INSERT_TIMED_MATCH_ROWS);
            sql.push_str("VALUES ");
            push_tuples(&mut sql, chunk.len(), 9, 1, &[]);
            sql.push_str(ON_MATCH_CONFLICT);
            let mut query =
                sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(&*$tx, sql)));
            for (sighting, m) in chunk {
                query = query
                    .bind(*sighting)
                    .bind(m.hit.bank_id)
                    .bind(&m.hit.bank_name)
                    .bind(m.hit.entry_id)
                    .bind(&m.hit.signal_type)
                    .bind(i64::from(m.hit.distance))
                    .bind(&m.hit.classification)
                    .bind(now)
                    .bind(m.frame_ms);
            }
            query.execute(&mut *$tx).await?;
        }
        plan.of_seen
            .iter()
            .map(|seen| {
                let mut sightings = Vec::with_capacity(seen.len());
                let mut also_on = Vec::with_capacity(seen.len());
                for rows in seen {
                    let mut rows = rows
                        .iter()
                        .filter_map(|&i| Some((plan.rows.get(i)?, *ids.get(i)?)));
                    if let Some((_, own)) = rows.next() {
                        sightings.push(SightingId(own));
                    }
                    also_on.push(rows.map(|(row, _)| UrlId(row.page)).collect());
                }
                (sightings, also_on)
            })
            .collect::<Vec<(Vec<SightingId>, Vec<Vec<UrlId>>)>>()
    }};
}
use sight_together;

/// A sighting's archive member path (`""` outside archives), as the sightings table keys it.
fn member(seen: &SeenMedia) -> &str {
    seen.sighting.member_path.as_deref().unwrap_or("")
}

/// The pages media seen is sighted on, as [`crate::media::SIGHT_ALL`] writes it: its own
/// page first, then (outside archives) every other page embedding its URL.
fn sighted_on(seen: &SeenMedia, embeds: &HashMap<i64, Vec<i64>>) -> Vec<i64> {
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
struct SightingRow<'a> {
    sha: &'a [u8; 32],
    url: i64,
    page: i64,
    member: &'a str,
    first_seen_at: UnixMillis,
    last_seen_at: UnixMillis,
    server_ip: Option<&'a str>,
}

/// The sightings of a run's media, each row once (PostgreSQL refuses a statement that
/// updates a row twice): the first to write a row gives its first time and server, the
/// latest time seen is its last, as upserts one after the other would leave it.
struct SightingPlan<'a> {
    rows: Vec<SightingRow<'a>>,
    /// Per page, per media seen: its rows in [`SightingPlan::rows`], as [`sighted_on`].
    of_seen: Vec<Vec<Vec<usize>>>,
}

fn plan_sightings<'a>(
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
fn plan_matches<'a>(
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
fn run_length(pages: &[&PageSettlement], embeds: &HashMap<i64, Vec<i64>>) -> usize {
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
fn segment_length(pages: &[&PageSettlement], links: &[Vec<EnqueuedUrl>]) -> usize {
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
