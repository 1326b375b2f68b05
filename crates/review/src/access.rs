//! Who is acting, and what their role and hotline let them do. Every operation of the
//! review API takes an [`Actor`] and checks here first; the UI never decides access itself.
//!
//! Isolation rule: a user sees their own hotline's users, settings and audit rows; review
//! items are shared only as far as both hotlines share the review pool.

use aranea_store::{Hotline, ReviewItem, User, UserRole};

use crate::error::ReviewError;

/// A signed-in user with their hotline and the address they act from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user: User,
    pub hotline: Hotline,
    /// Client address (for the audit trail).
    pub source: String,
}

impl Actor {
    pub fn role(&self) -> UserRole {
        self.user.role
    }

    /// Analysts and senior analysts classify items.
    pub fn reviews(&self) -> bool {
        matches!(self.role(), UserRole::Analyst | UserRole::SeniorAnalyst)
    }

    pub fn is_senior(&self) -> bool {
        self.role() == UserRole::SeniorAnalyst
    }

    pub fn is_platform_admin(&self) -> bool {
        self.role() == UserRole::PlatformAdmin
    }

    /// Operators manage their own hotline; platform administrators every hotline.
    pub fn manages(&self, hotline: &Hotline) -> bool {
        match self.role() {
            UserRole::PlatformAdmin => true,
            UserRole::HotlineOperator => self.hotline.id == hotline.id,
            _ => false,
        }
    }

    /// Auditors read their hotline's trail; platform administrators the whole trail.
    pub fn audit_scope(&self) -> Result<Option<&str>, ReviewError> {
        match self.role() {
            UserRole::PlatformAdmin => Ok(None),
            UserRole::Auditor => Ok(Some(&self.hotline.code)),
            _ => Err(ReviewError::Forbidden("only auditors read the audit trail")),
        }
    }

    /// Whether the item is in this user's pool: their own hotline's, or shared both ways.
    /// `owner_shares_pool` says whether the item's hotline shares the pool (true when the
    /// item has no known hotline).
    pub fn pool_includes(&self, item: &ReviewItem, owner_shares_pool: bool) -> bool {
        match &item.owner_hotline {
            Some(code) if *code == self.hotline.code => true,
            _ => self.hotline.shares_review_pool && owner_shares_pool,
        }
    }

    pub(crate) fn require_reviewer(&self) -> Result<(), ReviewError> {
        if self.reviews() {
            Ok(())
        } else {
            Err(ReviewError::Forbidden("only analysts review items"))
        }
    }

    pub(crate) fn require_senior(&self) -> Result<(), ReviewError> {
        if self.is_senior() {
            Ok(())
        } else {
            Err(ReviewError::Forbidden(
                "only senior analysts settle and reopen items",
            ))
        }
    }
}
