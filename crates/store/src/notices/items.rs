//! Items: one URL serving matched media, from attribution to verified removal; their
//! re-checks; and the matched sightings that do not have an item yet.

use super::{ItemId, MAX_NOTICE_LABEL_BYTES, MAX_NOTICE_TEXT_BYTES, NoticeId, NoticeStore};
use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::{StoreError, check_range, check_text};

/// A sighting with at least one bank match and no notice item yet: the notice worker's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchedSighting {
    pub sighting_id: i64,
    pub url: String,
    pub sha256: [u8; 32],
    pub md5: [u8; 16],
    pub sha1: [u8; 20],
    pub pdq: Option<[u8; 32]>,
    pub media_kind: String,
    /// The classification of the nearest match.
    pub classification: String,
    pub first_seen_at: UnixMillis,
}

/// An item to open, with the attribution that names its provider.
#[derive(Clone, Debug, PartialEq)]
pub struct NewItem {
    pub sighting_id: Option<i64>,
    pub url: String,
    pub host: String,
    /// Lowercase hex digests.
    pub sha256: String,
    pub md5: String,
    pub sha1: String,
    pub pdq: Option<String>,
    pub media_kind: String,
    pub classification: String,
    pub first_seen_at: UnixMillis,
    pub provider_key: String,
    pub provider_name: String,
    pub asn: Option<u32>,
    pub prefix: Option<String>,
    pub country: Option<String>,
    pub hotline: String,
    /// The CDN whose abuse channel receives the notice, if the host is behind one.
    pub via_cdn: Option<String>,
    /// How the provider was found (e.g. `rdap`, `override:asn`, `cdn`).
    pub method: String,
    /// 0–100.
    pub confidence_pct: u8,
    /// Contacts in the order to try, as JSON (the notice worker's format).
    pub contacts: String,
    /// The upstream network's abuse address, for escalation.
    pub upstream_contact: Option<String>,
    /// When the first notice about it may be composed (the end of its batch window).
    pub notice_due_at: UnixMillis,
    /// The removed item this is a re-upload of.
    pub reupload_of: Option<ItemId>,
}

/// An item as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct NoticeItem {
    pub id: i64,
    pub sighting_id: Option<i64>,
    pub url: String,
    pub host: String,
    pub sha256: String,
    pub md5: String,
    pub sha1: String,
    pub pdq: Option<String>,
    pub media_kind: String,
    pub classification: String,
    pub first_seen_at: UnixMillis,
    pub created_at: UnixMillis,
    pub provider_key: String,
    pub provider_name: String,
    pub asn: Option<i64>,
    pub prefix: Option<String>,
    pub country: Option<String>,
    pub hotline: String,
    pub via_cdn: Option<String>,
    pub method: String,
    pub confidence_pct: i64,
    pub contacts: String,
    pub upstream_contact: Option<String>,
    /// `open`, `removed` or `withdrawn`.
    pub state: String,
    pub removed_at: Option<UnixMillis>,
    pub removal_kind: Option<String>,
    /// A removal seen once, awaiting the confirming check.
    pub pending_outcome: Option<String>,
    pub pending_since: Option<UnixMillis>,
    pub next_check_at: Option<UnixMillis>,
    pub checks_done: i64,
    pub notices_sent: i64,
    /// Notices sent since the provider last answered.
    pub unanswered: i64,
    pub escalation_level: i64,
    pub notice_due_at: Option<UnixMillis>,
    pub pending_notice_id: Option<i64>,
    pub last_notice_at: Option<UnixMillis>,
    pub reupload_of: Option<i64>,
}

/// One re-check and what it changes on the item.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckRecord {
    pub at: UnixMillis,
    /// `present`, `gone`, `changed`, `placeholder`, `nxdomain`, `refused`, `inconclusive`.
    pub outcome: String,
    pub http_status: Option<u16>,
    pub detail: String,
    pub next_check_at: Option<UnixMillis>,
    /// A first removal-type outcome to confirm (`Some`) or none pending (`None`).
    pub pending: Option<(String, UnixMillis)>,
    /// Set when this check confirms the removal: kind and the time it was first seen.
    pub removed: Option<(String, UnixMillis)>,
}

