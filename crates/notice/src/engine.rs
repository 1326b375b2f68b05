//! The notice worker: one pass turns new matches into attributed items, composes due
//! notices (one per provider and batch), delivers them exactly once, re-checks noticed and
//! removed URLs, schedules re-notices and escalations, and opens re-upload items.
//!
//! Time comes from a [`Clock`], so tests drive it with the simulated internet's clock. Many
//! workers may run against one database: notices are leased, compositions are idempotent.
//! Must never send media: notices carry URLs, hashes and ids only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use aranea_crawl::fetch::{FetchConfig, Fetcher};
use aranea_crawl::ssrf::{AddressPolicy, GuardedResolver};
use aranea_store::{ItemId, NewItem, Notice, NoticeId, NoticeItem, Store};

use crate::NoticeError;
use crate::asn::AsnDb;
use crate::attribution::{Attribution, Attributor, Contact};
use crate::clock::{Clock, UnixMillis};
use crate::compose::{Templates, compose};
use crate::config::NoticeConfig;
use crate::deliver::WebhookClient;
use crate::rdap::RdapClient;
use crate::reupload::RemovedMedia;

mod escalation;
mod lifecycle;
mod sending;
mod withdrawal;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PassReport {
    pub ingested: usize,
    pub unattributed: usize,
    pub reuploads: usize,
    pub composed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// Ids of the notices that failed for good this pass (each also logged at ERROR level).
    pub failed_notices: Vec<i64>,
    pub checked: usize,
    pub removed: usize,
    pub recovered: u64,
    /// Items an appeal withdrew this pass.
    pub withdrawn: usize,
    /// Retractions composed this pass (one per recipient of a withdrawn item's notices).
    pub retractions: usize,
    /// Pages queued for the crawler to fetch again, where removed media was seen (a
    /// re-upload under a new URL is found there).
    pub revisits: usize,
    /// Known hosts near a removal whose pages were queued again (a re-upload on another
    /// site of the same provider is found there).
    pub revisited_hosts: usize,
}

/// The engine with its clients.
pub struct NoticeEngine {
    store: Store,
    config: Arc<NoticeConfig>,
    clock: Arc<dyn Clock>,
    attributor: Attributor,
    templates: Templates,
    /// Re-checks build a fresh fetcher per pass from this: no pooled connection or cached
    /// DNS answer from a day ago may make a moved site look removed.
    fetch: FetchConfig,
    webhooks: WebhookClient,
    dkim: Option<lettre::message::dkim::DkimConfig>,
    worker: String,
    /// The keys of the respond links: the configured `link_secret`, or else the database's
    /// own, read (or made) on first use so that building an engine touches no database,
    /// and read again as [`crate::link_keys`] says (a rotated key is picked up).
    link_keys: tokio::sync::OnceCell<crate::link_keys::LinkKeys>,
    /// Sightings up to here were looked at in this process; attribution failures are
    /// retried hourly (engine clock) by starting over from 0.
    cursor: AtomicI64,
    last_full_scan: AtomicI64,
    /// Removed items indexed for re-upload lookups, with how many removed items there were
    /// when it was built. Items never leave `removed`, so an unchanged count is an
    /// unchanged set: the index is rebuilt only after a removal (by any worker), not for
    /// every batch of new matches.
    removed_media: tokio::sync::Mutex<Option<(i64, Arc<RemovedMedia>)>>,
}

fn ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

