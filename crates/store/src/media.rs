//! Media (keyed by SHA-256), where each was seen (sightings) and which bank entries it
//! matched. Every write is idempotent on its natural key, so a crawl that is killed and
//! restarted re-records what it had seen without duplicating it.
//!
//! This module records facts; it does not decide what a match means or what to review.

use crate::UnixMillis;
use crate::backend::{Backend, Get, on_backend};
use crate::error::{StoreError, check_range, check_text};
use crate::frontier::UrlId;

/// Longest archive member path accepted, in bytes (part of a unique key, so bounded).
pub const MAX_MEMBER_PATH_BYTES: usize = 1024;
/// Longest media kind, bank name, signal type or classification accepted, in bytes.
pub const MAX_LABEL_BYTES: usize = 200;

/// A sighting's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SightingId(pub(crate) i64);

impl SightingId {
    pub fn get(self) -> i64 {
        self.0
    }
}

/// Hashes and properties of one media file, as the hasher reported them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaRecord {
    pub sha256: [u8; 32],
    pub md5: [u8; 16],
    pub sha1: [u8; 20],
    pub pdq: Option<[u8; 32]>,
    pub pdq_quality: Option<u8>,
    pub size: u64,
    /// The sniffed type, e.g. `jpeg`, `png`, `mp4`.
    pub kind: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// A media row: the record plus when it was first and last seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    pub record: MediaRecord,
    pub first_seen: UnixMillis,
    pub last_seen: UnixMillis,
}

/// Media seen at a URL, found on a page (or fetched directly), maybe inside an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSighting {
    pub media_sha256: [u8; 32],
    /// The URL the bytes came from (the media URL, or the archive's URL).
    pub url: UrlId,
    /// The page it was found on; `None` when fetched directly (recorded as `url` itself).
    pub page: Option<UrlId>,
    /// The member path when the media was inside an archive.
    pub member_path: Option<String>,
    pub seen_at: UnixMillis,
    pub server_ip: Option<String>,
}

/// A recorded sighting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    pub id: SightingId,
    pub media_sha256: [u8; 32],
    pub url: UrlId,
    /// Equals `url` when the media was fetched directly.
    pub page: UrlId,
    pub member_path: Option<String>,
    pub first_seen_at: UnixMillis,
    pub last_seen_at: UnixMillis,
    pub server_ip: Option<String>,
}

/// What recording media seen at a URL wrote: its sighting, and the other pages that embed
/// the URL, each of which got a sighting of the media (with the same matches) as well.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub sighting: SightingId,
    /// Pages (other than the sighting's own) that embed the URL, in no particular order.
    pub also_on: Vec<UrlId>,
}

/// A sighting's match against one bank entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankMatch {
    pub bank_id: i64,
    pub bank_name: String,
    pub entry_id: i64,
    /// `pdq`, `md5`, `sha1`, `sha256`, …
    pub signal_type: String,
    /// Hamming distance for PDQ; 0 for exact digests.
    pub distance: u32,
    pub classification: String,
}

/// A bank match of a sighting, with the moment in a video where it was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedMatch {
    pub hit: BankMatch,
    /// Milliseconds from a video's start to the first frame that matched; `None` for still
    /// images and whole-file (digest) matches.
    pub frame_ms: Option<i64>,
}

fn fixed<const N: usize>(what: &'static str, bytes: Vec<u8>) -> Result<[u8; N], StoreError> {
    <[u8; N]>::try_from(bytes).map_err(|b| StoreError::Corrupt {
        what,
        value: format!("{} bytes", b.len()),
    })
}

fn media_from_row(row: &impl Get) -> Result<Media, StoreError> {
    let small = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
    Ok(Media {
        record: MediaRecord {
            sha256: fixed("SHA-256", row.bytes("sha256")?)?,
            md5: fixed("MD5", row.bytes("md5")?)?,
            sha1: fixed("SHA-1", row.bytes("sha1")?)?,
            pdq: row.opt_bytes("pdq")?.map(|b| fixed("PDQ", b)).transpose()?,
            pdq_quality: row
                .opt_i64("pdq_quality")?
                .and_then(|q| u8::try_from(q).ok()),
            size: u64::try_from(row.i64("size")?).unwrap_or(0),
            kind: row.text("kind")?,
            width: small(row.opt_i64("width")?),
            height: small(row.opt_i64("height")?),
        },
        first_seen: row.i64("first_seen")?,
        last_seen: row.i64("last_seen")?,
    })
}

