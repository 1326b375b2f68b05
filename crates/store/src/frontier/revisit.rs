//! Crawling known hosts again: the notice worker sends the crawler back to the sites around
//! a removal, where a provider's customer puts removed media up again under new URLs
//! (docs/notices.md, "Re-uploads").

use super::{Priority, enqueue::requeue_in};
use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::StoreError;

/// Most addresses [`super::Frontier::hosts_served_from`] takes in one call.
pub const MAX_REVISIT_ADDRESSES: usize = 4096;

/// One host's pages queued again by [`super::Frontier::revisit_host`].
#[derive(Clone, Debug)]
pub struct HostRevisit<'a> {
    /// `scheme://host[:port]`, as the crawler keys hosts.
    pub host_key: &'a str,
    /// Now, on the caller's clock (the notice worker's): recorded as the host's last revisit.
    pub at: UnixMillis,
    /// The host is left alone if it was revisited less than this before `at`.
    pub min_interval_ms: i64,
    /// The pages are not fetched before this (the frontier's clock, the crawler's).
    pub fetch_at: UnixMillis,
    /// At most this many pages, those fetched longest ago first.
    pub pages: u32,
    pub priority: Priority,
}

// Pages only: a URL whose bytes were sighted as media, or that a page embeds, is media; the
// crawler fetches new media from the pages that embed it, and never reads a URL queued as an
// embed as a page. Read through `urls_done_by_fetch` (migration 14), which holds only done
// URLs not queued as embeds, in this order: the scan stops after `$2` pages, passing over
// only the media that came in otherwise (reported, or a link that answered with media).
const DONE_PAGES: &str = "SELECT u.id FROM urls u WHERE u.host_id = $1 AND u.state = 'done' \
    AND u.source <> 'embed' \
    AND NOT EXISTS (SELECT 1 FROM embeds e WHERE e.media_url_id = u.id) \
    AND NOT EXISTS (SELECT 1 FROM sightings s WHERE s.url_id = u.id) \
    ORDER BY COALESCE(u.last_fetched_at, 0), u.id LIMIT $2";
// The host first, as a settlement takes it (see `HostLocks`), then its URLs.
const LOCK_HOST_POSTGRES: &str = "SELECT id FROM hosts WHERE key = $1 FOR NO KEY UPDATE";
const HOST_ID: &str = "SELECT id FROM hosts WHERE key = $1";
// Claims the host's revisit unless one was made since $3; no row back means too soon.
const CLAIM: &str = "INSERT INTO host_revisits (host_id, revisited_at) VALUES ($1, $2) \
    ON CONFLICT (host_id) DO UPDATE SET revisited_at = excluded.revisited_at \
    WHERE host_revisits.revisited_at <= $3 RETURNING host_id";

/// The hosts served from `addresses` addresses: `$1` limit, `$2` revisited after, then the
/// addresses.
fn served_from_sql(addresses: usize) -> String {
    let list: Vec<String> = (3..addresses + 3).map(|i| format!("${i}")).collect();
    format!(
        "SELECT h.key FROM hosts h WHERE h.id IN (SELECT a.host_id FROM host_addresses a \
         WHERE a.server_ip IN ({})) AND NOT EXISTS (SELECT 1 FROM host_revisits r \
         WHERE r.host_id = h.id AND r.revisited_at > $2) ORDER BY h.id LIMIT $1",
        list.join(", ")
    )
}

/// The revisits' reads, for the tests that check their query plans on each back-end (the
/// bound is in the plan: an index that stops serving them shows nowhere else): the done
/// pages (`$1` host, `$2` pages) and the hosts served from `addresses` addresses (see
/// [`super::Frontier::hosts_served_from`] for its parameters).
#[doc(hidden)]
pub fn revisit_reads(addresses: usize) -> [String; 2] {
    [DONE_PAGES.to_owned(), served_from_sql(addresses)]
}

impl super::Frontier<'_> {
    /// The keys of the hosts the crawler fetched anything from at one of `addresses` (server
    /// addresses as the crawler records them), at most `limit`, oldest hosts first, leaving
    /// out those revisited after `revisited_after` ([`super::Frontier::revisit_host`] would
    /// refuse them; a caller checking each host first is spared the work). Reads the hosts'
    /// addresses (`host_addresses`, one row per address and host), not their fetches.
    pub async fn hosts_served_from(
        &self,
        addresses: &[String],
        limit: u32,
        revisited_after: UnixMillis,
    ) -> Result<Vec<String>, StoreError> {
        if addresses.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        if addresses.len() > MAX_REVISIT_ADDRESSES {
            return Err(StoreError::OutOfRange {
                field: "addresses",
                value: i64::try_from(addresses.len()).unwrap_or(i64::MAX),
                min: 1,
                max: MAX_REVISIT_ADDRESSES as i64,
            });
        }
        let sql = served_from_sql(addresses.len());
        on_backend!(self.backend, |pool, d| {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(i64::from(limit))
                .bind(revisited_after);
            for address in addresses {
                query = query.bind(address);
            }
            query
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| Ok(row.text("key")?))
                .collect()
        })
    }

    /// Queues up to `revisit.pages` of the host's done pages (not its media) again at
    /// `revisit.priority`, those fetched longest ago first, unless the host was revisited
    /// less than `revisit.min_interval_ms` ago; the crawler then fetches them at the host's
    /// own pace (robots.txt, crawl delay), like any queued URL. Returns how many pages were
    /// queued, or `None` when the host is unknown or was revisited too recently. Workers
    /// asking at once for one host: one revisit.
    pub async fn revisit_host(
        &self,
        revisit: &HostRevisit<'_>,
    ) -> Result<Option<usize>, StoreError> {
        crate::error::check_text(
            "host key",
            revisit.host_key,
            super::MAX_HOST_KEY_BYTES,
            false,
        )?;
        let not_since = revisit.at.saturating_sub(revisit.min_interval_ms.max(0));
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let host = sqlx::query(d.pick(HOST_ID, LOCK_HOST_POSTGRES))
                .bind(revisit.host_key)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(host) = host.map(|row| row.i64("id")).transpose()? else {
                return Ok(None);
            };
            let claimed = sqlx::query(CLAIM)
                .bind(host)
                .bind(revisit.at)
                .bind(not_since)
                .fetch_optional(&mut *tx)
                .await?;
            if claimed.is_none() {
                return Ok(None);
            }
            let pages: Vec<i64> = sqlx::query(DONE_PAGES)
                .bind(host)
                .bind(i64::from(revisit.pages))
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| row.i64("id"))
                .collect::<Result<_, _>>()?;
            let mut queued = 0;
            for page in pages {
                if requeue_in!(tx, page, revisit.priority, revisit.fetch_at) {
                    queued += 1;
                }
            }
            tx.commit().await?;
            Ok(Some(queued))
        })
    }
}
