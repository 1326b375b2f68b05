//! Votes, consensus, senior settlement and appeal, and what a decision does: a positive
//! one puts every hash of the item's media into the bank with provenance, turns every
//! sighting into a match for the notice pipeline and purges the bytes; a negative one
//! records the media so it is never queued again. An appeal that changes a positive
//! decision's outcome or classification disables (never deletes) its bank entries and
//! withdraws its matches (see `banking.rs`).
//!
//! Consequences are applied after the decision is committed and marked applied only when
//! all are done, so [`Review::apply_pending`] finishes them after a crash; each step is
//! idempotent.

use aranea_store::{
    Decision, DecisionId, DecisionKind, Facts, ItemMedia, ItemState, NewDecision, ReviewItem,
    ReviewItemId, Settlement, UnixMillis, Vote, VoteCast,
};

use crate::Review;
use crate::access::Actor;
use crate::audit::{self, AuditAction, AuditActor};
use crate::consensus::{Tally, tally};
use crate::error::ReviewError;
use crate::facts::Classification;
use crate::verdicts::Verdict;

/// What a vote led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoteOutcome {
    /// Recorded; more votes are needed.
    Recorded,
    /// This vote completed the consensus.
    Decided {
        decision: DecisionId,
        positive: bool,
    },
    /// Votes disagree: the item goes to a senior analyst.
    Disputed,
}

/// An item as its page shows it to one user.
#[derive(Clone, Debug)]
pub struct ItemView {
    pub item: ReviewItem,
    pub media: Vec<ItemMedia>,
    /// (page URL, media URL) of each sighting.
    pub sightings: Vec<(String, String)>,
    /// The user's own vote, if they cast one (never anyone else's, for analysts).
    pub my_vote: Option<Facts>,
    /// Every vote: only for senior analysts on disputed or decided items.
    pub all_votes: Vec<Vote>,
    pub decision: Option<Decision>,
    /// Verdicts of the standing decision under the schemes of the user's jurisdiction.
    pub verdicts: Vec<Verdict>,
}

impl Review {
    async fn owner_shares_pool(&self, item: &ReviewItem) -> Result<bool, ReviewError> {
        let Some(code) = &item.owner_hotline else {
            return Ok(true);
        };
        Ok(self
            .store()
            .review_desk()
            .hotline_by_code(code)
            .await?
            .is_none_or(|h| h.shares_review_pool))
    }

    /// The item if the actor may see it: in their pool, and served to them (or they are a
    /// senior analyst). Anything else is "not found", so ids cannot be probed.
    pub(crate) async fn visible_item(
        &self,
        actor: &Actor,
        id: ReviewItemId,
    ) -> Result<ReviewItem, ReviewError> {
        actor.require_reviewer()?;
        let desk = self.store().review_desk();
        let item = desk.item(id).await?.ok_or(ReviewError::NotFound("item"))?;
        if !actor.pool_includes(&item, self.owner_shares_pool(&item).await?) {
            return Err(ReviewError::NotFound("item"));
        }
        if !actor.is_senior() && desk.served_at(id, actor.user.id).await?.is_none() {
            return Err(ReviewError::NotFound("item"));
        }
        Ok(item)
    }

    /// The item page's content; audited as a view.
    pub async fn item_for(
        &self,
        actor: &Actor,
        id: ReviewItemId,
        now: UnixMillis,
    ) -> Result<ItemView, ReviewError> {
        let item = self.visible_item(actor, id).await?;
        let desk = self.store().review_desk();
        let media = desk.item_media(id).await?;
        let mut sightings = Vec::new();
        for m in &media {
            for s in self
                .store()
                .media()
                .sightings_of(&m.sha256)
                .await?
                .into_iter()
                .take(50)
            {
                let page = self.store().frontier().url(s.page).await?.map(|u| u.url);
                let url = self.store().frontier().url(s.url).await?.map(|u| u.url);
                sightings.push((page.unwrap_or_default(), url.unwrap_or_default()));
            }
        }
        let votes = desk.votes_on(id).await?;
        let my_vote = votes
            .iter()
            .find(|v| v.user == actor.user.id)
            .map(|v| v.facts.clone());
        let all_votes = if actor.is_senior() && item.state != ItemState::Open {
            votes
        } else {
            Vec::new()
        };
        let decision = desk.standing_decision(id).await?;
        let verdicts = decision.as_ref().map_or_else(Vec::new, |d| {
            self.schemes()
                .verdicts(&actor.hotline.jurisdiction, &d.facts)
        });
        audit::record(
            self.store(),
            actor.into(),
            AuditAction::View,
            &format!("item:{id}"),
            "page",
            now,
        )
        .await?;
        Ok(ItemView {
            item,
            media,
            sightings,
            my_vote,
            all_votes,
            decision,
            verdicts,
        })
    }

