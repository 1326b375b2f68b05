//! The review room's records: hotlines, users and sessions, review items with their votes
//! and decisions, the media vault's ciphertext and the hash-chained audit trail.
//!
//! Like the rest of the store this records facts and enforces only what keeps them
//! consistent (one vote per analyst and item, one settlement of an open item, an unbroken
//! audit chain). Who may do what, consensus and verdicts belong to the `review` crate.

mod accounts;
mod audit;
mod items;
mod vault;
mod votes;

pub use accounts::{Hotline, NewHotline, NewUser, Session, User, UserRole};
pub use audit::{AuditEntry, AuditRecord};
pub use items::{Attach, ItemMedia, ItemState, QueuedMedia, ReviewItem};
pub use vault::VaultRecord;
pub use votes::{
    BankEntryRef, Decision, DecisionKind, Facts, NewDecision, Settlement, Vote, VoteCast,
};

use crate::backend::Backend;
use crate::error::StoreError;

macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}
row_id!(
    /// A hotline's row id.
    HotlineId
);
row_id!(
    /// A user's row id.
    UserId
);
row_id!(
    /// A review item's row id.
    ReviewItemId
);
row_id!(
    /// A decision's row id.
    DecisionId
);

/// Hotlines, users, sessions, review items, votes, decisions, vault and audit.
pub struct ReviewDesk<'a> {
    backend: &'a Backend,
}

impl<'a> ReviewDesk<'a> {
    pub(crate) fn new(backend: &'a Backend) -> Self {
        ReviewDesk { backend }
    }
}

pub(crate) fn sha_from(what: &'static str, bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|b| StoreError::Corrupt {
        what,
        value: format!("{} bytes", b.len()),
    })
}

pub(crate) fn flag(value: i64) -> bool {
    value != 0
}