impl NoticeEngine {
    /// Builds the engine. `fetch` is the crawler's fetcher configuration (guard allowlist,
    /// name servers, TLS roots): re-checks, RDAP and webhooks all go through it.
    pub fn new(
        store: Store,
        config: NoticeConfig,
        fetch: FetchConfig,
        clock: Arc<dyn Clock>,
        worker: &str,
    ) -> Result<NoticeEngine, NoticeError> {
        let config = Arc::new(config);
        let setup = |e: &dyn std::fmt::Display| NoticeError::Setup {
            message: e.to_string(),
        };
        let fetcher = Fetcher::new(fetch.clone()).map_err(|e| setup(&e))?;
        let policy = Arc::new(AddressPolicy::new(&fetch.guard));
        let resolver = GuardedResolver::new(&fetch.guard, policy.clone()).map_err(|e| setup(&e))?;
        let asn = match &config.ip_to_asn_path {
            Some(path) => Some(Arc::new(AsnDb::open(path)?)),
            None => None,
        };
        let rdap = RdapClient::new(
            fetcher.clone(),
            config.rdap_base_urls.clone(),
            config.rdap_cache_secs,
            config.rdap_max_referrals,
            config.rdap_max_bytes,
        );
        let rdap = if config.rdap_bootstrap_files.is_empty() {
            rdap
        } else {
            rdap.with_bootstrap_files(
                crate::reload::Reloading::open(
                    "RDAP bootstrap",
                    config.rdap_bootstrap_files.clone(),
                    crate::rdap_bootstrap::Bootstrap::load,
                )
                .map_err(|e| setup(&e))?,
            )
        };
        let attributor = Attributor::new(
            config.clone(),
            fetch.guard.clone(),
            policy.clone(),
            resolver.clone(),
            asn,
            rdap,
        );
        let templates = Templates::load(config.templates_dir.as_deref())?;
        let webhooks = WebhookClient::new(resolver, policy).map_err(|e| setup(&e))?;
        let dkim = match &config.smtp.dkim {
            Some(d) => {
                let pem = std::fs::read_to_string(&d.private_key_path).map_err(|e| setup(&e))?;
                let key = lettre::message::dkim::DkimSigningKey::new(
                    &pem,
                    lettre::message::dkim::DkimSigningAlgorithm::Rsa,
                )
                .map_err(|e| setup(&e))?;
                Some(dkim_config(d, key))
            }
            None => None,
        };
        Ok(NoticeEngine {
            store,
            config,
            clock,
            attributor,
            templates,
            fetch,
            webhooks,
            dkim,
            worker: worker.to_owned(),
            link_keys: tokio::sync::OnceCell::new(),
            cursor: AtomicI64::new(0),
            last_full_scan: AtomicI64::new(0),
            removed_media: tokio::sync::Mutex::new(None),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &NoticeConfig {
        &self.config
    }

    /// The key that signs respond links now (see [`link_secret`] and
    /// [`crate::link_keys`]).
    pub async fn link_secret(&self) -> Result<Vec<u8>, NoticeError> {
        self.link_keys().await?.signing_key().await
    }

    async fn link_keys(&self) -> Result<&crate::link_keys::LinkKeys, NoticeError> {
        self.link_keys
            .get_or_try_init(|| crate::link_keys::LinkKeys::open(&self.config, &self.store))
            .await
    }

    /// Why a replaced data file (ASN table, RDAP bootstrap) was refused while the older
    /// data stays in use (each also logged at ERROR level when first seen).
    pub fn data_errors(&self) -> Vec<String> {
        self.attributor.data_errors()
    }

    /// One pass of every stage.
    pub async fn run_once(&self) -> Result<PassReport, NoticeError> {
        let mut report = PassReport::default();
        let now = self.clock.now();
        // Data files replaced since the last pass are swapped in (or refused and logged).
        self.attributor.reload_data();
        self.attributor.refresh();
        report.recovered = self
            .store
            .notices()
            .recover_expired(
                now,
                self.first_check_after(),
                i64::from(self.config.max_attempts.max(1)),
            )
            .await?;
        // Before anything is composed, so no new notice names a withdrawn URL.
        self.withdraw_appealed(now, &mut report).await?;
        self.ingest(now, &mut report).await?;
        self.compose_due(now, &mut report).await?;
        self.deliver_due(&mut report).await?;
        self.recheck_due(&mut report).await?;
        Ok(report)
    }

    fn first_check_after(&self) -> i64 {
        ms(self
            .config
            .recheck_after_secs
            .first()
            .copied()
            .unwrap_or(3600))
    }

    /// New matched sightings become items (or re-upload items when their media was removed).
    async fn ingest(&self, now: UnixMillis, report: &mut PassReport) -> Result<(), NoticeError> {
        if now.saturating_sub(self.last_full_scan.load(Ordering::Relaxed)) >= 3_600_000 {
            self.last_full_scan.store(now, Ordering::Relaxed);
            self.cursor.store(0, Ordering::Relaxed);
        }
        // Looked up once per pass, and only when there are new matches.
        let mut removed_this_pass: Option<Arc<RemovedMedia>> = None;
        loop {
            let after = self.cursor.load(Ordering::Relaxed);
            let batch = self.store.notices().unnoticed_matches(after, 200).await?;
            let Some(last) = batch.last().map(|m| m.sighting_id) else {
                return Ok(());
            };
            let removed = match removed_this_pass.clone() {
                Some(removed) => removed,
                None => {
                    let removed = self.removed_media().await?;
                    removed_this_pass = Some(Arc::clone(&removed));
                    removed
                }
            };
            for matched in &batch {
                let sha256 = hex(&matched.sha256);
                let pdq = matched.pdq.as_ref().map(|p| hex(p));
                let reupload_of = removed.find(&sha256, pdq.as_deref(), self.config.pdq_threshold);
                let attribution = match self.attributor.attribute(&matched.url, now).await {
                    Ok(a) => a,
                    Err(_) => {
                        report.unattributed += 1;
                        continue;
                    }
                };
                let item = NewItem {
                    sighting_id: Some(matched.sighting_id),
                    url: matched.url.clone(),
                    sha256,
                    md5: hex(&matched.md5),
                    sha1: hex(&matched.sha1),
                    pdq,
                    media_kind: matched.media_kind.clone(),
                    classification: matched.classification.clone(),
                    first_seen_at: matched.first_seen_at,
                    reupload_of,
                    ..self.item_attribution(&attribution, now)
                };
                if self.store.notices().open_item(&item, now).await?.is_some() {
                    report.ingested += 1;
                    report.reuploads += usize::from(reupload_of.is_some());
                }
            }
            self.cursor.store(last, Ordering::Relaxed);
        }
    }

    /// The removed items' media, rebuilt from the store when items were removed since the
    /// last build (here or by another worker).
    async fn removed_media(&self) -> Result<Arc<RemovedMedia>, NoticeError> {
        // Counted before the rows are read: a removal in between makes the next call
        // rebuild again rather than be missed.
        let removed_items = self.store.notices().removed_item_count().await?;
        let mut cached = self.removed_media.lock().await;
        if let Some((count, media)) = cached.as_ref()
            && *count == removed_items
        {
            return Ok(Arc::clone(media));
        }
        let media = Arc::new(RemovedMedia::new(
            &self.store.notices().watched_items().await?,
        ));
        *cached = Some((removed_items, Arc::clone(&media)));
        Ok(media)
    }

    /// The attribution part of an item (the media part is filled by the caller).
    fn item_attribution(&self, a: &Attribution, now: UnixMillis) -> NewItem {
        NewItem {
            sighting_id: None,
            url: String::new(),
            host: a.host.clone(),
            sha256: String::new(),
            md5: String::new(),
            sha1: String::new(),
            pdq: None,
            media_kind: String::new(),
            classification: String::new(),
            first_seen_at: now,
            provider_key: a.provider_key.clone(),
            provider_name: a.provider_name.clone(),
            asn: a.asn,
            prefix: a.prefix.clone(),
            country: a.country.clone(),
            hotline: a.hotline.clone(),
            via_cdn: a.via_cdn.clone(),
            method: a.method.clone(),
            confidence_pct: a.confidence_pct,
            contacts: serde_json::to_string(&a.contacts).unwrap_or_else(|_| "[]".to_owned()),
            upstream_contact: a.upstream_contact.clone(),
            notice_due_at: now.saturating_add(ms(self.config.batch_window_secs)),
            reupload_of: None,
        }
    }

    /// Composes every due notice: items grouped by provider, kind and escalation step.
    async fn compose_due(
        &self,
        now: UnixMillis,
        report: &mut PassReport,
    ) -> Result<(), NoticeError> {
        let due = self.store.notices().items_due_notice(now, 10_000).await?;
        let mut providers: Vec<String> = due.iter().map(|i| i.provider_key.clone()).collect();
        providers.dedup();
        for provider in providers {
            // The whole batch of the provider, including items whose own window is still
            // open: one notice per provider per window.
            let mut items = self
                .store
                .notices()
                .unsent_items_of_provider(&provider)
                .await?;
            // New items join the batch early; re-notices keep their own schedule.
            items.retain(|i| {
                i.notice_due_at
                    .is_some_and(|due| i.notices_sent == 0 || due <= now)
            });
            let moved = self.follow_moves(&mut items, now).await?;
            if moved {
                continue; // re-attributed items are composed on the next pass
            }
            // An escalation's recipient depends on the ladder steps its items have spent,
            // so escalations are grouped by level; reminders and first notices all go to the
            // provider, one notice per kind, each URL listed with its own history.
            let mut groups: BTreeMap<(String, i64), Vec<NoticeItem>> = BTreeMap::new();
            for item in items {
                let kind = self.kind_of(&item);
                let level = if kind == "escalation" {
                    item.escalation_level
                } else {
                    0
                };
                groups.entry((kind, level)).or_default().push(item);
            }
            for ((kind, level), group) in groups {
                report.composed += self.compose_group(&kind, level, &group, now).await?;
            }
        }
        Ok(())
    }

    /// Re-attributes items already noticed before notifying again: a site that moved is
    /// noticed to its new host. Returns whether any moved.
    async fn follow_moves(
        &self,
        items: &mut [NoticeItem],
        now: UnixMillis,
    ) -> Result<bool, NoticeError> {
        let mut moved = false;
        for item in items.iter().filter(|i| i.notices_sent > 0) {
            let Ok(current) = self.attributor.attribute(&item.url, now).await else {
                continue;
            };
            if current.provider_key != item.provider_key {
                let update = NewItem {
                    url: item.url.clone(),
                    sha256: item.sha256.clone(),
                    md5: item.md5.clone(),
                    sha1: item.sha1.clone(),
                    media_kind: item.media_kind.clone(),
                    ..self.item_attribution(&current, now)
                };
                self.store
                    .notices()
                    .reattribute_item(ItemId(item.id), &update, now, now)
                    .await?;
                moved = true;
            }
        }
        Ok(moved)
    }

    async fn compose_group(
        &self,
        kind: &str,
        level: i64,
        group: &[NoticeItem],
        now: UnixMillis,
    ) -> Result<usize, NoticeError> {
        let Some(first) = group.first() else {
            return Ok(0);
        };
        let contacts: Vec<Contact> = serde_json::from_str(&first.contacts).unwrap_or_default();
        let dead = self.store.notices().dead_contacts(now).await?;
        let requested_escalation = kind == "escalation";
        let (kind, contacts, index, step) =
            match self.recipients(kind, level, first, contacts, &dead) {
                Some(found) => found,
                None => {
                    // Nobody to tell at this step: try again after the re-notify interval.
                    for item in group {
                        self.store
                            .notices()
                            .schedule_notice(
                                ItemId(item.id),
                                now.saturating_add(ms(self.config.renotify_secs)),
                                item.escalation_level,
                            )
                            .await?;
                        self.store
                            .notices()
                            .record_event(
                                None,
                                Some(ItemId(item.id)),
                                now,
                                "no_contact",
                                &format!("no reachable contact for {kind} notice"),
                            )
                            .await?;
                    }
                    return Ok(0);
                }
            };
        let (hotline_id, hotline) = self.config.hotline_for(first.country.as_deref());
        // A hotline that handles its country itself gets the notice instead of the provider.
        let (contacts, index) = if hotline.mode == "forward" && kind != "escalation" {
            let to = Contact {
                channel: "smtp".to_owned(),
                address: hotline.email.clone(),
                role: format!("hotline:{hotline_id}"),
            };
            (vec![to], 0)
        } else {
            (contacts, index)
        };
        let parent = match first.reupload_of {
            Some(parent) => self
                .store
                .notices()
                .notices_of_item(ItemId(parent))
                .await?
                .into_iter()
                .next(),
            None => None,
        };
        let notice_kind = match kind.as_str() {
            "initial" => crate::compose::NoticeKind::Initial,
            "renotice" => crate::compose::NoticeKind::Renotice,
            "reupload" => crate::compose::NoticeKind::Reupload {
                parent_report: parent
                    .as_ref()
                    .map_or_else(|| "unknown".to_owned(), |p| p.report_id.clone()),
            },
            _ => crate::compose::NoticeKind::Escalation(
                step.as_ref()
                    .map(|(_, name)| name.clone())
                    .unwrap_or_default(),
            ),
        };
        let provider_name = if kind == "escalation" {
            format!("{} (escalation)", first.provider_name)
        } else {
            first.provider_name.clone()
        };
        let draft = crate::compose::Draft {
            provider_key: &first.provider_key,
            provider_name: &provider_name,
            items: group,
            kind: notice_kind,
            contacts: &contacts,
            contact_index: index,
            hotline_id: &hotline_id,
            hotline,
            language: self.config.language_for(first.country.as_deref()),
            notices_before: group.iter().map(|i| i.notices_sent).max().unwrap_or(0),
            parent_id: parent.map(|p| NoticeId(p.id)),
        };
        let notice = compose(
            &self.config,
            &self.templates,
            &draft,
            now,
            &self.link_secret().await?,
        )?;
        let ids: Vec<ItemId> = group.iter().map(|i| ItemId(i.id)).collect();
        let (notice_id, new) = self
            .store
            .notices()
            .create_notice(&notice, &ids, now)
            .await?;
        if new && requested_escalation {
            self.spend_ladder_steps(notice_id, &ids, step.as_ref(), now)
                .await?;
        }
        Ok(usize::from(new))
    }

    /// Records a provider's answer given through a signed link, verified with the current
    /// key or one rotated out lately.
    pub async fn respond(
        &self,
        token: &str,
        response: aranea_store::ProviderResponse,
        note: &str,
    ) -> Result<Answer, NoticeError> {
        respond(
            &self.store,
            self.link_keys().await?,
            token,
            response,
            note,
            self.clock.now(),
        )
        .await
    }
}

/// The key that signs and verifies the links of notices sent with `config` from `store`:
/// the configured `link_secret`, or when that is empty a random 32-byte key kept in the
/// database, made by the first process that needs it. Every process sharing the database
/// (`aranea notices run` signing, `aranea serve` verifying, on any machine) gets the same
/// key without configuration, and no one outside can derive it.
pub async fn link_secret(config: &NoticeConfig, store: &Store) -> Result<Vec<u8>, NoticeError> {
    if !config.link_secret.is_empty() {
        return Ok(config.link_secret.clone().into_bytes());
    }
    let mut candidate = [0u8; 32];
    getrandom::fill(&mut candidate).map_err(|e| NoticeError::Setup {
        message: format!("no system randomness for the respond links' key: {e}"),
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Ok(store.notices().link_key_or_insert(&candidate, now).await?)
}

/// A provider's answer through a notice's link.
#[derive(Debug)]
pub struct Answer {
    /// The notice as it was before this answer (its `response` is the earlier answer, if any).
    pub notice: Notice,
    /// Whether this answer was recorded: the store keeps only the first answer, and only to
    /// a notice that was sent.
    pub recorded: bool,
}

/// Verifies a respond token with `keys` and records the answer.
pub async fn respond(
    store: &Store,
    keys: &crate::link_keys::LinkKeys,
    token: &str,
    response: aranea_store::ProviderResponse,
    note: &str,
    now: UnixMillis,
) -> Result<Answer, NoticeError> {
    let reference = keys.verify(token, now).await?;
    let notice = store
        .notices()
        .notice_by_report(&reference)
        .await?
        .ok_or(NoticeError::UnknownNotice { reference })?;
    let note: String = note.chars().take(1000).collect();
    let recorded = store
        .notices()
        .respond(NoticeId(notice.id), response, &note, now)
        .await?;
    Ok(Answer { notice, recorded })
}

/// Relaxed/relaxed canonicalisation: lettre folds long headers (our subjects carry the
/// report id) after hashing them, which breaks `simple` header signatures. Message-ID is
/// signed too, so the idempotency key cannot be altered on the way.
fn dkim_config(
    config: &crate::config::DkimConfig,
    key: lettre::message::dkim::DkimSigningKey,
) -> lettre::message::dkim::DkimConfig {
    use lettre::message::dkim::{DkimCanonicalization, DkimCanonicalizationType};
    use lettre::message::header::HeaderName;
    let headers = ["From", "To", "Subject", "Date", "Message-ID"]
        .into_iter()
        .map(HeaderName::new_from_ascii_str)
        .collect();
    lettre::message::dkim::DkimConfig::new(
        config.selector.clone(),
        config.domain.clone(),
        key,
        headers,
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    )
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
