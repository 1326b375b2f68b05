//! The per-page fallback of a settlement: one page written alone, in the one order of row
//! locks of every settlement, and the reference that writing pages together must agree with.
//!
//! Must not write another page's rows: a page that fails here fails alone.

/// One page settled alone inside the open savepoint `$tx` (the batch path's fallback, and
/// the reference it must agree with): evaluates to its [`SettledLinks`].
///
/// Its media rows by SHA-256, then its sightings by their unique key (each media's
/// sightings on the pages embedding its URL in page order, see [`crate::media::SIGHT_ALL`]),
/// as [`sight_together!`] takes them: on PostgreSQL each upsert locks its row, and another
/// settlement showing the same photos in another order would otherwise wait for this one's
/// rows while holding the rows it waits for. Answered in the page's order.
///
/// [`SettledLinks`]: super::SettledLinks
/// [`sight_together!`]: super::together::sight_together!
macro_rules! settle_alone {
    ($tx:ident, $d:ident, $page:expr, $rows:expr, $now:expr) => {{
        use $crate::frontier::enqueue::{enqueue_in, requeue_if_matched};
        use $crate::frontier::lease::{CompletionRow, complete_in, hold_lease};
        use $crate::frontier::settle::alone::raise_in;
        use $crate::frontier::settle::plan::member;
        use $crate::frontier::settle::{PageSettlement, SeenMedia, SettledLinks, SettledPage};
        use $crate::media::{MediaRecord, Recorded, sight_in, upsert_media_in};
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
pub(super) use settle_alone;

/// Inside the open transaction `$tx`: raises the queued URLs `$urls` (sorted `i64` ids) to
/// `$priority`.
macro_rules! raise_in {
    ($tx:ident, $priority:expr, $urls:expr) => {{
        use $crate::frontier::enqueue::{ROWS_PER_STATEMENT, raise_priorities_sql};
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
pub(super) use raise_in;
