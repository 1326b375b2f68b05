//! Multi-hotline review of unknown media: hotlines (tenants) and their users and roles,
//! the review queue with near-duplicate grouping and consensus, classification facts and
//! the verdicts derived from them per scheme and jurisdiction, the encrypted media vault,
//! and the hash-chained audit trail.
//!
//! ```no_run
//! # async fn demo(store: aranea_store::Store) -> Result<(), aranea_review::ReviewError> {
//! use aranea_review::{Review, ReviewConfig, Schemes};
//! let review = Review::new(store, ReviewConfig::default(), Schemes::builtin());
//! let now = 1_700_000_000_000;
//! let login = review.login("ana", "correct horse battery", None, "203.0.113.9", now).await?;
//! review.intake(now).await?;                       // queued media → review items
//! if let Some(item) = review.next_item(&login.actor, now).await? {
//!     // show it blurred, let the analyst classify, then review.vote(...)
//! #   let _ = item;
//! }
//! # Ok(()) }
//! ```
//!
//! Rules this crate keeps: nobody is served an item twice or shown another analyst's
//! vote; an item is decided when the configured number of analysts agree, a disagreement
//! goes to a senior analyst; every human action is audited before its result is returned.
//! It must not render HTML (the server's UI does) nor keep plaintext media anywhere but
//! in memory.

mod access;
mod accounts;
pub mod audit;
mod banking;
mod config;
pub mod consensus;
mod decisions;
mod error;
pub mod facts;
mod near_duplicates;
mod queue;
pub mod reports;
mod second_factor;
pub mod thumbnail;
pub mod totp;
pub mod vault;
pub mod verdicts;
pub mod video_preview;

use std::sync::{Arc, Mutex};

use aranea_index::BankStore;
use aranea_store::Store;

pub use access::Actor;
pub use accounts::{
    Login, MAX_HOTLINE_CODE_BYTES, MAX_PASSWORD_BYTES, NewUserRequest, constant_time_eq,
};
pub use audit::{AuditAction, AuditActor, ChainReport};
pub use config::ReviewConfig;
pub use decisions::{ItemView, PENDING_DECISION_GRACE_MS, PendingDecisions, VoteOutcome};
pub use error::ReviewError;
pub use facts::Classification;
pub use queue::{IntakeReport, Wellness};
pub use reports::{ReportDetail, ReportView, ReportedUrl};
pub use second_factor::TotpEnrolment;
pub use vault::{MediaVault, VaultPublicKey, VaultReader, VaultSecretKey};
pub use verdicts::{Schemes, Verdict};

/// The review service. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct Review {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: ReviewConfig,
    schemes: Schemes,
    vault: Option<VaultReader>,
    banks: Option<Arc<dyn BankWriter>>,
    frames: Mutex<video_preview::FrameCache>,
}

/// Where positive decisions write hash entries. Implemented here for a bank store behind a
/// mutex (one process owns the bank directory); the server implements it for its live
/// banks, which take the bank directory's cross-process write lock and catch up with other
/// processes' writes before each change, so two writers never append from stale state.
pub trait BankWriter: Send + Sync {
    /// Runs `change` on the bank store under the writer lock and publishes the result.
    fn write_banks(
        &self,
        change: &mut dyn FnMut(&mut BankStore) -> Result<(), aranea_index::StoreError>,
    ) -> Result<(), aranea_index::StoreError>;
}

impl BankWriter for Mutex<BankStore> {
    fn write_banks(
        &self,
        change: &mut dyn FnMut(&mut BankStore) -> Result<(), aranea_index::StoreError>,
    ) -> Result<(), aranea_index::StoreError> {
        let mut store = self
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut store)?;
        store.publish()
    }
}

impl Review {
    /// A review service without vault access or banks: enough for accounts, the queue and
    /// votes. Decisions need [`Review::with_banks`].
    pub fn new(store: Store, config: ReviewConfig, schemes: Schemes) -> Review {
        Review::with_parts(store, config, schemes, None, None)
    }

    /// The full service: the vault's secret key opens media for analysts; positive
    /// decisions write to the banks.
    pub fn with_parts(
        store: Store,
        config: ReviewConfig,
        schemes: Schemes,
        vault_key: Option<VaultSecretKey>,
        banks: Option<Arc<dyn BankWriter>>,
    ) -> Review {
        let vault = vault_key.map(|key| VaultReader::new(store.clone(), key));
        Review {
            inner: Arc::new(Inner {
                store,
                config,
                schemes,
                vault,
                banks,
                frames: Mutex::default(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &ReviewConfig {
        &self.inner.config
    }

    pub fn schemes(&self) -> &Schemes {
        &self.inner.schemes
    }
}

/// Unix milliseconds now.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Review {
    /// The service as configured: verdict tables from `schemes_file` (else built in), the
    /// vault's secret key from `ARANEA_VAULT_SECRET_KEY` or `vault_secret_key_file` (else
    /// media cannot be shown), and the banks positive decisions write to.
    pub fn from_config(
        store: Store,
        config: ReviewConfig,
        banks: Option<Arc<dyn BankWriter>>,
    ) -> Result<Review, ReviewError> {
        banking::check_review_bank_name("platform_bank", &config.platform_bank)?;
        let schemes = match &config.schemes_file {
            Some(path) => Schemes::from_file(path)?,
            None => Schemes::builtin(),
        };
        let key = match std::env::var("ARANEA_VAULT_SECRET_KEY") {
            Ok(hex) if !hex.trim().is_empty() => Some(VaultSecretKey::from_hex(&hex)?),
            _ => match &config.vault_secret_key_file {
                Some(path) => {
                    let text = zeroize::Zeroizing::new(
                        std::fs::read_to_string(path)
                            .map_err(|_| ReviewError::Vault("cannot read the secret key file"))?,
                    );
                    Some(VaultSecretKey::from_hex(&text)?)
                }
                None => None,
            },
        };
        Ok(Review::with_parts(store, config, schemes, key, banks))
    }

    /// The writer's side of the vault for crawl workers, when a public key is configured.
    pub fn media_vault(
        store: Store,
        config: &ReviewConfig,
    ) -> Result<Option<MediaVault>, ReviewError> {
        match &config.vault_public_key {
            Some(hex) => Ok(Some(MediaVault::new(
                store,
                VaultPublicKey::from_hex(hex)?,
                config.retention_days,
            ))),
            None => Ok(None),
        }
    }
}
