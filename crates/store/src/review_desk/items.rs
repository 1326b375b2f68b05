//! Review items: one per distinct media, near-duplicates attached, with how widely the
//! media is exposed (pages, sites, providers) and who has been served it.

use super::accounts::{found, not_found};
use super::{ReviewDesk, ReviewItemId, UserId, sha_from};
use crate::UnixMillis;
use crate::backend::{Dialect, Get, on_backend};
use crate::error::StoreError;
use crate::frontier::text_enum;

/// Where an item stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ItemState {
    /// Collecting votes.
    Open,
    /// Votes disagreed: a senior analyst settles it.
    Disputed,
    /// A decision stands (a senior analyst may still reclassify it on appeal).
    Decided,
}

text_enum!(ItemState, "review item state", {
    Open => "open", Disputed => "disputed", Decided => "decided",
});

/// What [`ReviewDesk::attach_media`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// The media joined the item.
    Joined,
    /// Some item already holds the media.
    AlreadyHeld,
    /// The item was decided (or is gone): it takes no more media, which must find another.
    ItemDecided,
}

/// A review item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewItem {
    pub id: ReviewItemId,
    /// The media that opened the item.
    pub lead_sha256: [u8; 32],
    pub pdq: Option<[u8; 32]>,
    /// Code of the hotline whose report led to the media; `None` when unknown.
    pub owner_hotline: Option<String>,
    pub state: ItemState,
    pub pages: i64,
    pub sites: i64,
    pub providers: i64,
    pub created_at: UnixMillis,
    pub decided_at: Option<UnixMillis>,
}

/// A media of an item: the lead (distance 0) or a near-duplicate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemMedia {
    pub sha256: [u8; 32],
    pub pdq_distance: u32,
}

/// Media waiting in the crawler's review queue that no item holds yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedMedia {
    pub sha256: [u8; 32],
    pub pdq: Option<[u8; 32]>,
    pub owner_hotline: Option<String>,
}

const ITEM_COLUMNS: &str = "SELECT id, lead_sha256, pdq, owner_hotline, state, pages, sites, \
    providers, created_at, decided_at FROM review_items";

fn item_from_row(row: &impl Get) -> Result<ReviewItem, StoreError> {
    Ok(ReviewItem {
        id: ReviewItemId(row.i64("id")?),
        lead_sha256: sha_from("SHA-256", row.bytes("lead_sha256")?)?,
        pdq: row
            .opt_bytes("pdq")?
            .map(|b| sha_from("PDQ", b))
            .transpose()?,
        owner_hotline: row.opt_text("owner_hotline")?,
        state: ItemState::parse(&row.text("state")?)?,
        pages: row.i64("pages")?,
        sites: row.i64("sites")?,
        providers: row.i64("providers")?,
        created_at: row.i64("created_at")?,
        decided_at: row.opt_i64("decided_at")?,
    })
}

const PENDING_MEDIA: &str = "SELECT q.media_sha256, m.pdq, r.hotline FROM review_queue q \
    JOIN media m ON m.sha256 = q.media_sha256 \
    LEFT JOIN sightings s ON s.id = q.sighting_id \
    LEFT JOIN urls u ON u.id = s.page_url_id \
    LEFT JOIN urls mu ON mu.id = s.url_id \
    LEFT JOIN reports r ON r.id = COALESCE(u.report_id, mu.report_id) \
    WHERE q.state = 'pending' \
    AND NOT EXISTS (SELECT 1 FROM review_item_media im WHERE im.media_sha256 = q.media_sha256) \
    ORDER BY q.priority, q.created_at LIMIT $1";

const SET_QUEUE_STATE: &str = "UPDATE review_queue SET state = $2 WHERE media_sha256 = $1";

/// The sightings of an item's media: `$item` is the SQL naming the item's id.
macro_rules! item_sightings {
    ($item:literal) => {
        concat!(
            "FROM sightings s JOIN review_item_media im ON im.media_sha256 = s.media_sha256 \
             WHERE im.item_id = ",
            $item
        )
    };
}

