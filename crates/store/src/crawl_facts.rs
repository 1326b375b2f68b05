//! Read-only questions the crawler asks about what it has already recorded: did anything on a
//! page match a bank, which media on a page matched nothing, what was seen at a URL, how many
//! URLs under a path prefix were already attempted, how much work is still queued.
//!
//! These are facts over the 0001 tables (sightings, matches, urls); the crawler decides what
//! they mean (scope, review, trap budgets). This module must not write anything.

use crate::UnixMillis;
use crate::backend::{Backend, Get, on_backend};
use crate::error::{StoreError, check_text};
use crate::frontier::{HostId, MAX_URL_BYTES, UrlId};
use crate::media::SightingId;

/// A sighting on a page whose media matched no bank entry (at any of its sightings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnmatchedSighting {
    pub sighting: SightingId,
    pub media_sha256: [u8; 32],
    /// The URL the bytes came from.
    pub url: UrlId,
}

pub(crate) const PAGE_HAS_MATCH: &str = "SELECT s.id FROM sightings s JOIN matches m ON m.sighting_id = s.id \
    WHERE s.page_url_id = $1 LIMIT 1";
const UNMATCHED_ON_PAGE: &str = "SELECT s.id, s.media_sha256, s.url_id FROM sightings s \
    WHERE s.page_url_id = $1 AND NOT EXISTS (SELECT 1 FROM sightings o \
        JOIN matches m ON m.sighting_id = o.id WHERE o.media_sha256 = s.media_sha256) \
    ORDER BY s.id";
const MEDIA_AT_URL: &str = "SELECT DISTINCT media_sha256 FROM sightings \
    WHERE url_id = $1 AND member_path = ''";
const ATTEMPTED_UNDER: &str = "SELECT COUNT(*) AS n FROM urls WHERE host_id = $1 \
    AND state <> 'queued' AND substr(url, 1, CAST($2 AS INTEGER)) = $3";
const QUEUED: &str = "SELECT COUNT(*) AS n FROM urls WHERE state = 'queued'";
const QUEUED_DUE: &str = "SELECT COUNT(*) AS n FROM urls WHERE state = 'queued' \
    AND next_fetch_at <= $1";

/// The crawler's read-only questions; see the module documentation.
pub struct CrawlFacts<'a> {
    backend: &'a Backend,
}

impl<'a> CrawlFacts<'a> {
    pub(crate) fn new(backend: &'a Backend) -> Self {
        CrawlFacts { backend }
    }

    /// True if any media sighted on `page` has a recorded bank match.
    pub async fn page_has_match(&self, page: UrlId) -> Result<bool, StoreError> {
        on_backend!(self.backend, |pool, d| {
            Ok(sqlx::query(PAGE_HAS_MATCH)
                .bind(page.0)
                .fetch_optional(pool)
                .await?
                .is_some())
        })
    }

    /// Sightings on `page` whose media has no match anywhere, oldest first.
    pub async fn unmatched_on_page(
        &self,
        page: UrlId,
    ) -> Result<Vec<UnmatchedSighting>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(UNMATCHED_ON_PAGE)
                .bind(page.0)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    let sha = row.bytes("media_sha256")?;
                    Ok(UnmatchedSighting {
                        sighting: SightingId(row.i64("id")?),
                        media_sha256: <[u8; 32]>::try_from(sha).map_err(|b| {
                            StoreError::Corrupt {
                                what: "SHA-256",
                                value: format!("{} bytes", b.len()),
                            }
                        })?,
                        url: UrlId(row.i64("url_id")?),
                    })
                })
                .collect()
        })
    }

    /// The media (SHA-256) sighted at `url` itself, outside archives.
    pub async fn media_at_url(&self, url: UrlId) -> Result<Vec<[u8; 32]>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(MEDIA_AT_URL)
                .bind(url.0)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    let sha = row.bytes("media_sha256")?;
                    <[u8; 32]>::try_from(sha).map_err(|b| StoreError::Corrupt {
                        what: "SHA-256",
                        value: format!("{} bytes", b.len()),
                    })
                })
                .collect()
        })
    }

    /// URLs of `host` starting with `prefix` that are no longer queued (fetched, failed or
    /// skipped): what a per-path budget has already spent.
    pub async fn attempted_under(&self, host: HostId, prefix: &str) -> Result<i64, StoreError> {
        check_text("URL prefix", prefix, MAX_URL_BYTES, true)?;
        let chars = i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX);
        on_backend!(self.backend, |pool, d| {
            Ok(sqlx::query(ATTEMPTED_UNDER)
                .bind(host.0)
                .bind(chars)
                .bind(prefix)
                .fetch_one(pool)
                .await?
                .i64("n")?)
        })
    }

    /// URLs still queued (due or not, leased or not).
    pub async fn queued(&self) -> Result<i64, StoreError> {
        on_backend!(self.backend, |pool, d| {
            Ok(sqlx::query(QUEUED).fetch_one(pool).await?.i64("n")?)
        })
    }

    /// URLs queued and due at `now`.
    pub async fn queued_due(&self, now: UnixMillis) -> Result<i64, StoreError> {
        on_backend!(self.backend, |pool, d| {
            Ok(sqlx::query(QUEUED_DUE)
                .bind(now)
                .fetch_one(pool)
                .await?
                .i64("n")?)
        })
    }
}