    /// Fails with "not found" unless the media belongs to the item.
    pub(crate) async fn require_item_media(
        &self,
        id: ReviewItemId,
        sha256: &[u8; 32],
    ) -> Result<(), ReviewError> {
        let media = self.store().review_desk().item_media(id).await?;
        if media.iter().any(|m| m.sha256 == *sha256) {
            Ok(())
        } else {
            Err(ReviewError::NotFound("media"))
        }
    }

    /// Media bytes of an item for display: a blurred grayscale thumbnail (PNG, made once
    /// and kept sealed in the vault, see [`crate::VaultReader::thumbnail`]), or with `reveal` the
    /// original, which is audited as a reveal. Returns (bytes, content type).
    pub async fn media_for(
        &self,
        actor: &Actor,
        id: ReviewItemId,
        sha256: &[u8; 32],
        reveal: bool,
        now: UnixMillis,
    ) -> Result<(Vec<u8>, &'static str), ReviewError> {
        self.visible_item(actor, id).await?;
        self.require_item_media(id, sha256).await?;
        let vault = self
            .inner
            .vault
            .as_ref()
            .ok_or(ReviewError::NoVaultKey("secret"))?;
        if !reveal {
            let png = vault
                .thumbnail(sha256)
                .await?
                .ok_or(ReviewError::NotFound("media (purged)"))?;
            return Ok((png, "image/png"));
        }
        let bytes = vault
            .open_media(sha256)
            .await?
            .ok_or(ReviewError::NotFound("media (purged)"))?;
        let subject = format!("item:{id}");
        let detail = format!("media:{}", crate::vault::to_hex(sha256));
        audit::record(
            self.store(),
            actor.into(),
            AuditAction::Reveal,
            &subject,
            &detail,
            now,
        )
        .await?;
        let kind = aranea_hash::sniff(&bytes);
        Ok((
            bytes.to_vec(),
            kind.map_or("application/octet-stream", crate::thumbnail::content_type),
        ))
    }

    /// Records the actor's classification of an open item and settles it when the votes
    /// reach consensus or disagree.
    pub async fn vote(
        &self,
        actor: &Actor,
        id: ReviewItemId,
        classification: &Classification,
        now: UnixMillis,
    ) -> Result<VoteOutcome, ReviewError> {
        let item = self.visible_item(actor, id).await?;
        if item.state != ItemState::Open {
            return Err(ReviewError::NotOpen(id.0));
        }
        let desk = self.store().review_desk();
        let facts = classification.facts();
        let required = usize::try_from(self.config().consensus_votes).unwrap_or(usize::MAX);
        let mut made = None;
        // The tally runs inside the vote's transaction, so the decision counts exactly
        // the votes recorded: a vote racing this one either comes first and is counted
        // here, or finds the item closed and is refused.
        let cast = desk
            .cast_vote(id, actor.user.id, actor.hotline.id, facts, now, |votes| {
                let facts: Vec<Facts> = votes.iter().map(|v| v.facts.clone()).collect();
                match tally(&facts, required, self.schemes()) {
                    Tally::Collecting { .. } => None,
                    Tally::Disputed => Some(Settlement {
                        to: ItemState::Disputed,
                        decision: None,
                    }),
                    Tally::Agreed { facts, verdict } => {
                        let d =
                            self.new_decision(DecisionKind::Consensus, None, facts, verdict, "");
                        made = Some(d.clone());
                        Some(Settlement {
                            to: ItemState::Decided,
                            decision: Some(d),
                        })
                    }
                }
            })
            .await?;
        let VoteCast::Recorded {
            settled, decision, ..
        } = cast
        else {
            return Err(ReviewError::NotOpen(id.0));
        };
        audit::record(
            self.store(),
            actor.into(),
            AuditAction::Vote,
            &format!("item:{id}"),
            &facts_detail(facts),
            now,
        )
        .await?;
        match (settled, decision, made) {
            (Some(ItemState::Decided), Some(decision_id), Some(decision)) => {
                audit::record(
                    self.store(),
                    AuditActor::System,
                    AuditAction::Decision,
                    &format!("item:{id}"),
                    &decision_detail(decision_id, &decision),
                    now,
                )
                .await?;
                self.apply_decision(decision_id, now).await?;
                Ok(VoteOutcome::Decided {
                    decision: decision_id,
                    positive: decision.positive,
                })
            }
            (Some(ItemState::Disputed), _, _) => {
                audit::record(
                    self.store(),
                    AuditActor::System,
                    AuditAction::Decision,
                    &format!("item:{id}"),
                    "disputed: sent to a senior analyst",
                    now,
                )
                .await?;
                Ok(VoteOutcome::Disputed)
            }
            _ => Ok(VoteOutcome::Recorded),
        }
    }