fn sighting_from_row(row: &impl Get) -> Result<Sighting, StoreError> {
    let member = row.text("member_path")?;
    Ok(Sighting {
        id: SightingId(row.i64("id")?),
        media_sha256: fixed("SHA-256", row.bytes("media_sha256")?)?,
        url: UrlId(row.i64("url_id")?),
        page: UrlId(row.i64("page_url_id")?),
        member_path: (!member.is_empty()).then_some(member),
        first_seen_at: row.i64("first_seen_at")?,
        last_seen_at: row.i64("last_seen_at")?,
        server_ip: row.opt_text("server_ip")?,
    })
}

fn match_from_row(row: &impl Get) -> Result<BankMatch, StoreError> {
    Ok(BankMatch {
        bank_id: row.i64("bank_id")?,
        bank_name: row.text("bank_name")?,
        entry_id: row.i64("entry_id")?,
        signal_type: row.text("signal_type")?,
        distance: u32::try_from(row.i64("distance")?).unwrap_or(u32::MAX),
        classification: row.text("classification")?,
    })
}

fn check_sighting(sighting: &NewSighting) -> Result<(), StoreError> {
    let member = sighting.member_path.as_deref().unwrap_or("");
    check_text("archive member path", member, MAX_MEMBER_PATH_BYTES, true)?;
    if let Some(ip) = &sighting.server_ip {
        check_text("server IP", ip, 64, false)?;
    }
    Ok(())
}

fn check_match(m: &BankMatch) -> Result<(), StoreError> {
    check_text("bank name", &m.bank_name, MAX_LABEL_BYTES, false)?;
    check_text("signal type", &m.signal_type, MAX_LABEL_BYTES, false)?;
    check_text("classification", &m.classification, MAX_LABEL_BYTES, true)?;
    check_range("distance", i64::from(m.distance), 0, 256)
}

/// Checks what `record_seen_in!` will write, before a transaction is opened.
pub(crate) fn check_seen(
    media: &MediaRecord,
    sighting: &NewSighting,
    matches: &[TimedMatch],
) -> Result<(), StoreError> {
    check_text("media kind", &media.kind, MAX_LABEL_BYTES, false)?;
    check_sighting(sighting)?;
    for m in matches {
        check_match(&m.hit)?;
    }
    Ok(())
}

