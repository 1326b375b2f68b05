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
mod config;
pub mod consensus;
mod decisions;
mod error;
pub mod facts;
mod queue;
pub mod thumbnail;
pub mod totp;
pub mod vault;
pub mod verdicts;

use std::sync::{Arc, Mutex};

use aranea_index::BankStore;
use aranea_store::Store;

pub use access::Actor;
pub use accounts::{Login, NewUserRequest, constant_time_eq};
pub use audit::{AuditAction, AuditActor, ChainReport};
pub use config::ReviewConfig;
pub use decisions::{ItemView, VoteOutcome};
pub use error::ReviewError;
pub use facts::Classification;
pub use queue::{IntakeReport, Wellness};
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
    banks: Option<Arc<Mutex<BankStore>>>,
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
        banks: Option<Arc<Mutex<BankStore>>>,
    ) -> Review {
        let vault = vault_key.map(|key| VaultReader::new(store.clone(), key));
        Review {
            inner: Arc::new(Inner {
                store,
                config,
                schemes,
                vault,
                banks,
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