    fn new_decision(
        &self,
        kind: DecisionKind,
        by: Option<&Actor>,
        facts: Facts,
        verdict: Option<String>,
        note: &str,
    ) -> NewDecision {
        NewDecision {
            kind,
            decided_by: by.map(|a| a.user.id),
            positive: verdict.is_some(),
            classification: verdict
                .unwrap_or_else(|| self.schemes().platform_default().to_string()),
            facts,
            note: note.to_string(),
        }
    }

    /// A senior analyst decides a disputed item.
    pub async fn settle_dispute(
        &self,
        senior: &Actor,
        id: ReviewItemId,
        classification: &Classification,
        note: &str,
        now: UnixMillis,
    ) -> Result<DecisionId, ReviewError> {
        senior.require_senior()?;
        self.visible_item(senior, id).await?;
        self.senior_decision(
            senior,
            id,
            ItemState::Disputed,
            DecisionKind::Senior,
            classification,
            note,
            now,
        )
        .await
    }

    /// A senior analyst reclassifies a decided item (appeal). When the outcome changes from
    /// positive to negative the bank entries are disabled and the matches withdrawn.
    pub async fn reopen(
        &self,
        senior: &Actor,
        id: ReviewItemId,
        classification: &Classification,
        note: &str,
        now: UnixMillis,
    ) -> Result<DecisionId, ReviewError> {
        senior.require_senior()?;
        self.visible_item(senior, id).await?;
        if note.trim().is_empty() {
            return Err(ReviewError::invalid("note", "an appeal needs a reason"));
        }
        self.senior_decision(
            senior,
            id,
            ItemState::Decided,
            DecisionKind::Appeal,
            classification,
            note,
            now,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn senior_decision(
        &self,
        senior: &Actor,
        id: ReviewItemId,
        from: ItemState,
        kind: DecisionKind,
        classification: &Classification,
        note: &str,
        now: UnixMillis,
    ) -> Result<DecisionId, ReviewError> {
        let facts = classification.facts().clone();
        let verdict = self.schemes().platform_verdict(&facts).map(str::to_string);
        let decision = self.new_decision(kind, Some(senior), facts, verdict, note);
        let settled = self
            .store()
            .review_desk()
            .settle(id, &[from], ItemState::Decided, Some(&decision), now)
            .await?;
        let Some(Some(decision_id)) = settled else {
            return Err(ReviewError::NotOpen(id.0));
        };
        let action = if kind == DecisionKind::Appeal {
            AuditAction::Appeal
        } else {
            AuditAction::Decision
        };
        audit::record(
            self.store(),
            senior.into(),
            action,
            &format!("item:{id}"),
            &decision_detail(decision_id, &decision),
            now,
        )
        .await?;
        // The decisions this one replaces are carried out first, in order: applied before
        // them, it would find nothing of theirs to undo, and they, finished later by
        // `apply_pending`, would override it. If one fails, this one waits with it.
        let earlier: Vec<DecisionId> = self
            .store()
            .review_desk()
            .unapplied_decisions()
            .await?
            .into_iter()
            .filter(|d| d.item == id && d.id != decision_id)
            .map(|d| d.id)
            .collect();
        for earlier in earlier {
            self.apply_decision(earlier, now).await?;
        }
        self.apply_decision(decision_id, now).await?;
        Ok(decision_id)
    }

    /// Disputed items in the senior analyst's pool.
    pub async fn disputed_items(&self, senior: &Actor) -> Result<Vec<ReviewItem>, ReviewError> {
        senior.require_senior()?;
        let mut out = Vec::new();
        for item in self
            .store()
            .review_desk()
            .items_with_state(ItemState::Disputed, 500)
            .await?
        {
            if senior.pool_includes(&item, self.owner_shares_pool(&item).await?) {
                out.push(item);
            }
        }
        Ok(out)
    }

    /// Decided items in the senior analyst's pool, for appeal.
    pub async fn decided_items(&self, senior: &Actor) -> Result<Vec<ReviewItem>, ReviewError> {
        senior.require_senior()?;
        let mut out = Vec::new();
        for item in self
            .store()
            .review_desk()
            .items_with_state(ItemState::Decided, 500)
            .await?
        {
            if senior.pool_includes(&item, self.owner_shares_pool(&item).await?) {
                out.push(item);
            }
        }
        Ok(out)
    }

    /// The actor's own votes, newest first, with the item's current state.
    pub async fn history(
        &self,
        actor: &Actor,
        limit: u32,
    ) -> Result<Vec<(Vote, ItemState)>, ReviewError> {
        actor.require_reviewer()?;
        let desk = self.store().review_desk();
        let mut out = Vec::new();
        for vote in desk.votes_by(actor.user.id, limit).await? {
            let state = desk
                .item(vote.item)
                .await?
                .map_or(ItemState::Open, |i| i.state);
            out.push((vote, state));
        }
        Ok(out)
    }

    /// Finishes the consequences of decisions a crash or a failed bank write left unapplied,
    /// in this process or any other sharing the database: those decided at least
    /// [`PENDING_DECISION_GRACE_MS`] before `now` (a newer one is still being applied by the
    /// request that made it). They are taken in the order they were made; a decision that
    /// fails again holds back the later decisions on its item (an appeal applied before the
    /// decision it replaces would have nothing to undo), and both are tried on the next call.
    pub async fn apply_pending(&self, now: UnixMillis) -> Result<PendingDecisions, ReviewError> {
        let pending = self.store().review_desk().unapplied_decisions().await?;
        let mut outcome = PendingDecisions::default();
        let mut failed_items = std::collections::HashSet::new();
        for d in pending
            .iter()
            .filter(|d| d.decided_at <= now.saturating_sub(PENDING_DECISION_GRACE_MS))
        {
            if failed_items.contains(&d.item) {
                outcome.held.push(d.id);
                continue;
            }
            match self.apply_decision(d.id, now).await {
                Ok(()) => outcome.applied.push(d.id),
                Err(error) => {
                    failed_items.insert(d.item);
                    outcome.failed.push((d.id, error));
                }
            }
        }
        Ok(outcome)
    }
}

/// How long [`Review::apply_pending`] leaves a new decision to the request that made it,
/// which applies it at once, before finishing it itself.
pub const PENDING_DECISION_GRACE_MS: UnixMillis = 60_000;

/// What [`Review::apply_pending`] did.
#[derive(Debug, Default)]
pub struct PendingDecisions {
    /// Decisions whose consequences are now all carried out.
    pub applied: Vec<DecisionId>,
    /// Decisions that failed again, with why.
    pub failed: Vec<(DecisionId, ReviewError)>,
    /// Later decisions on the item of a failed one, left for the next call.
    pub held: Vec<DecisionId>,
}

fn facts_detail(f: &Facts) -> String {
    format!(
        "age_band={} severity={} harmful_context={} not_relevant={}",
        f.age_band, f.severity, f.harmful_context, f.not_relevant
    )
}

fn decision_detail(id: DecisionId, d: &NewDecision) -> String {
    format!(
        "decision={id} kind={} classification={} positive={} {}",
        d.kind.as_str(),
        d.classification,
        d.positive,
        facts_detail(&d.facts)
    )
}