/// The assignments that recount an item's exposure from all its media's sightings, and
/// note how many sightings that was. One definition for the one-item and the set forms.
macro_rules! recount_exposure {
    ($item:literal) => {
        concat!(
            "pages = (SELECT COUNT(DISTINCT s.page_url_id) ",
            item_sightings!($item),
            "), sites = (SELECT COUNT(DISTINCT h.registrable_domain) \
             FROM sightings s JOIN review_item_media im ON im.media_sha256 = s.media_sha256 \
             JOIN urls u ON u.id = s.page_url_id JOIN hosts h ON h.id = u.host_id \
             WHERE im.item_id = ",
            $item,
            "), providers = (SELECT COUNT(DISTINCT s.server_ip) ",
            item_sightings!($item),
            "), sightings_counted = (SELECT COUNT(*) ",
            item_sightings!($item),
            ")"
        )
    };
}

const EXPOSURE: &str = concat!(
    "UPDATE review_items SET ",
    recount_exposure!("$1"),
    " WHERE id = $1"
);

/// Recounts the undecided items whose media were sighted with an id in (`$1`, `$2`] and
/// whose number of sightings changed since they were counted (sightings are never deleted,
/// and one seen again is the same row): ids looked at twice change nothing, and a recount
/// starts from zero, so no sighting is counted twice.
const EXPOSURE_OF_SIGHTED: &str = concat!(
    "UPDATE review_items SET ",
    recount_exposure!("review_items.id"),
    " WHERE state <> 'decided' AND id IN (SELECT im.item_id FROM sightings s \
     JOIN review_item_media im ON im.media_sha256 = s.media_sha256 \
     WHERE s.id > $1 AND s.id <= $2) \
     AND sightings_counted <> (SELECT COUNT(*) ",
    item_sightings!("review_items.id"),
    ")"
);

/// Sightings looked at per statement, so catching up on a large crawl (or the first
/// recount of every item after migration 10) holds SQLite's write lock briefly each time.
const SIGHTINGS_PER_RECOUNT: i64 = 2_000;

/// How long after a sighting id is seen on PostgreSQL the transactions holding lower ids
/// are taken to have committed. PostgreSQL hands out ids at insert and shows rows at
/// commit, in any order, so a mark moved to the highest id seen could pass over a
/// settlement committing just after; a settlement's transaction lasts milliseconds to
/// seconds. SQLite has one writer at a time: its ids commit in order.
const SIGHTING_COMMIT_GRACE_MS: i64 = 60_000;

/// SQLite: the mark moves to the highest id looked at (never back, should two intakes run
/// at once).
const ADVANCE_EXPOSURE_MARK_IN_ID_ORDER: &str = "UPDATE review_exposure_mark SET \
    counted_through = $1, seen_max = $1, seen_at = $2 WHERE id = 1 AND counted_through < $1";

/// PostgreSQL: the mark moves to the id seen a grace period ago, and the id seen now is
/// noted, if that older id was seen a grace period ago and this run looked up to it.
const ADVANCE_EXPOSURE_MARK_AFTER_GRACE: &str = "UPDATE review_exposure_mark SET \
    counted_through = seen_max, seen_max = $1, seen_at = $2 \
    WHERE id = 1 AND seen_at <= $2 - $3 AND seen_max <= $1";

// Visible to a user: their own hotline's items, and, when their hotline shares the pool,
// items of no known hotline or of hotlines that share it too.
const NEXT_FOR_USER: &str = "SELECT i.id FROM review_items i WHERE i.state = 'open' \
    AND NOT EXISTS (SELECT 1 FROM item_views v WHERE v.item_id = i.id AND v.user_id = $1) \
    AND (i.owner_hotline = $2 OR ($3 = 1 AND (i.owner_hotline IS NULL OR i.owner_hotline IN \
        (SELECT code FROM hotlines WHERE shares_review_pool = 1)))) \
    ORDER BY i.providers DESC, i.sites DESC, i.pages DESC, i.id LIMIT 1";

