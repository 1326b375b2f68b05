//! Read-only views the server's native API lists: recent matches and sightings with their
//! URLs. Pages go backwards by id (`before`), newest first. Must not write.

use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::StoreError;

/// A bank match with where the media was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchView {
    pub id: i64,
    pub sighting_id: i64,
    pub media_sha256: Vec<u8>,
    pub url: String,
    pub page_url: String,
    pub bank_name: String,
    pub entry_id: i64,
    pub signal_type: String,
    pub distance: i64,
    pub classification: String,
    pub matched_at: UnixMillis,
}

/// A sighting with its URLs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SightingView {
    pub id: i64,
    pub media_sha256: Vec<u8>,
    pub url: String,
    pub page_url: String,
    pub member_path: String,
    pub first_seen_at: UnixMillis,
    pub last_seen_at: UnixMillis,
    pub server_ip: Option<String>,
}

/// Lists for the server's API.
pub struct ServerViews<'a> {
    backend: &'a crate::backend::Backend,
}

impl<'a> ServerViews<'a> {
    pub(crate) fn new(backend: &'a crate::backend::Backend) -> Self {
        ServerViews { backend }
    }

    /// Up to `limit` matches with an id below `before` (all when `None`), newest first.
    pub async fn matches(
        &self,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<MatchView>, StoreError> {
        const SQL: &str = "SELECT m.id, m.sighting_id, s.media_sha256, u.url AS url, p.url AS page_url, \
            m.bank_name, m.entry_id, m.signal_type, m.distance, m.classification, m.matched_at \
            FROM matches m JOIN sightings s ON s.id = m.sighting_id \
            JOIN urls u ON u.id = s.url_id JOIN urls p ON p.id = s.page_url_id \
            WHERE m.id < $1 ORDER BY m.id DESC LIMIT $2";
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(SQL)
                .bind(before.unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(MatchView {
                        id: row.i64("id")?,
                        sighting_id: row.i64("sighting_id")?,
                        media_sha256: row.bytes("media_sha256")?,
                        url: row.text("url")?,
                        page_url: row.text("page_url")?,
                        bank_name: row.text("bank_name")?,
                        entry_id: row.i64("entry_id")?,
                        signal_type: row.text("signal_type")?,
                        distance: row.i64("distance")?,
                        classification: row.text("classification")?,
                        matched_at: row.i64("matched_at")?,
                    })
                })
                .collect()
        })
    }

    /// Up to `limit` sightings with an id below `before` (all when `None`), newest first.
    pub async fn sightings(
        &self,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<SightingView>, StoreError> {
        const SQL: &str = "SELECT s.id, s.media_sha256, u.url AS url, p.url AS page_url, \
            s.member_path, s.first_seen_at, s.last_seen_at, s.server_ip \
            FROM sightings s JOIN urls u ON u.id = s.url_id JOIN urls p ON p.id = s.page_url_id \
            WHERE s.id < $1 ORDER BY s.id DESC LIMIT $2";
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(SQL)
                .bind(before.unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(SightingView {
                        id: row.i64("id")?,
                        media_sha256: row.bytes("media_sha256")?,
                        url: row.text("url")?,
                        page_url: row.text("page_url")?,
                        member_path: row.text("member_path")?,
                        first_seen_at: row.i64("first_seen_at")?,
                        last_seen_at: row.i64("last_seen_at")?,
                        server_ip: row.opt_text("server_ip")?,
                    })
                })
                .collect()
        })
    }
}