/// What statistics need of an item.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemFact {
    pub id: i64,
    pub provider_name: String,
    pub country: Option<String>,
    pub hotline: String,
    pub state: String,
    pub created_at: UnixMillis,
    pub first_notice_at: Option<UnixMillis>,
    pub removed_at: Option<UnixMillis>,
    pub removal_kind: Option<String>,
    pub reupload_of: Option<i64>,
    pub notices_sent: i64,
}

impl ItemFact {
    /// From a row with the `notice_items` columns plus `first_notice_at`.
    pub(crate) fn from_row(row: &impl Get) -> Result<ItemFact, StoreError> {
        Ok(ItemFact {
            id: row.i64("id")?,
            provider_name: row.text("provider_name")?,
            country: row.opt_text("country")?,
            hotline: row.text("hotline")?,
            state: row.text("state")?,
            created_at: row.i64("created_at")?,
            first_notice_at: row.opt_i64("first_notice_at")?,
            removed_at: row.opt_i64("removed_at")?,
            removal_kind: row.opt_text("removal_kind")?,
            reupload_of: row.opt_i64("reupload_of")?,
            notices_sent: row.i64("notices_sent")?,
        })
    }
}

/// A removed item whose media stays watched for re-uploads.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchedItem {
    pub id: i64,
    pub url: String,
    pub sha256: String,
    pub pdq: Option<String>,
    pub next_check_at: Option<UnixMillis>,
}

const ITEM_COLUMNS: &str = "id, sighting_id, url, host, sha256, md5, sha1, pdq, media_kind, \
    classification, first_seen_at, created_at, provider_key, provider_name, asn, prefix, \
    country, hotline, via_cdn, method, confidence_pct, contacts, upstream_contact, state, \
    removed_at, removal_kind, pending_outcome, pending_since, next_check_at, checks_done, \
    notices_sent, unanswered, escalation_level, notice_due_at, pending_notice_id, \
    last_notice_at, reupload_of";

const UNNOTICED: &str = "SELECT s.id AS sighting_id, u.url AS url, m.sha256, m.md5, m.sha1, \
    m.pdq, m.kind, s.first_seen_at, \
    (SELECT x.classification FROM matches x WHERE x.sighting_id = s.id AND NOT EXISTS \
        (SELECT 1 FROM match_withdrawals w WHERE w.match_id = x.id) \
        ORDER BY x.distance, x.id LIMIT 1) AS classification \
    FROM sightings s JOIN urls u ON u.id = s.url_id JOIN media m ON m.sha256 = s.media_sha256 \
    WHERE s.id > $1 AND EXISTS (SELECT 1 FROM matches x WHERE x.sighting_id = s.id AND NOT EXISTS \
        (SELECT 1 FROM match_withdrawals w WHERE w.match_id = x.id)) \
    AND NOT EXISTS (SELECT 1 FROM notice_items i WHERE i.sighting_id = s.id) \
    AND NOT EXISTS (SELECT 1 FROM notice_items i WHERE i.url = u.url AND i.state = 'open') \
    ORDER BY s.id LIMIT $2";

const INSERT_ITEM: &str = "INSERT INTO notice_items (sighting_id, url, host, sha256, md5, sha1, \
    pdq, media_kind, classification, first_seen_at, created_at, provider_key, provider_name, \
    asn, prefix, country, hotline, via_cdn, method, confidence_pct, contacts, \
    upstream_contact, notice_due_at, reupload_of) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
    $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24) \
    ON CONFLICT (url) WHERE state = 'open' DO NOTHING RETURNING id";

fn fixed<const N: usize>(what: &'static str, bytes: Vec<u8>) -> Result<[u8; N], StoreError> {
    <[u8; N]>::try_from(bytes).map_err(|b| StoreError::Corrupt {
        what,
        value: format!("{} bytes", b.len()),
    })
}

