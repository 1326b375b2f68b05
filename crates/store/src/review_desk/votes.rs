//! Votes (one per analyst and item, facts only), decisions, the bank entries a decision
//! created, media decided negative, and matches withdrawn after an appeal.

use super::items::{ItemState, item_missing};
use super::{DecisionId, HotlineId, ReviewDesk, ReviewItemId, UserId, flag, sha_from};
use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::{StoreError, check_text};
use crate::frontier::text_enum;

/// What an analyst recorded about an item: facts, never a verdict. The review crate owns
/// the vocabularies (age bands, severities) and checks them before they get here.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Facts {
    pub age_band: String,
    pub severity: String,
    pub harmful_context: bool,
    pub not_relevant: bool,
}

/// A recorded vote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    pub id: i64,
    pub item: ReviewItemId,
    pub user: UserId,
    pub hotline: HotlineId,
    pub facts: Facts,
    pub cast_at: UnixMillis,
}

/// How a decision was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecisionKind {
    /// Enough analysts agreed.
    Consensus,
    /// A senior analyst settled a disagreement.
    Senior,
    /// A senior analyst reclassified a decided item.
    Appeal,
}

text_enum!(DecisionKind, "decision kind", {
    Consensus => "consensus", Senior => "senior", Appeal => "appeal",
});

/// A decision to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDecision {
    pub kind: DecisionKind,
    pub decided_by: Option<UserId>,
    pub facts: Facts,
    /// The platform classification derived from the facts (e.g. `csam`), or `none`.
    pub classification: String,
    /// Whether the media goes into the platform bank.
    pub positive: bool,
    pub note: String,
}

/// A recorded decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub id: DecisionId,
    pub item: ReviewItemId,
    pub kind: DecisionKind,
    pub decided_by: Option<UserId>,
    pub facts: Facts,
    pub classification: String,
    pub positive: bool,
    pub note: String,
    pub decided_at: UnixMillis,
    /// When its consequences (bank, matches, purge) were carried out.
    pub applied_at: Option<UnixMillis>,
    /// The later decision (appeal) that replaced it.
    pub superseded_by: Option<DecisionId>,
}

/// A bank entry a positive decision created (or found already present).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankEntryRef {
    pub bank_id: i64,
    pub entry_id: i64,
    pub media_sha256: [u8; 32],
    pub signal_type: String,
    pub disabled_at: Option<UnixMillis>,
}

/// How a vote's tally moves its item, decided by the review crate's rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    pub to: ItemState,
    pub decision: Option<NewDecision>,
}

/// What became of a cast vote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoteCast {
    /// Nothing recorded: the user already voted, or the item is not open.
    Refused,
    /// Recorded; `votes` are all the item's votes the tally saw (this one included).
    Recorded {
        votes: Vec<Vote>,
        /// The state the settlement moved the item to, if it did.
        settled: Option<ItemState>,
        decision: Option<DecisionId>,
    },
}

const DECISION_COLUMNS: &str = "SELECT id, item_id, kind, decided_by, age_band, severity, \
    harmful_context, not_relevant, classification, positive, note, decided_at, applied_at, \
    superseded_by FROM decisions";

fn facts_from_row(row: &impl Get) -> Result<Facts, StoreError> {
    Ok(Facts {
        age_band: row.text("age_band")?,
        severity: row.text("severity")?,
        harmful_context: flag(row.i64("harmful_context")?),
        not_relevant: flag(row.i64("not_relevant")?),
    })
}

fn vote_from_row(row: &impl Get) -> Result<Vote, StoreError> {
    Ok(Vote {
        id: row.i64("id")?,
        item: ReviewItemId(row.i64("item_id")?),
        user: UserId(row.i64("user_id")?),
        hotline: HotlineId(row.i64("hotline_id")?),
        facts: facts_from_row(row)?,
        cast_at: row.i64("cast_at")?,
    })
}

fn decision_from_row(row: &impl Get) -> Result<Decision, StoreError> {
    Ok(Decision {
        id: DecisionId(row.i64("id")?),
        item: ReviewItemId(row.i64("item_id")?),
        kind: DecisionKind::parse(&row.text("kind")?)?,
        decided_by: row.opt_i64("decided_by")?.map(UserId),
        facts: facts_from_row(row)?,
        classification: row.text("classification")?,
        positive: flag(row.i64("positive")?),
        note: row.text("note")?,
        decided_at: row.i64("decided_at")?,
        applied_at: row.opt_i64("applied_at")?,
        superseded_by: row.opt_i64("superseded_by")?.map(DecisionId),
    })
}

