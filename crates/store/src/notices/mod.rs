//! Removal notices at rest: the items to be removed with the attribution that named their
//! hosting provider, the notices sent about them, re-checks, the timeline, and contact health.
//!
//! The notice worker (crate `aranea-notice`) decides what to send, when to re-check and when
//! an item counts as removed; this module records those decisions atomically and hands out
//! notices to send under a lease, so a worker that dies mid-send neither loses a notice nor
//! sends one twice. It holds no business rules: schedules and thresholds come from callers.
//!
//! Query API for the server and the CLI: [`NoticeStore::list_notices`] (and
//! [`NoticeStore::list_notices_page`] for keyset paging by cursor),
//! [`NoticeStore::notice`], [`NoticeStore::items_of_notice`], [`NoticeStore::timeline`],
//! [`NoticeStore::checks_of_item`], [`NoticeStore::item_facts`] (statistics input).

mod delivery;
mod item_lifecycle;
mod items;
mod link_key;
mod notice;
mod reads;
mod withdrawals;

pub use items::{CheckRecord, ItemFact, MatchedSighting, NewItem, NoticeItem, WatchedItem};
pub use link_key::{LinkKeyRing, LinkKeyRotation, RetiredLinkKey};
pub use notice::{NewNotice, Notice, NoticeEvent, NoticeFilter, NoticeState, ProviderResponse};
pub use reads::StateCounts;
pub use withdrawals::RetractionOwed;

use crate::backend::Backend;

/// Longest URL, address list or rendered text accepted, in bytes.
pub const MAX_NOTICE_TEXT_BYTES: usize = 4 * 1024 * 1024;
/// Longest label (provider name, method, state, outcome) accepted, in bytes.
pub const MAX_NOTICE_LABEL_BYTES: usize = 2048;

/// A notice item's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemId(pub i64);

/// A notice's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NoticeId(pub i64);

/// Notices, their items, checks and timeline.
pub struct NoticeStore<'a> {
    backend: &'a Backend,
}

impl<'a> NoticeStore<'a> {
    pub(crate) fn new(backend: &'a Backend) -> Self {
        NoticeStore { backend }
    }
}
