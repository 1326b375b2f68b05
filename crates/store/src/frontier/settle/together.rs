//! A settlement batch written together: each step one multi-row statement for many pages
//! (media, sightings and matches; links; raises, completions and requeues), cut where the
//! pages one after the other would see each other's writes, with the same results.
//!
//! Must not give other results than the pages one at a time ([`super::alone`]) would: where
//! it cannot, the batch is not written together ([`writable_together`]).

use super::PageSettlement;
use crate::frontier::enqueue::push_tuples;
use crate::frontier::lease::CompletionRow;

/// Whether the batch path can give the results of writing the pages one at a time: a
/// sighting of media other than the record written with it would meet (or not) another
/// page's media row depending on the order, so such a batch is written page by page.
pub(super) fn writable_together(batch: &[(&PageSettlement, &[CompletionRow])]) -> bool {
    batch
        .iter()
        .flat_map(|(page, _)| &page.seen)
        .all(|s| s.sighting.media_sha256 == s.media.sha256)
}

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
///
/// [`SettledLinks`]: super::SettledLinks
/// [`settle_alone!`]: super::alone::settle_alone!
/// [`ROWS_PER_STATEMENT`]: crate::frontier::enqueue::ROWS_PER_STATEMENT
/// [`run_length`]: super::plan::run_length
/// [`segment_length`]: super::plan::segment_length
macro_rules! settle_together {
    ($tx:ident, $batch:expr, $now:expr) => {{
        use std::collections::{BTreeMap, BTreeSet};
        use $crate::UnixMillis;
        use $crate::frontier::enqueue::{enqueue_in, requeue_matched_in};
        use $crate::frontier::lease::{CompletionRow, complete_leased_in};
        use $crate::frontier::settle::alone::raise_in;
        use $crate::frontier::settle::plan::{run_length, segment_length};
        use $crate::frontier::settle::together::{embeds_of, sight_together};
        use $crate::frontier::settle::{PageSettlement, SettledLinks, SettledPage};
        use $crate::frontier::{EnqueuedUrl, Lease, NewUrl, Priority, UrlId};
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
pub(super) use settle_together;

/// The pages embedding each URL of the `$pages`' media sighted outside archives (the
/// embeds [`crate::media::SIGHT_ALL`] sights media on too), inside the open transaction
/// `$tx`: a map from media URL to pages, in page order.
macro_rules! embeds_of {
    ($tx:ident, $pages:expr) => {{
        use std::collections::{BTreeSet, HashMap};
        use $crate::backend::Get;
        use $crate::frontier::enqueue::ROWS_PER_STATEMENT;
        use $crate::frontier::settle::PageSettlement;
        use $crate::frontier::settle::plan::member;
        use $crate::frontier::settle::together::embeds_sql;
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
pub(super) use embeds_of;

/// The embeds of `rows` media URLs, by URL and page.
pub(super) fn embeds_sql(rows: usize) -> String {
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
///
/// [`SettledPage`]: super::SettledPage
macro_rules! sight_together {
    ($tx:ident, $pages:expr, $embeds:expr, $now:expr) => {{
        use std::collections::{HashMap, HashSet};
        use $crate::UnixMillis;
        use $crate::backend::Get;
        use $crate::error::StoreError;
        use $crate::frontier::UrlId;
        use $crate::frontier::enqueue::{ROWS_PER_STATEMENT, push_tuples};
        use $crate::frontier::settle::PageSettlement;
        use $crate::frontier::settle::plan::{plan_matches, plan_sightings};
        use $crate::media::{
            INSERT_MEDIA_ROWS, INSERT_SIGHTINGS, INSERT_TIMED_MATCH_ROWS, MediaRecord,
            ON_MATCH_CONFLICT, ON_MEDIA_CONFLICT, ON_SIGHTING_CONFLICT, SightingId,
        };
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
pub(super) use sight_together;