fn check_facts(facts: &Facts) -> Result<(), StoreError> {
    check_text("age band", &facts.age_band, 32, false)?;
    check_text("severity", &facts.severity, 32, false)
}

fn check_decision(decision: &NewDecision) -> Result<(), StoreError> {
    check_facts(&decision.facts)?;
    check_text("classification", &decision.classification, 64, false)?;
    check_text("decision note", &decision.note, 4000, true)
}

/// What a settlement writes besides the item's state, inside the caller's transaction
/// `$tx` (one expansion per back-end): the decision, superseding the standing one, and the
/// queue entries of a decided item. Evaluates to the new decision's id, if any.
macro_rules! settle_in_tx {
    ($tx:ident, $item:expr, $to:expr, $decision:expr, $now:expr) => {{
        let mut id = None;
        if let Some(n) = $decision {
            let row = sqlx::query(
                "INSERT INTO decisions (item_id, kind, decided_by, age_band, severity, \
                 harmful_context, not_relevant, classification, positive, note, decided_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            )
            .bind($item.0)
            .bind(n.kind.as_str())
            .bind(n.decided_by.map(|u| u.0))
            .bind(&n.facts.age_band)
            .bind(&n.facts.severity)
            .bind(i64::from(n.facts.harmful_context))
            .bind(i64::from(n.facts.not_relevant))
            .bind(&n.classification)
            .bind(i64::from(n.positive))
            .bind(&n.note)
            .bind($now)
            .fetch_one(&mut *$tx)
            .await?;
            let new_id = row.i64("id")?;
            sqlx::query(
                "UPDATE decisions SET superseded_by = $2 \
                 WHERE item_id = $1 AND id <> $2 AND superseded_by IS NULL",
            )
            .bind($item.0)
            .bind(new_id)
            .execute(&mut *$tx)
            .await?;
            id = Some(DecisionId(new_id));
        }
        if $to == ItemState::Decided {
            sqlx::query(
                "UPDATE review_queue SET state = 'decided' WHERE media_sha256 IN \
                 (SELECT media_sha256 FROM review_item_media WHERE item_id = $1)",
            )
            .bind($item.0)
            .execute(&mut *$tx)
            .await?;
        }
        id
    }};
}

impl ReviewDesk<'_> {
    /// Records a vote on an open item and lets `settle` decide, from every vote recorded
    /// (oldest first, this one included), whether the item moves on; both happen in one
    /// transaction that holds the item's row, so no other vote can be recorded between the
    /// tally and the settlement (a vote racing the deciding one waits, then finds the item
    /// closed and is refused rather than recorded but never counted). Refused (nothing
    /// recorded) if the user already voted or the item is not open.
    pub async fn cast_vote<F>(
        &self,
        item: ReviewItemId,
        user: UserId,
        hotline: HotlineId,
        facts: &Facts,
        now: UnixMillis,
        settle: F,
    ) -> Result<VoteCast, StoreError>
    where
        F: FnOnce(&[Vote]) -> Option<Settlement>,
    {
        check_facts(facts)?;
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            // A no-op update takes PostgreSQL's row lock (SQLite's BEGIN IMMEDIATE already
            // serialises writers) and, after waiting for a settling transaction, re-reads
            // the state, so it sees the item closed.
            let open = sqlx::query(
                "UPDATE review_items SET state = state WHERE id = $1 AND state = 'open'",
            )
            .bind(item.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if open == 0 {
                return Ok(VoteCast::Refused);
            }
            let inserted = sqlx::query(
                "INSERT INTO votes (item_id, user_id, hotline_id, age_band, severity, \
                 harmful_context, not_relevant, cast_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (item_id, user_id) DO NOTHING",
            )
            .bind(item.0)
            .bind(user.0)
            .bind(hotline.0)
            .bind(&facts.age_band)
            .bind(&facts.severity)
            .bind(i64::from(facts.harmful_context))
            .bind(i64::from(facts.not_relevant))
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                return Ok(VoteCast::Refused);
            }
            let rows = sqlx::query("SELECT * FROM votes WHERE item_id = $1 ORDER BY id")
                .bind(item.0)
                .fetch_all(&mut *tx)
                .await?;
            let votes = rows
                .iter()
                .map(vote_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            let settlement = settle(&votes);
            let mut decision = None;
            if let Some(s) = &settlement {
                if let Some(n) = &s.decision {
                    check_decision(n)?;
                }
                sqlx::query(
                    "UPDATE review_items SET state = $2, \
                     decided_at = CASE WHEN $2 = 'decided' THEN $3 ELSE decided_at END \
                     WHERE id = $1",
                )
                .bind(item.0)
                .bind(s.to.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                decision = settle_in_tx!(tx, item, s.to, s.decision.as_ref(), now);
            }
            tx.commit().await?;
            Ok(VoteCast::Recorded {
                votes,
                settled: settlement.map(|s| s.to),
                decision,
            })
        })
    }

    /// The votes on an item, oldest first.
    pub async fn votes_on(&self, item: ReviewItemId) -> Result<Vec<Vote>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query("SELECT * FROM votes WHERE item_id = $1 ORDER BY id")
                .bind(item.0)
                .fetch_all(pool)
                .await?;
            rows.iter().map(vote_from_row).collect()
        })
    }

    /// A user's votes, newest first.
    pub async fn votes_by(&self, user: UserId, limit: u32) -> Result<Vec<Vote>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows =
                sqlx::query("SELECT * FROM votes WHERE user_id = $1 ORDER BY id DESC LIMIT $2")
                    .bind(user.0)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await?;
            rows.iter().map(vote_from_row).collect()
        })
    }

    /// Moves an item from one of `from` to `to` and records `decision` with it, in one
    /// transaction. Returns `Ok(None)` and changes nothing when the item was not in `from`
    /// (someone else settled it first); otherwise the new decision's id, if any. A new
    /// decision supersedes the item's earlier standing one.
    pub async fn settle(
        &self,
        item: ReviewItemId,
        from: &[ItemState],
        to: ItemState,
        decision: Option<&NewDecision>,
        now: UnixMillis,
    ) -> Result<Option<Option<DecisionId>>, StoreError> {
        if let Some(decision) = decision {
            check_decision(decision)?;
        }
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let from_a = from.first().copied().unwrap_or("");
        let from_b = from.get(1).copied().unwrap_or(from_a);
        let from_c = from.get(2).copied().unwrap_or(from_a);
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let moved = sqlx::query(
                "UPDATE review_items SET state = $2, \
                 decided_at = CASE WHEN $2 = 'decided' THEN $3 ELSE decided_at END \
                 WHERE id = $1 AND state IN ($4, $5, $6)",
            )
            .bind(item.0)
            .bind(to.as_str())
            .bind(now)
            .bind(from_a)
            .bind(from_b)
            .bind(from_c)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved == 0 {
                return Ok(None);
            }
            let id = settle_in_tx!(tx, item, to, decision, now);
            tx.commit().await?;
            Ok(Some(id))
        })
    }

    /// An item's decisions, oldest first.
    pub async fn decisions_on(&self, item: ReviewItemId) -> Result<Vec<Decision>, StoreError> {
        let sql = format!("{DECISION_COLUMNS} WHERE item_id = $1 ORDER BY id");
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(item.0)
                .fetch_all(pool)
                .await?;
            rows.iter().map(decision_from_row).collect()
        })
    }

    /// The item's standing decision (the latest, not superseded).
    pub async fn standing_decision(
        &self,
        item: ReviewItemId,
    ) -> Result<Option<Decision>, StoreError> {
        Ok(self
            .decisions_on(item)
            .await?
            .into_iter()
            .rfind(|d| d.superseded_by.is_none()))
    }

    /// Decisions whose consequences were not carried out yet (a crash in between), oldest first.
    pub async fn unapplied_decisions(&self) -> Result<Vec<Decision>, StoreError> {
        let sql = format!("{DECISION_COLUMNS} WHERE applied_at IS NULL ORDER BY id");
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await?;
            rows.iter().map(decision_from_row).collect()
        })
    }

    /// Marks a decision's consequences as carried out.
    pub async fn mark_applied(
        &self,
        decision: DecisionId,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        on_backend!(self.backend, |pool, d| {
            sqlx::query(
                "UPDATE decisions SET applied_at = $2 WHERE id = $1 AND applied_at IS NULL",
            )
            .bind(decision.0)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Records the bank entries a decision created (idempotent).
    pub async fn record_bank_entries(
        &self,
        decision: DecisionId,
        entries: &[BankEntryRef],
    ) -> Result<(), StoreError> {
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            for e in entries {
                sqlx::query(
                    "INSERT INTO decision_bank_entries (decision_id, bank_id, entry_id, \
                     media_sha256, signal_type) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (decision_id, bank_id, entry_id, media_sha256) DO NOTHING",
                )
                .bind(decision.0)
                .bind(e.bank_id)
                .bind(e.entry_id)
                .bind(&e.media_sha256[..])
                .bind(&e.signal_type)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The bank entries a decision created.
    pub async fn bank_entries_of(
        &self,
        decision: DecisionId,
    ) -> Result<Vec<BankEntryRef>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(
                "SELECT bank_id, entry_id, media_sha256, signal_type, disabled_at \
                 FROM decision_bank_entries WHERE decision_id = $1 ORDER BY bank_id, entry_id",
            )
            .bind(decision.0)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(BankEntryRef {
                        bank_id: row.i64("bank_id")?,
                        entry_id: row.i64("entry_id")?,
                        media_sha256: sha_from("SHA-256", row.bytes("media_sha256")?)?,
                        signal_type: row.text("signal_type")?,
                        disabled_at: row.opt_i64("disabled_at")?,
                    })
                })
                .collect()
        })
    }

    /// Marks a reversed decision's bank entries disabled and withdraws every match recorded
    /// against them (for the notice pipeline); returns how many matches were withdrawn.
    pub async fn withdraw_bank_entries(
        &self,
        reversed: DecisionId,
        by: DecisionId,
        now: UnixMillis,
    ) -> Result<u64, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            sqlx::query(
                "UPDATE decision_bank_entries SET disabled_at = $2 \
                 WHERE decision_id = $1 AND disabled_at IS NULL",
            )
            .bind(reversed.0)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let withdrawn = sqlx::query(
                "INSERT INTO match_withdrawals (match_id, decision_id, withdrawn_at) \
                 SELECT m.id, $2, $3 FROM matches m JOIN decision_bank_entries e \
                 ON e.bank_id = m.bank_id AND e.entry_id = m.entry_id WHERE e.decision_id = $1 \
                 ON CONFLICT (match_id) DO NOTHING",
            )
            .bind(reversed.0)
            .bind(by.0)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(withdrawn)
        })
    }

    /// Ids of withdrawn matches, for the notice pipeline and tests.
    pub async fn withdrawn_matches(&self) -> Result<Vec<i64>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query("SELECT match_id FROM match_withdrawals ORDER BY match_id")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| r.i64("match_id").map_err(Into::into))
                .collect()
        })
    }

    /// The matches on the media's sightings that no appeal withdrew, as (bank, entry,
    /// classification), ordered by bank and entry: what the notice pipeline may act on.
    pub async fn standing_matches(
        &self,
        sha256: &[u8; 32],
    ) -> Result<Vec<(i64, i64, String)>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(
                "SELECT m.bank_id, m.entry_id, m.classification FROM matches m \
                 JOIN sightings s ON s.id = m.sighting_id \
                 WHERE s.media_sha256 = $1 AND NOT EXISTS \
                 (SELECT 1 FROM match_withdrawals w WHERE w.match_id = m.id) \
                 ORDER BY m.bank_id, m.entry_id, m.id",
            )
            .bind(&sha256[..])
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.i64("bank_id")?,
                        r.i64("entry_id")?,
                        r.text("classification")?,
                    ))
                })
                .collect()
        })
    }

    /// Records media decided negative so it is never queued again (idempotent).
    pub async fn record_negative(
        &self,
        sha256: &[u8; 32],
        decision: DecisionId,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        on_backend!(self.backend, |pool, d| {
            sqlx::query(
                "INSERT INTO known_negatives (media_sha256, md5, sha1, pdq, decision_id, \
                 recorded_at) SELECT sha256, md5, sha1, pdq, $2, $3 FROM media WHERE sha256 = $1 \
                 ON CONFLICT (media_sha256) DO NOTHING",
            )
            .bind(&sha256[..])
            .bind(decision.0)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Removes media from the negatives (an appeal found it positive after all).
    pub async fn forget_negative(&self, sha256: &[u8; 32]) -> Result<(), StoreError> {
        on_backend!(self.backend, |pool, d| {
            sqlx::query("DELETE FROM known_negatives WHERE media_sha256 = $1")
                .bind(&sha256[..])
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Whether the media was decided negative.
    pub async fn is_negative(&self, sha256: &[u8; 32]) -> Result<bool, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query("SELECT 1 AS one FROM known_negatives WHERE media_sha256 = $1")
                .bind(&sha256[..])
                .fetch_optional(pool)
                .await?;
            Ok(row.is_some())
        })
    }

    /// Fails with NotFound unless the item exists.
    pub async fn require_item(&self, item: ReviewItemId) -> Result<(), StoreError> {
        match self.item(item).await? {
            Some(_) => Ok(()),
            None => Err(item_missing(item)),
        }
    }
}