/// Inside the open transaction `$tx`: the rows of `$matches` (each a `TimedMatch`) for the
/// sighting `$sighting_id`.
macro_rules! insert_timed_matches {
    ($tx:ident, $sighting_id:expr, $matches:expr, $now:expr) => {{
        let sighting_id: i64 = $sighting_id;
        for m in $matches {
            let m: &$crate::media::TimedMatch = m;
            sqlx::query($crate::media::INSERT_TIMED_MATCH)
                .bind(sighting_id)
                .bind(m.hit.bank_id)
                .bind(&m.hit.bank_name)
                .bind(m.hit.entry_id)
                .bind(&m.hit.signal_type)
                .bind(i64::from(m.hit.distance))
                .bind(&m.hit.classification)
                .bind($now)
                .bind(m.frame_ms)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}
pub(crate) use insert_timed_matches;

/// Writes media, its sighting and the sighting's matches inside the open transaction `$tx`
/// (checked first with [`check_seen`]); evaluates to the [`Recorded`] sighting. A macro so
/// one body serves both drivers' transaction types. One media at a time: a caller writing
/// several takes their rows in the one order of every writer instead (media by SHA-256,
/// sightings by key, as `Frontier::settle_pages` does).
macro_rules! record_seen_in {
    ($tx:ident, $media:expr, $sighting:expr, $matches:expr, $now:expr) => {{
        $crate::media::upsert_media_in!($tx, $media, $now);
        $crate::media::sight_in!($tx, $sighting, $matches, $now)
    }};
}

/// The media row of `record_seen_in!`, inside the open transaction `$tx`.
macro_rules! upsert_media_in {
    ($tx:ident, $media:expr, $now:expr) => {{
        let media: &$crate::media::MediaRecord = $media;
        let size = i64::try_from(media.size).unwrap_or(i64::MAX);
        sqlx::query($crate::media::UPSERT_MEDIA)
            .bind(&media.sha256[..])
            .bind(&media.md5[..])
            .bind(&media.sha1[..])
            .bind(media.pdq.as_ref().map(|p| &p[..]))
            .bind(media.pdq_quality.map(i64::from))
            .bind(size)
            .bind(&media.kind)
            .bind(media.width.map(i64::from))
            .bind(media.height.map(i64::from))
            .bind($now)
            .execute(&mut *$tx)
            .await?;
    }};
}
pub(crate) use upsert_media_in;

/// The sightings and matches of `record_seen_in!` (its media recorded), inside the open
/// transaction `$tx`; evaluates to the [`Recorded`] sighting.
macro_rules! sight_in {
    ($tx:ident, $sighting:expr, $matches:expr, $now:expr) => {{
        let sighting: &$crate::media::NewSighting = $sighting;
        let member = sighting.member_path.as_deref().unwrap_or("");
        let page = sighting.page.unwrap_or(sighting.url);
        // One statement for its sighting and, outside archives, one on every other page that
        // embeds the URL (the same fetch, so the same server).
        let rows = sqlx::query($crate::media::SIGHT_ALL)
            .bind(&sighting.media_sha256[..])
            .bind(sighting.url.0)
            .bind(page.0)
            .bind(member)
            .bind(sighting.seen_at)
            .bind(sighting.server_ip.as_deref())
            .fetch_all(&mut *$tx)
            .await?;
        let mut id = None;
        let mut also_on = Vec::new();
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            let (sighting_id, on) = (row.i64("id")?, row.i64("page_url_id")?);
            ids.push(sighting_id);
            if on == page.0 {
                id = Some(sighting_id);
            } else {
                also_on.push($crate::frontier::UrlId(on));
            }
        }
        let Some(id) = id else {
            return Err($crate::StoreError::NotFound {
                what: "sighting just written",
                id: page.0.to_string(),
            });
        };
        for sighting_id in &ids {
            $crate::media::insert_timed_matches!($tx, *sighting_id, $matches, $now);
        }
        $crate::media::Recorded {
            sighting: $crate::media::SightingId(id),
            also_on,
        }
    }};
}
pub(crate) use sight_in;

/// Inside the open transaction `$tx`: sightings of `$sighting`'s media, with `$matches`, on
/// every page that embeds its URL but `$page`; evaluates to those pages.
///
/// On PostgreSQL a page mined concurrently can commit its embed after this statement's
/// snapshot and read the URL's media before this transaction commits, and miss both ways:
/// callers run it once more in a transaction of its own after committing
/// ([`catch_up_embeds`]). SQLite's single writer leaves no such gap.
macro_rules! sight_embeds_in {
    ($tx:ident, $sighting:expr, $page:expr, $matches:expr, $now:expr) => {{
        let sighting: &$crate::media::NewSighting = $sighting;
        let rows = sqlx::query($crate::media::SIGHT_EMBEDS)
            .bind(&sighting.media_sha256[..])
            .bind(sighting.url.0)
            .bind($page.0)
            .bind(sighting.seen_at)
            .fetch_all(&mut *$tx)
            .await?;
        let mut pages = Vec::with_capacity(rows.len());
        for row in &rows {
            let sighting_id = row.i64("id")?;
            pages.push($crate::frontier::UrlId(row.i64("page_url_id")?));
            $crate::media::insert_timed_matches!($tx, sighting_id, $matches, $now);
        }
        pages
    }};
}

/// After committing sightings on PostgreSQL: their embeds once more, in a transaction of their
/// own (see [`sight_embeds_in!`]); pages found now that were not found then are added to
/// `found`. Does nothing on SQLite.
pub(crate) async fn catch_up_embeds(
    backend: &Backend,
    seen: &[(&NewSighting, &[TimedMatch])],
    found: &mut [Vec<UrlId>],
    now: UnixMillis,
) -> Result<(), StoreError> {
    let Backend::Postgres(pool) = backend else {
        return Ok(());
    };
    // By media and URL, each one's pages in order (`SIGHT_EMBEDS`): the sightings' key
    // order, in which every writer locks them.
    let mut in_key_order: Vec<_> = seen.iter().zip(found.iter_mut()).collect();
    in_key_order.sort_by_key(|((sighting, _), _)| {
        let page = sighting.page.unwrap_or(sighting.url);
        (sighting.media_sha256, sighting.url.0, page.0)
    });
    let mut tx = pool.begin().await?;
    for ((sighting, matches), found) in in_key_order {
        if sighting
            .member_path
            .as_deref()
            .is_some_and(|m| !m.is_empty())
        {
            continue;
        }
        let page = sighting.page.unwrap_or(sighting.url);
        let matches: &[TimedMatch] = matches;
        for late in sight_embeds_in!(tx, *sighting, page, matches, now) {
            if !found.contains(&late) {
                found.push(late);
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

const INSERT_MEDIA: &str = "INSERT INTO media (sha256, md5, sha1, pdq, pdq_quality, size, kind, \
    width, height, first_seen, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
    ON CONFLICT (sha256) DO NOTHING RETURNING sha256";
const TOUCH_MEDIA: &str = "UPDATE media SET last_seen = $2 WHERE sha256 = $1 AND last_seen < $2";
const MEDIA_COLUMNS: &str = "SELECT sha256, md5, sha1, pdq, pdq_quality, size, kind, width, \
    height, first_seen, last_seen FROM media WHERE sha256 = $1";
/// A sighting's insert, up to its values: shared by the one-row and multi-row forms.
macro_rules! insert_sightings {
    () => {
        "INSERT INTO sightings (media_sha256, url_id, page_url_id, member_path, first_seen_at, \
         last_seen_at, server_ip) "
    };
}
/// A sighting seen again keeps its first time and server and moves its last time forward.
macro_rules! on_sighting_conflict {
    () => {
        " ON CONFLICT (media_sha256, url_id, page_url_id, member_path) DO UPDATE SET \
         last_seen_at = CASE WHEN sightings.last_seen_at < excluded.last_seen_at \
         THEN excluded.last_seen_at ELSE sightings.last_seen_at END"
    };
}
pub(crate) const INSERT_SIGHTINGS: &str = insert_sightings!();
pub(crate) const ON_SIGHTING_CONFLICT: &str = on_sighting_conflict!();
pub(crate) const UPSERT_SIGHTING: &str = concat!(
    insert_sightings!(),
    "VALUES ($1, $2, $3, $4, $5, $5, $6)",
    on_sighting_conflict!(),
    " RETURNING id"
);
/// Sightings of media on every page that embeds its URL, but the page `$3` it was seen for,
/// in page order (their unique key's: every writer locks sightings in that order).
/// (`WHERE` before `ON CONFLICT`: SQLite's parser needs one after an `INSERT … SELECT`.)
pub(crate) const SIGHT_EMBEDS: &str = concat!(
    insert_sightings!(),
    "SELECT $1, e.media_url_id, e.page_url_id, '', $4, $4, NULL FROM embeds e \
     WHERE e.media_url_id = $2 AND e.page_url_id <> $3 ORDER BY e.page_url_id",
    on_sighting_conflict!(),
    " RETURNING id, page_url_id"
);
/// The sighting of media at `$2` on page `$3`, and unless inside an archive (`$4` empty) on
/// every other page that embeds `$2`, in page order (as [`SIGHT_EMBEDS`]); returns each
/// sighting's id and page.
pub(crate) const SIGHT_ALL: &str = concat!(
    insert_sightings!(),
    "SELECT $1, $2, p.page, $4, $5, $5, $6 FROM (SELECT CAST($3 AS BIGINT) AS page \
        UNION SELECT e.page_url_id FROM embeds e WHERE e.media_url_id = $2 AND $4 = '') p \
     WHERE true ORDER BY p.page",
    on_sighting_conflict!(),
    " RETURNING id, page_url_id"
);
const SIGHTINGS_OF: &str = "SELECT id, media_sha256, url_id, page_url_id, member_path, \
    first_seen_at, last_seen_at, server_ip FROM sightings WHERE media_sha256 = $1 ORDER BY id";
const INSERT_MATCH: &str = "INSERT INTO matches (sighting_id, bank_id, bank_name, entry_id, \
    signal_type, distance, classification, matched_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
    ON CONFLICT (sighting_id, bank_id, entry_id) DO NOTHING";
/// Media's insert, up to its values: shared by the one-row and multi-row forms.
macro_rules! insert_media {
    () => {
        "INSERT INTO media (sha256, md5, sha1, pdq, pdq_quality, size, kind, width, height, \
         first_seen, last_seen) "
    };
}
/// Known media only has its last-seen time moved forward.
macro_rules! on_media_conflict {
    () => {
        " ON CONFLICT (sha256) DO UPDATE SET last_seen = CASE \
         WHEN media.last_seen < excluded.last_seen THEN excluded.last_seen \
         ELSE media.last_seen END"
    };
}
pub(crate) const INSERT_MEDIA_ROWS: &str = insert_media!();
pub(crate) const ON_MEDIA_CONFLICT: &str = on_media_conflict!();
pub(crate) const UPSERT_MEDIA: &str = concat!(
    insert_media!(),
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
    on_media_conflict!()
);
/// A timed match's insert, up to its values: shared by the one-row and multi-row forms.
macro_rules! insert_timed_matches_head {
    () => {
        "INSERT INTO matches (sighting_id, bank_id, bank_name, entry_id, signal_type, distance, \
         classification, matched_at, frame_ms) "
    };
}
pub(crate) const INSERT_TIMED_MATCH_ROWS: &str = insert_timed_matches_head!();
/// A match already recorded (same sighting, bank and entry) is left as it is.
macro_rules! on_match_conflict {
    () => {
        " ON CONFLICT (sighting_id, bank_id, entry_id) DO NOTHING"
    };
}
pub(crate) const ON_MATCH_CONFLICT: &str = on_match_conflict!();
pub(crate) const INSERT_TIMED_MATCH: &str = concat!(
    insert_timed_matches_head!(),
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    on_match_conflict!()
);
const TIMED_MATCHES_OF: &str = "SELECT bank_id, bank_name, entry_id, signal_type, distance, \
    classification, frame_ms FROM matches WHERE sighting_id = $1 \
    ORDER BY distance, bank_id, entry_id";
const MATCHES_OF: &str = "SELECT bank_id, bank_name, entry_id, signal_type, distance, \
    classification FROM matches WHERE sighting_id = $1 ORDER BY distance, bank_id, entry_id";

/// Media, sightings and matches.
pub struct MediaStore<'a> {
    backend: &'a Backend,
}

impl<'a> MediaStore<'a> {
    pub(crate) fn new(backend: &'a Backend) -> Self {
        MediaStore { backend }
    }

    /// Records media seen at `now`; returns true if it was new. Known media only has its
    /// last-seen time moved forward (the hashes of one SHA-256 never change).
    pub async fn record(&self, media: &MediaRecord, now: UnixMillis) -> Result<bool, StoreError> {
        check_text("media kind", &media.kind, MAX_LABEL_BYTES, false)?;
        let size = i64::try_from(media.size).unwrap_or(i64::MAX);
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let inserted = sqlx::query(INSERT_MEDIA)
                .bind(&media.sha256[..])
                .bind(&media.md5[..])
                .bind(&media.sha1[..])
                .bind(media.pdq.as_ref().map(|p| &p[..]))
                .bind(media.pdq_quality.map(i64::from))
                .bind(size)
                .bind(&media.kind)
                .bind(media.width.map(i64::from))
                .bind(media.height.map(i64::from))
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !inserted {
                sqlx::query(TOUCH_MEDIA)
                    .bind(&media.sha256[..])
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(inserted)
        })
    }

    /// The media with this SHA-256, if recorded.
    pub async fn get(&self, sha256: &[u8; 32]) -> Result<Option<Media>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            match sqlx::query(MEDIA_COLUMNS)
                .bind(&sha256[..])
                .fetch_optional(pool)
                .await?
            {
                Some(row) => media_from_row(&row).map(Some),
                None => Ok(None),
            }
        })
    }

    /// Records a sighting of recorded media (record the media first); recording the same
    /// media at the same URL, page and member again returns the same id and only moves its
    /// last-seen time forward.
    pub async fn record_sighting(&self, sighting: &NewSighting) -> Result<SightingId, StoreError> {
        check_sighting(sighting)?;
        let member = sighting.member_path.as_deref().unwrap_or("");
        let page = sighting.page.unwrap_or(sighting.url);
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query(UPSERT_SIGHTING)
                .bind(&sighting.media_sha256[..])
                .bind(sighting.url.0)
                .bind(page.0)
                .bind(member)
                .bind(sighting.seen_at)
                .bind(sighting.server_ip.as_deref())
                .fetch_one(pool)
                .await?;
            Ok(SightingId(row.i64("id")?))
        })
    }

    /// Every sighting of the media, oldest first.
    pub async fn sightings_of(&self, sha256: &[u8; 32]) -> Result<Vec<Sighting>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(SIGHTINGS_OF)
                .bind(&sha256[..])
                .fetch_all(pool)
                .await?;
            rows.iter().map(sighting_from_row).collect()
        })
    }

    /// Records matches of a sighting; returns how many were new. Matches already recorded
    /// (same sighting, bank and entry) are left as they are.
    pub async fn record_matches(
        &self,
        sighting: SightingId,
        matches: &[BankMatch],
        now: UnixMillis,
    ) -> Result<usize, StoreError> {
        for m in matches {
            check_match(m)?;
        }
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let mut inserted = 0;
            for m in matches {
                let done = sqlx::query(INSERT_MATCH)
                    .bind(sighting.0)
                    .bind(m.bank_id)
                    .bind(&m.bank_name)
                    .bind(m.entry_id)
                    .bind(&m.signal_type)
                    .bind(i64::from(m.distance))
                    .bind(&m.classification)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                inserted += usize::try_from(done.rows_affected()).unwrap_or(0);
            }
            tx.commit().await?;
            Ok(inserted)
        })
    }

    /// Records media seen at `now`, its sighting and the sighting's matches in one write
    /// transaction: what the crawler learnt from one fetched file, all or nothing. Idempotent
    /// as [`MediaStore::record`], [`MediaStore::record_sighting`] and
    /// [`MediaStore::record_matches`] are. Every other page recorded as embedding the URL
    /// (see [`crate::Frontier::enqueue_urls`]) gets a sighting with the same matches in the
    /// same transaction; returns the sighting and those pages.
    pub async fn record_seen(
        &self,
        media: &MediaRecord,
        sighting: &NewSighting,
        matches: &[TimedMatch],
        now: UnixMillis,
    ) -> Result<Recorded, StoreError> {
        check_seen(media, sighting, matches)?;
        let recorded = on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let recorded = record_seen_in!(tx, media, sighting, matches, now);
            tx.commit().await?;
            Ok::<_, StoreError>(recorded)
        })?;
        let mut found = [recorded.also_on];
        catch_up_embeds(self.backend, &[(sighting, matches)], &mut found, now).await?;
        let [also_on] = found;
        Ok(Recorded {
            sighting: recorded.sighting,
            also_on,
        })
    }

    /// The matches of a sighting with the video time of each, nearest first.
    pub async fn timed_matches_of(
        &self,
        sighting: SightingId,
    ) -> Result<Vec<TimedMatch>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(TIMED_MATCHES_OF)
                .bind(sighting.0)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(TimedMatch {
                        hit: match_from_row(row)?,
                        frame_ms: row.opt_i64("frame_ms")?,
                    })
                })
                .collect()
        })
    }

    /// The matches of a sighting, nearest first.
    pub async fn matches_of(&self, sighting: SightingId) -> Result<Vec<BankMatch>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(MATCHES_OF)
                .bind(sighting.0)
                .fetch_all(pool)
                .await?;
            rows.iter().map(match_from_row).collect()
        })
    }
}
