//! What a decision does to the banks and the matches: a positive one puts every hash of
//! the item's media into a bank with provenance and turns every sighting into a match; an
//! appeal that changes the outcome disables (never deletes) the replaced decision's
//! entries and withdraws its matches. Each step is idempotent, so an interrupted decision
//! is finished by running it again.
//!
//! It must not decide anything: the decision is already recorded when this runs.

use std::sync::Arc;

use aranea_index::{BankSpec, NewEntry, Origin, Provenance, Signal, SignalType};
use aranea_store::{
    BankEntryRef, BankMatch, Decision, DecisionId, ItemMedia, ReviewItemId, UnixMillis,
};

use crate::error::ReviewError;
use crate::{BankWriter, Review};

/// The bank of a hotline that keeps its banks to itself.
pub(crate) fn hotline_bank_name(code: &str) -> String {
    format!("hotline-{code}")
}

/// Refuses a bank name that [`aranea_index::BankStore::create_bank`] would refuse, when the
/// configuration or a hotline names it rather than when the first positive decision is banked:
/// a decision that cannot be banked stays unapplied (retried, its media kept in the vault).
pub(crate) fn check_review_bank_name(field: &'static str, name: &str) -> Result<(), ReviewError> {
    if aranea_index::bank::valid_bank_name(name) && name != aranea_index::bank::ALL_BANKS {
        Ok(())
    } else {
        Err(ReviewError::invalid(
            field,
            format!(
                "{name:?} is not a usable bank name (1-64 ASCII letters, digits, '-', '_', '.' or ':', not \"{}\")",
                aranea_index::bank::ALL_BANKS
            ),
        ))
    }
}

impl Review {
    /// Carries out a decision's consequences. A positive decision whose predecessor was
    /// positive with the same classification keeps that predecessor's entries and matches.
    /// One that replaces a different outcome (another classification, or a reversal of a
    /// reversal) disables the predecessor's entries, withdraws its matches, and banks the
    /// media afresh in the same bank: bank entries cannot be reclassified or re-enabled, but a
    /// disabled entry is no duplicate, so the hashes go in again as new entries with this
    /// decision's provenance (the disabled ones stay for the record).
    pub(crate) async fn apply_decision(
        &self,
        id: DecisionId,
        now: UnixMillis,
    ) -> Result<(), ReviewError> {
        let desk = self.store().review_desk();
        let Some(decision) = desk
            .unapplied_decisions()
            .await?
            .into_iter()
            .find(|d| d.id == id)
        else {
            return Ok(());
        };
        let decisions = desk.decisions_on(decision.item).await?;
        let previous = decisions.iter().find(|d| d.superseded_by == Some(id));
        let kept = previous.filter(|p| {
            p.positive && decision.positive && p.classification == decision.classification
        });
        let media = desk.item_media(decision.item).await?;
        // Disabled first: the same hashes banked again below would otherwise be duplicates of
        // the replaced decision's entries.
        if let Some(previous) = previous.filter(|p| p.positive && kept.is_none()) {
            self.disable_entries(previous.id, id).await?;
            desk.withdraw_bank_entries(previous.id, id, now).await?;
        }
        if let Some(previous) = kept {
            let entries = desk.bank_entries_of(previous.id).await?;
            desk.record_bank_entries(id, &entries).await?;
        } else if decision.positive {
            let bank = self.bank_name(decision.item).await?;
            let entries = self.bank_media(&decision, &media, &bank).await?;
            desk.record_bank_entries(id, &entries).await?;
            self.record_matches(&decision, &entries, &bank, now).await?;
        }
        if decision.positive {
            for m in &media {
                desk.forget_negative(&m.sha256).await?;
            }
        } else {
            for m in &media {
                desk.record_negative(&m.sha256, id, now).await?;
            }
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
            return Ok(hotline_bank_name(&h.code));
        }
        Ok(self.config().platform_bank.clone())
    }

    /// Adds every hash of every media of the item to the bank `bank_name` (created if
    /// missing), in one bank transaction.
    async fn bank_media(
        &self,
        decision: &Decision,
        media: &[ItemMedia],
        bank_name: &str,
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
        let bank_name = bank_name.to_string();
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
        bank_name: &str,
        now: UnixMillis,
    ) -> Result<(), ReviewError> {
        for entry in entries
            .iter()
            .filter(|e| e.signal_type == SignalType::Sha256.name())
        {
            let m = BankMatch {
                bank_id: entry.bank_id,
                bank_name: bank_name.to_string(),
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