impl ReviewDesk<'_> {
    /// Queued media (crawler's `review_queue`, still pending) that no item holds yet.
    pub async fn unassigned_queued_media(
        &self,
        limit: u32,
    ) -> Result<Vec<QueuedMedia>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(PENDING_MEDIA)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(QueuedMedia {
                        sha256: sha_from("SHA-256", row.bytes("media_sha256")?)?,
                        pdq: row
                            .opt_bytes("pdq")?
                            .map(|b| sha_from("PDQ", b))
                            .transpose()?,
                        owner_hotline: row.opt_text("hotline")?,
                    })
                })
                .collect()
        })
    }

    /// Opens an item for queued media; returns the item holding it if one already does.
    pub async fn open_item(
        &self,
        media: &QueuedMedia,
        now: UnixMillis,
    ) -> Result<ReviewItemId, StoreError> {
        let id = on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let held = sqlx::query("SELECT item_id FROM review_item_media WHERE media_sha256 = $1")
                .bind(&media.sha256[..])
                .fetch_optional(&mut *tx)
                .await?;
            let id = match held {
                Some(row) => row.i64("item_id")?,
                None => {
                    let row = sqlx::query(
                        "INSERT INTO review_items (lead_sha256, pdq, owner_hotline, created_at) \
                         VALUES ($1, $2, $3, $4) RETURNING id",
                    )
                    .bind(&media.sha256[..])
                    .bind(media.pdq.as_ref().map(|p| &p[..]))
                    .bind(media.owner_hotline.as_deref())
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    let id = row.i64("id")?;
                    sqlx::query(
                        "INSERT INTO review_item_media (media_sha256, item_id, pdq_distance, \
                         added_at) VALUES ($1, $2, 0, $3)",
                    )
                    .bind(&media.sha256[..])
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    id
                }
            };
            sqlx::query(SET_QUEUE_STATE)
                .bind(&media.sha256[..])
                .bind("in_review")
                .execute(&mut *tx)
                .await?;
            sqlx::query(EXPOSURE).bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
            id
        });
        Ok(ReviewItemId(id))
    }

    /// Attaches a near-duplicate to an item that is still undecided.
    pub async fn attach_media(
        &self,
        item: ReviewItemId,
        sha256: &[u8; 32],
        pdq_distance: u32,
        now: UnixMillis,
    ) -> Result<Attach, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            // The item's row is held until the media is in, so a settlement either comes
            // first (and the item is found decided) or sees the media with the rest (SQLite's
            // write lock does the same).
            let state_sql = if d == Dialect::Postgres {
                "SELECT state FROM review_items WHERE id = $1 FOR UPDATE"
            } else {
                "SELECT state FROM review_items WHERE id = $1"
            };
            let state = sqlx::query(state_sql)
                .bind(item.0)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.text("state"))
                .transpose()?;
            if !matches!(state.as_deref(), Some("open" | "disputed")) {
                return Ok(Attach::ItemDecided);
            }
            let done = sqlx::query(
                "INSERT INTO review_item_media (media_sha256, item_id, pdq_distance, added_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (media_sha256) DO NOTHING",
            )
            .bind(&sha256[..])
            .bind(item.0)
            .bind(i64::from(pdq_distance))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(SET_QUEUE_STATE)
                .bind(&sha256[..])
                .bind("in_review")
                .execute(&mut *tx)
                .await?;
            sqlx::query(EXPOSURE).bind(item.0).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(if done.rows_affected() == 1 {
                Attach::Joined
            } else {
                Attach::AlreadyHeld
            })
        })
    }

    /// Recounts an item's pages, sites and providers from its sightings.
    pub async fn refresh_exposure(&self, item: ReviewItemId) -> Result<(), StoreError> {
        let changed = on_backend!(self.backend, |pool, d| {
            sqlx::query(EXPOSURE)
                .bind(item.0)
                .execute(pool)
                .await?
                .rows_affected()
        });
        found(changed, "review item", item.0)
    }

    /// Recounts the exposure of every undecided item whose media gained sightings since
    /// it was counted, looking only at sightings above the exposure mark, so the queue's
    /// order follows media that keeps spreading; returns the items recounted. On
    /// PostgreSQL the ids of the last minute or so are looked at again by the next call
    /// (see [`SIGHTING_COMMIT_GRACE_MS`]). The crawler's writes are left as they are.
    pub async fn refresh_exposure_of_new_sightings(
        &self,
        now: UnixMillis,
    ) -> Result<u64, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let from = sqlx::query("SELECT counted_through FROM review_exposure_mark WHERE id = 1")
                .fetch_one(pool)
                .await?
                .i64("counted_through")?;
            let top = sqlx::query("SELECT COALESCE(MAX(id), 0) AS top_id FROM sightings")
                .fetch_one(pool)
                .await?
                .i64("top_id")?;
            let mut recounted = 0;
            let mut low = from;
            while low < top {
                let high = low.saturating_add(SIGHTINGS_PER_RECOUNT).min(top);
                let mut tx = pool.begin_with(d.begin_write()).await?;
                if d == Dialect::Postgres {
                    // Two intakes at once (the upkeep loop, an analyst's page, another
                    // server) would lock the same items' rows in their own orders and could
                    // deadlock: the mark's row makes them take turns, as SQLite's write
                    // lock does.
                    sqlx::query("SELECT id FROM review_exposure_mark WHERE id = 1 FOR UPDATE")
                        .execute(&mut *tx)
                        .await?;
                    // The planner prices the correlated counts per candidate high and would
                    // compile the statement (0.5-0.7 s each time on 10,000 sightings), for
                    // an execution of tens of milliseconds.
                    sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
                }
                recounted += sqlx::query(EXPOSURE_OF_SIGHTED)
                    .bind(low)
                    .bind(high)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                low = high;
            }
            let advance = match d {
                Dialect::Sqlite => sqlx::query(ADVANCE_EXPOSURE_MARK_IN_ID_ORDER)
                    .bind(top)
                    .bind(now),
                Dialect::Postgres => sqlx::query(ADVANCE_EXPOSURE_MARK_AFTER_GRACE)
                    .bind(top)
                    .bind(now)
                    .bind(SIGHTING_COMMIT_GRACE_MS),
            };
            advance.execute(pool).await?;
            Ok(recounted)
        })
    }

    /// Marks queued media as decided without an item (known negative, or already banked).
    pub async fn close_queued_media(&self, sha256: &[u8; 32]) -> Result<(), StoreError> {
        on_backend!(self.backend, |pool, d| {
            sqlx::query(SET_QUEUE_STATE)
                .bind(&sha256[..])
                .bind("decided")
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Ids and PDQ hashes of the items still collecting votes or disputed, for grouping.
    pub async fn undecided_item_pdqs(&self) -> Result<Vec<(ReviewItemId, [u8; 32])>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(
                "SELECT id, pdq FROM review_items WHERE state <> 'decided' AND pdq IS NOT NULL \
                 ORDER BY id",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok((
                        ReviewItemId(row.i64("id")?),
                        sha_from("PDQ", row.bytes("pdq")?)?,
                    ))
                })
                .collect()
        })
    }

    /// The item with this id.
    pub async fn item(&self, id: ReviewItemId) -> Result<Option<ReviewItem>, StoreError> {
        let sql = format!("{ITEM_COLUMNS} WHERE id = $1");
        on_backend!(self.backend, |pool, d| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id.0)
                .fetch_optional(pool)
                .await?
            {
                Some(row) => item_from_row(&row).map(Some),
                None => Ok(None),
            }
        })
    }

    /// The item holding this media, if any.
    pub async fn item_of_media(
        &self,
        sha256: &[u8; 32],
    ) -> Result<Option<ReviewItemId>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query("SELECT item_id FROM review_item_media WHERE media_sha256 = $1")
                .bind(&sha256[..])
                .fetch_optional(pool)
                .await?;
            row.map(|r| r.i64("item_id").map(ReviewItemId))
                .transpose()
                .map_err(Into::into)
        })
    }

    /// Items in `state`, widest exposure first.
    pub async fn items_with_state(
        &self,
        state: ItemState,
        limit: u32,
    ) -> Result<Vec<ReviewItem>, StoreError> {
        let sql = format!(
            "{ITEM_COLUMNS} WHERE state = $1 ORDER BY providers DESC, sites DESC, pages DESC, id \
             LIMIT $2"
        );
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(state.as_str())
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
            rows.iter().map(item_from_row).collect()
        })
    }

    /// The media of an item, lead first.
    pub async fn item_media(&self, id: ReviewItemId) -> Result<Vec<ItemMedia>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(
                "SELECT media_sha256, pdq_distance FROM review_item_media WHERE item_id = $1 \
                 ORDER BY pdq_distance, added_at, media_sha256",
            )
            .bind(id.0)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(ItemMedia {
                        sha256: sha_from("SHA-256", row.bytes("media_sha256")?)?,
                        pdq_distance: u32::try_from(row.i64("pdq_distance")?).unwrap_or(u32::MAX),
                    })
                })
                .collect()
        })
    }

    /// Serves the next open item to a user and records that it was served, so it is never
    /// served to them again. `hotline_code` and `shares_pool` describe the user's hotline.
    pub async fn serve_next_item(
        &self,
        user: UserId,
        hotline_code: &str,
        shares_pool: bool,
        now: UnixMillis,
    ) -> Result<Option<ReviewItemId>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let next = sqlx::query(NEXT_FOR_USER)
                .bind(user.0)
                .bind(hotline_code)
                .bind(i64::from(shares_pool))
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = next else {
                return Ok(None);
            };
            let id = row.i64("id")?;
            sqlx::query(
                "INSERT INTO item_views (item_id, user_id, served_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (item_id, user_id) DO NOTHING",
            )
            .bind(id)
            .bind(user.0)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(ReviewItemId(id)))
        })
    }

    /// When the item was served to the user, if it was.
    pub async fn served_at(
        &self,
        item: ReviewItemId,
        user: UserId,
    ) -> Result<Option<UnixMillis>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let row =
                sqlx::query("SELECT served_at FROM item_views WHERE item_id = $1 AND user_id = $2")
                    .bind(item.0)
                    .bind(user.0)
                    .fetch_optional(pool)
                    .await?;
            row.map(|r| r.i64("served_at"))
                .transpose()
                .map_err(Into::into)
        })
    }

    /// When items were served to the user at or after `since`, oldest first.
    pub async fn served_since(
        &self,
        user: UserId,
        since: UnixMillis,
    ) -> Result<Vec<UnixMillis>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(
                "SELECT served_at FROM item_views WHERE user_id = $1 AND served_at >= $2 \
                 ORDER BY served_at",
            )
            .bind(user.0)
            .bind(since)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| r.i64("served_at").map_err(Into::into))
                .collect()
        })
    }

    /// The items served to the user that are still open and carry no vote of theirs.
    pub async fn served_unvoted(&self, user: UserId) -> Result<Vec<ReviewItemId>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(
                "SELECT v.item_id FROM item_views v JOIN review_items i ON i.id = v.item_id \
                 WHERE v.user_id = $1 AND i.state = 'open' AND NOT EXISTS \
                 (SELECT 1 FROM votes x WHERE x.item_id = v.item_id AND x.user_id = $1) \
                 ORDER BY v.served_at",
            )
            .bind(user.0)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| r.i64("item_id").map(ReviewItemId).map_err(Into::into))
                .collect()
        })
    }
}

pub(crate) fn item_missing(id: ReviewItemId) -> StoreError {
    not_found("review item", id.0)
}