fn item_from_row(row: &impl Get) -> Result<NoticeItem, StoreError> {
    Ok(NoticeItem {
        id: row.i64("id")?,
        sighting_id: row.opt_i64("sighting_id")?,
        url: row.text("url")?,
        host: row.text("host")?,
        sha256: row.text("sha256")?,
        md5: row.text("md5")?,
        sha1: row.text("sha1")?,
        pdq: row.opt_text("pdq")?,
        media_kind: row.text("media_kind")?,
        classification: row.text("classification")?,
        first_seen_at: row.i64("first_seen_at")?,
        created_at: row.i64("created_at")?,
        provider_key: row.text("provider_key")?,
        provider_name: row.text("provider_name")?,
        asn: row.opt_i64("asn")?,
        prefix: row.opt_text("prefix")?,
        country: row.opt_text("country")?,
        hotline: row.text("hotline")?,
        via_cdn: row.opt_text("via_cdn")?,
        method: row.text("method")?,
        confidence_pct: row.i64("confidence_pct")?,
        contacts: row.text("contacts")?,
        upstream_contact: row.opt_text("upstream_contact")?,
        state: row.text("state")?,
        removed_at: row.opt_i64("removed_at")?,
        removal_kind: row.opt_text("removal_kind")?,
        pending_outcome: row.opt_text("pending_outcome")?,
        pending_since: row.opt_i64("pending_since")?,
        next_check_at: row.opt_i64("next_check_at")?,
        checks_done: row.i64("checks_done")?,
        notices_sent: row.i64("notices_sent")?,
        unanswered: row.i64("unanswered")?,
        escalation_level: row.i64("escalation_level")?,
        notice_due_at: row.opt_i64("notice_due_at")?,
        pending_notice_id: row.opt_i64("pending_notice_id")?,
        last_notice_at: row.opt_i64("last_notice_at")?,
        reupload_of: row.opt_i64("reupload_of")?,
    })
}

impl NewItem {
    pub(super) fn check(&self) -> Result<(), StoreError> {
        check_text("item URL", &self.url, MAX_NOTICE_LABEL_BYTES * 4, false)?;
        for (field, value) in [
            ("host", &self.host),
            ("sha256", &self.sha256),
            ("md5", &self.md5),
            ("sha1", &self.sha1),
            ("media kind", &self.media_kind),
            ("provider key", &self.provider_key),
            ("provider name", &self.provider_name),
            ("hotline", &self.hotline),
            ("attribution method", &self.method),
        ] {
            check_text(field, value, MAX_NOTICE_LABEL_BYTES, false)?;
        }
        check_text(
            "classification",
            &self.classification,
            MAX_NOTICE_LABEL_BYTES,
            true,
        )?;
        check_text("contacts", &self.contacts, MAX_NOTICE_TEXT_BYTES, false)?;
        for value in [
            &self.pdq,
            &self.prefix,
            &self.country,
            &self.via_cdn,
            &self.upstream_contact,
        ]
        .into_iter()
        .flatten()
        {
            check_text("attribution field", value, MAX_NOTICE_LABEL_BYTES, true)?;
        }
        check_range("confidence", i64::from(self.confidence_pct), 0, 100)
    }
}

