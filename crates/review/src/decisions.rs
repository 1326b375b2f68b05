//! Votes, consensus, senior settlement and appeal, and what a decision does: a positive
//! one puts every hash of the item's media into the bank with provenance, turns every
//! sighting into a match for the notice pipeline and purges the bytes; a negative one
//! records the media so it is never queued again. An appeal that reverses a positive
//! decision disables (never deletes) its bank entries and withdraws its matches.
//!
//! Consequences are applied after the decision is committed and marked applied only when
//! all are done, so [`Review::apply_pending`] finishes them after a crash; each step is
//! idempotent.

use std::sync::Arc;

use aranea_index::{BankSpec, NewEntry, Origin, Provenance, Signal, SignalType};
use aranea_store::{
    BankEntryRef, BankMatch, Decision, DecisionId, DecisionKind, Facts, ItemMedia, ItemState,
    NewDecision, ReviewItem, ReviewItemId, UnixMillis, Vote,
};

use crate::access::Actor;
use crate::audit::{self, AuditAction, AuditActor};
use crate::consensus::{Tally, tally};
use crate::error::ReviewError;
use crate::facts::Classification;
use crate::verdicts::Verdict;
use crate::{BankWriter, Review};

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

    /// Media bytes of an item for display: a blurred grayscale thumbnail (PNG), or with
    /// `reveal` the original, which is audited as a reveal. Returns (bytes, content type).
    pub async fn media_for(
        &self,
        actor: &Actor,
        id: ReviewItemId,
        sha256: &[u8; 32],
        reveal: bool,
        now: UnixMillis,
    ) -> Result<(Vec<u8>, &'static str), ReviewError> {
        let item = self.visible_item(actor, id).await?;
        let desk = self.store().review_desk();
        if !desk
            .item_media(item.id)
            .await?
            .iter()
            .any(|m| m.sha256 == *sha256)
        {
            return Err(ReviewError::NotFound("media"));
        }
        let vault = self
            .inner
            .vault
            .as_ref()
            .ok_or(ReviewError::NoVaultKey("secret"))?;
        let bytes = vault
            .open_media(sha256)
            .await?
            .ok_or(ReviewError::NotFound("media (purged)"))?;
        if reveal {
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
            return Ok((
                bytes.to_vec(),
                kind.map_or("application/octet-stream", crate::thumbnail::content_type),
            ));
        }
        let png = tokio::task::spawn_blocking(move || crate::thumbnail::blurred(&bytes))
            .await
            .map_err(|e| ReviewError::Task(e.to_string()))??;
        Ok((png, "image/png"))
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
        if !desk
            .cast_vote(id, actor.user.id, actor.hotline.id, facts, now)
            .await?
        {
            return Err(ReviewError::NotOpen(id.0));
        }
        let detail = facts_detail(facts);
        audit::record(
            self.store(),
            actor.into(),
            AuditAction::Vote,
            &format!("item:{id}"),
            &detail,
            now,
        )
        .await?;
        let votes: Vec<Facts> = desk
            .votes_on(id)
            .await?
            .into_iter()
            .map(|v| v.facts)
            .collect();
        let required = usize::try_from(self.config().consensus_votes).unwrap_or(usize::MAX);
        match tally(&votes, required, self.schemes()) {
            Tally::Collecting { .. } => Ok(VoteOutcome::Recorded),
            Tally::Disputed => {
                desk.settle(id, &[ItemState::Open], ItemState::Disputed, None, now)
                    .await?;
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
            Tally::Agreed { facts, verdict } => {
                let decision = self.new_decision(DecisionKind::Consensus, None, facts, verdict, "");
                let positive = decision.positive;
                let settled = desk
                    .settle(
                        id,
                        &[ItemState::Open],
                        ItemState::Decided,
                        Some(&decision),
                        now,
                    )
                    .await?;
                let Some(Some(decision_id)) = settled else {
                    // Another vote settled it at the same moment.
                    return Ok(VoteOutcome::Recorded);
                };
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
                    positive,
                })
            }
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

    /// Finishes the consequences of decisions a crash interrupted; returns how many.
    pub async fn apply_pending(&self, now: UnixMillis) -> Result<usize, ReviewError> {
        let pending = self.store().review_desk().unapplied_decisions().await?;
        for d in &pending {
            self.apply_decision(d.id, now).await?;
        }
        Ok(pending.len())
    }

    async fn apply_decision(&self, id: DecisionId, now: UnixMillis) -> Result<(), ReviewError> {
        let desk = self.store().review_desk();
        let Some(decision) = find_decision(&desk.unapplied_decisions().await?, id) else {
            return Ok(());
        };
        let decisions = desk.decisions_on(decision.item).await?;
        let previous = decisions.iter().find(|d| d.superseded_by == Some(id));
        let media = desk.item_media(decision.item).await?;
        if decision.positive {
            let entries = self.bank_media(&decision, &media).await?;
            desk.record_bank_entries(id, &entries).await?;
            self.record_matches(&decision, &entries, now).await?;
            for m in &media {
                desk.forget_negative(&m.sha256).await?;
            }
        } else {
            for m in &media {
                desk.record_negative(&m.sha256, id, now).await?;
            }
        }
        if let Some(previous) = previous.filter(|p| p.positive && !decision.positive) {
            self.disable_entries(previous.id, id).await?;
            desk.withdraw_bank_entries(previous.id, id, now).await?;
        }
        for m in &media {
            desk.vault_purge(&m.sha256, "decided", now).await?;
        }
        desk.mark_applied(id, now).await?;
        Ok(())
    }

    fn banks(&self) -> Result<Arc<dyn BankWriter>, ReviewError> {
        self.inner.banks.clone().ok_or(ReviewError::Forbidden(
            "this review service has no bank store",
        ))
    }

    async fn bank_name(&self, item: ReviewItemId) -> Result<String, ReviewError> {
        let desk = self.store().review_desk();
        let owner = desk.item(item).await?.and_then(|i| i.owner_hotline);
        if let Some(code) = owner
            && let Some(h) = desk.hotline_by_code(&code).await?
            && !h.shares_banks
        {
            return Ok(format!("hotline-{}", h.code));
        }
        Ok(self.config().platform_bank.clone())
    }

    /// Adds every hash of every media of the item to the bank, in one bank transaction.
    async fn bank_media(
        &self,
        decision: &Decision,
        media: &[ItemMedia],
    ) -> Result<Vec<BankEntryRef>, ReviewError> {
        let mut signals = Vec::new();
        for m in media {
            let Some(record) = self.store().media().get(&m.sha256).await? else {
                continue;
            };
            let r = record.record;
            let mut add = |t: SignalType, bytes: &[u8]| {
                if let Some(signal) = Signal::from_bytes(t, bytes) {
                    signals.push((m.sha256, signal));
                }
            };
            add(SignalType::Sha256, &r.sha256);
            add(SignalType::Md5, &r.md5);
            add(SignalType::Sha1, &r.sha1);
            if let Some(pdq) = r.pdq {
                add(SignalType::Pdq, &pdq);
            }
        }
        let bank_name = self.bank_name(decision.item).await?;
        let banks = self.banks()?;
        let classification = decision.classification.clone();
        let votes = self
            .store()
            .review_desk()
            .votes_on(decision.item)
            .await?
            .len();
        let origin = format!(
            "item {} decision {} ({}, {votes} votes)",
            decision.item,
            decision.id,
            decision.kind.as_str()
        );
        let added_by = format!("review:decision:{}", decision.id);
        let metadata = format!(
            "{{\"item\":{},\"decision\":{}}}",
            decision.item, decision.id
        );
        tokio::task::spawn_blocking(move || {
            let mut refs = Vec::with_capacity(signals.len());
            banks.write_banks(&mut |banks| {
                refs.clear();
                let bank = match banks.bank_id(&bank_name) {
                    Ok(id) => id,
                    Err(_) => {
                        banks.create_bank(BankSpec::new(&bank_name, "review", &classification))?
                    }
                };
                banks.begin_transaction()?;
                let provenance = banks.add_provenance(Provenance {
                    added_by: added_by.clone(),
                    added_at: aranea_index::bank::unix_now(),
                    origin: Origin::Review {
                        decision: origin.clone(),
                    },
                })?;
                let entries: Vec<NewEntry> = signals
                    .iter()
                    .map(|(_, signal)| NewEntry {
                        bank,
                        signal: *signal,
                        classification: Some(classification.clone()),
                        provenance,
                        line: 0,
                        metadata: Some(metadata.clone()),
                    })
                    .collect();
                let outcome = banks.append_entries(&entries)?;
                banks.commit_transaction()?;
                let mut added = outcome.added.iter();
                for (position, (sha, signal)) in signals.iter().enumerate() {
                    let id = match outcome.duplicates.iter().find(|(p, _)| *p == position) {
                        Some((_, existing)) => Some(*existing),
                        None => added.next().copied(),
                    };
                    if let Some(id) = id {
                        refs.push(BankEntryRef {
                            bank_id: i64::from(bank),
                            entry_id: i64::try_from(id).unwrap_or(i64::MAX),
                            media_sha256: *sha,
                            signal_type: signal.signal_type().name().to_string(),
                            disabled_at: None,
                        });
                    }
                }
                Ok(())
            })?;
            Ok::<_, ReviewError>(refs)
        })
        .await
        .map_err(|e| ReviewError::Task(e.to_string()))?
    }

    /// Every sighting of the item's media becomes a match on its SHA-256 entry.
    async fn record_matches(
        &self,
        decision: &Decision,
        entries: &[BankEntryRef],
        now: UnixMillis,
    ) -> Result<(), ReviewError> {
        let bank_name = self.bank_name(decision.item).await?;
        for entry in entries
            .iter()
            .filter(|e| e.signal_type == SignalType::Sha256.name())
        {
            let m = BankMatch {
                bank_id: entry.bank_id,
                bank_name: bank_name.clone(),
                entry_id: entry.entry_id,
                signal_type: entry.signal_type.clone(),
                distance: 0,
                classification: decision.classification.clone(),
            };
            for sighting in self
                .store()
                .media()
                .sightings_of(&entry.media_sha256)
                .await?
            {
                self.store()
                    .media()
                    .record_matches(sighting.id, std::slice::from_ref(&m), now)
                    .await?;
            }
        }
        Ok(())
    }

    async fn disable_entries(
        &self,
        reversed: DecisionId,
        by: DecisionId,
    ) -> Result<(), ReviewError> {
        let entries = self.store().review_desk().bank_entries_of(reversed).await?;
        let banks = self.banks()?;
        tokio::task::spawn_blocking(move || {
            banks.write_banks(&mut |banks| {
                let provenance = banks.add_provenance(Provenance {
                    added_by: format!("review:decision:{by}"),
                    added_at: aranea_index::bank::unix_now(),
                    origin: Origin::Review {
                        decision: format!("appeal decision {by} reverses {reversed}"),
                    },
                })?;
                for e in entries.iter().filter(|e| e.disabled_at.is_none()) {
                    let id = u64::try_from(e.entry_id).unwrap_or(u64::MAX);
                    let disabled = banks.state().entry(id).is_some_and(|entry| entry.disabled);
                    if !disabled {
                        banks.disable_entry(id, provenance)?;
                    }
                }
                Ok(())
            })?;
            Ok::<_, ReviewError>(())
        })
        .await
        .map_err(|e| ReviewError::Task(e.to_string()))?
    }
}

fn find_decision(decisions: &[Decision], id: DecisionId) -> Option<Decision> {
    decisions.iter().find(|d| d.id == id).cloned()
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