impl NoticeStore<'_> {
    /// Sightings with a match no appeal withdrew and no item yet, after sighting id `after`,
    /// oldest first.
    pub async fn unnoticed_matches(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<MatchedSighting>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(UNNOTICED)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(MatchedSighting {
                        sighting_id: row.i64("sighting_id")?,
                        url: row.text("url")?,
                        sha256: fixed("SHA-256", row.bytes("sha256")?)?,
                        md5: fixed("MD5", row.bytes("md5")?)?,
                        sha1: fixed("SHA-1", row.bytes("sha1")?)?,
                        pdq: row.opt_bytes("pdq")?.map(|b| fixed("PDQ", b)).transpose()?,
                        media_kind: row.text("kind")?,
                        classification: row.opt_text("classification")?.unwrap_or_default(),
                        first_seen_at: row.i64("first_seen_at")?,
                    })
                })
                .collect()
        })
    }

    /// Opens an item; `None` when an open item for the same URL already exists.
    pub async fn open_item(
        &self,
        item: &NewItem,
        now: UnixMillis,
    ) -> Result<Option<ItemId>, StoreError> {
        item.check()?;
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let row = sqlx::query(INSERT_ITEM)
                .bind(item.sighting_id)
                .bind(&item.url)
                .bind(&item.host)
                .bind(&item.sha256)
                .bind(&item.md5)
                .bind(&item.sha1)
                .bind(&item.pdq)
                .bind(&item.media_kind)
                .bind(&item.classification)
                .bind(item.first_seen_at)
                .bind(now)
                .bind(&item.provider_key)
                .bind(&item.provider_name)
                .bind(item.asn.map(i64::from))
                .bind(&item.prefix)
                .bind(&item.country)
                .bind(&item.hotline)
                .bind(&item.via_cdn)
                .bind(&item.method)
                .bind(i64::from(item.confidence_pct))
                .bind(&item.contacts)
                .bind(&item.upstream_contact)
                .bind(item.notice_due_at)
                .bind(item.reupload_of.map(|i| i.0))
                .fetch_optional(&mut *tx)
                .await?;
            let id = match row {
                Some(row) => Some(ItemId(row.i64("id")?)),
                None => None,
            };
            if let Some(id) = id {
                let detail = format!(
                    "attributed to {} by {} ({}%)",
                    item.provider_name, item.method, item.confidence_pct
                );
                sqlx::query(
                    "INSERT INTO notice_events (item_id, at, kind, detail) VALUES ($1, $2, $3, $4)",
                )
                .bind(id.0)
                .bind(now)
                .bind(if item.reupload_of.is_some() {
                    "reupload"
                } else {
                    "opened"
                })
                .bind(detail)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(id)
        })
    }

    /// One item.
    pub async fn item(&self, id: ItemId) -> Result<Option<NoticeItem>, StoreError> {
        let sql = format!("SELECT {ITEM_COLUMNS} FROM notice_items WHERE id = $1");
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(id.0)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(item_from_row).transpose()
        })
    }

    /// Items in `state` (`None`: all), newest first.
    pub async fn list_items(
        &self,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<NoticeItem>, StoreError> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM notice_items WHERE ($1 IS NULL OR state = $1) \
             ORDER BY id DESC LIMIT $2"
        );
        self.items_where(
            sql,
            vec![
                Bound::Text(state.map(str::to_owned)),
                Bound::Int(Some(limit)),
            ],
        )
        .await
    }

    /// The items a notice names.
    pub async fn items_of_notice(&self, notice: NoticeId) -> Result<Vec<NoticeItem>, StoreError> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM notice_items WHERE id IN \
             (SELECT item_id FROM notice_entries WHERE notice_id = $1) ORDER BY id"
        );
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(notice.0)
                .fetch_all(pool)
                .await?;
            rows.iter().map(item_from_row).collect()
        })
    }

    /// Open items due for a re-check at `now`, and removed items due for a watch check.
    pub async fn items_due_check(
        &self,
        now: UnixMillis,
        limit: i64,
    ) -> Result<Vec<NoticeItem>, StoreError> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM notice_items WHERE state IN ('open', 'removed') \
             AND next_check_at IS NOT NULL AND next_check_at <= $1 \
             ORDER BY next_check_at, id LIMIT $2"
        );
        self.items_where(sql, vec![Bound::Int(Some(now)), Bound::Int(Some(limit))])
            .await
    }

    /// Open items whose next notice is due and not already composed.
    pub async fn items_due_notice(
        &self,
        now: UnixMillis,
        limit: i64,
    ) -> Result<Vec<NoticeItem>, StoreError> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM notice_items WHERE state = 'open' \
             AND notice_due_at IS NOT NULL AND notice_due_at <= $1 \
             AND pending_notice_id IS NULL ORDER BY provider_key, id LIMIT $2"
        );
        self.items_where(sql, vec![Bound::Int(Some(now)), Bound::Int(Some(limit))])
            .await
    }

    /// Open items of a provider that are not yet in a composed notice (for batching).
    pub async fn unsent_items_of_provider(
        &self,
        provider_key: &str,
    ) -> Result<Vec<NoticeItem>, StoreError> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM notice_items WHERE state = 'open' \
             AND provider_key = $1 AND pending_notice_id IS NULL AND notice_due_at IS NOT NULL \
             ORDER BY id"
        );
        self.items_where(sql, vec![Bound::Text(Some(provider_key.to_owned()))])
            .await
    }

    async fn items_where(
        &self,
        sql: String,
        bound: Vec<Bound>,
    ) -> Result<Vec<NoticeItem>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for value in bound.clone() {
                query = match value {
                    Bound::Int(v) => query.bind(v),
                    Bound::Text(v) => query.bind(v),
                };
            }
            let rows = query.fetch_all(pool).await?;
            rows.iter().map(item_from_row).collect()
        })
    }
}

/// A value bound to a dynamic item query.
#[derive(Clone)]
enum Bound {
    Int(Option<i64>),
    Text(Option<String>),
}
