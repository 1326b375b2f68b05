//! The audit trail: every login, view, reveal, vote, decision and setting change, with who,
//! when, what and from where, appended to a hash chain (see the store's `audit_append`).
//! [`verify`] walks the chain and names every row that does not fit.
//!
//! Nothing here may update or delete an audit row.

use aranea_store::{AuditEntry, AuditRecord, Store, UnixMillis};

use crate::access::Actor;
use crate::error::ReviewError;

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    Login,
    LoginFailed,
    Logout,
    /// An item was served or its page shown (blurred).
    View,
    /// Media was shown unblurred.
    Reveal,
    Vote,
    Decision,
    /// A senior analyst reclassified a decided item.
    Appeal,
    HotlineAdded,
    UserAdded,
    UserDisabled,
    UserEnabled,
    /// An operator or administrator reset a user's lost second factor.
    SecondFactorReset,
    /// Sharing, caps, second factor and other settings.
    Setting,
    /// The audit trail itself was read.
    AuditRead,
    /// A signed-in user submitted a reported URL as their hotline.
    ReportAdded,
    /// An operator corrected a report's status by hand.
    ReportStatus,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Login => "login",
            AuditAction::LoginFailed => "login_failed",
            AuditAction::Logout => "logout",
            AuditAction::View => "view",
            AuditAction::Reveal => "reveal",
            AuditAction::Vote => "vote",
            AuditAction::Decision => "decision",
            AuditAction::Appeal => "appeal",
            AuditAction::HotlineAdded => "hotline_added",
            AuditAction::UserAdded => "user_added",
            AuditAction::UserDisabled => "user_disabled",
            AuditAction::UserEnabled => "user_enabled",
            AuditAction::SecondFactorReset => "second_factor_reset",
            AuditAction::Setting => "setting",
            AuditAction::AuditRead => "audit_read",
            AuditAction::ReportAdded => "report_added",
            AuditAction::ReportStatus => "report_status",
        }
    }
}

/// Who did it: a signed-in user, or the command line / the system itself.
#[derive(Clone, Copy, Debug)]
pub enum AuditActor<'a> {
    User(&'a Actor),
    /// `aranea` subcommands run by an operator on the machine.
    Cli,
    /// Background work (decisions reached by consensus, purges).
    System,
}

impl<'a> From<&'a Actor> for AuditActor<'a> {
    fn from(actor: &'a Actor) -> Self {
        AuditActor::User(actor)
    }
}

/// Appends one row.
pub(crate) async fn record(
    store: &Store,
    actor: AuditActor<'_>,
    action: AuditAction,
    subject: &str,
    detail: &str,
    now: UnixMillis,
) -> Result<i64, ReviewError> {
    let (user_id, name, hotline, source) = match actor {
        AuditActor::User(a) => (
            Some(a.user.id.0),
            a.user.username.clone(),
            a.hotline.code.clone(),
            a.source.clone(),
        ),
        AuditActor::Cli => (None, "cli".to_string(), String::new(), "cli".to_string()),
        AuditActor::System => (None, "system".to_string(), String::new(), String::new()),
    };
    let record = AuditRecord {
        at: now,
        user_id,
        actor: name,
        hotline,
        action: action.as_str().to_string(),
        subject: truncate(subject, 200),
        detail: truncate(detail, 4000),
        source: truncate(&source, 128),
    };
    Ok(store.review_desk().audit_append(&record).await?)
}

/// Appends a row for an event without a signed-in user (e.g. a failed login).
pub(crate) async fn record_anonymous(
    store: &Store,
    action: AuditAction,
    actor: &str,
    hotline: &str,
    subject: &str,
    source: &str,
    now: UnixMillis,
) -> Result<i64, ReviewError> {
    let record = AuditRecord {
        at: now,
        user_id: None,
        actor: truncate(if actor.is_empty() { "-" } else { actor }, 200),
        hotline: truncate(hotline, 64),
        action: action.as_str().to_string(),
        subject: truncate(subject, 200),
        detail: String::new(),
        source: truncate(source, 128),
    };
    Ok(store.review_desk().audit_append(&record).await?)
}

fn truncate(text: &str, max: usize) -> String {
    let clean: String = text.chars().filter(|c| *c != '\0').collect();
    if clean.len() <= max {
        return clean;
    }
    let mut end = max;
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    clean[..end].to_string()
}

/// What [`verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainReport {
    /// Rows read.
    pub rows: u64,
    /// One line per row (or gap) that does not fit; empty when the chain verifies.
    pub problems: Vec<String>,
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Walks the whole chain: sequence numbers without gaps from 1, each row's hash over its
/// content and the previous hash, and the head naming the last row.
pub async fn verify(store: &Store) -> Result<ChainReport, ReviewError> {
    let desk = store.review_desk();
    let mut report = ChainReport::default();
    let mut prev: Option<AuditEntry> = None;
    let mut after = 0;
    loop {
        let page = desk.audit_entries(after, 1000, None).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in page {
            check_row(&entry, prev.as_ref(), &mut report.problems);
            report.rows += 1;
            prev = Some(entry);
        }
    }
    let head = desk.audit_head().await?;
    match (&prev, head) {
        (None, None) => {}
        (None, Some((0, _))) => {}
        (Some(last), Some((seq, hash))) if last.seq == seq && last.hash == hash => {}
        (last, head) => report.problems.push(format!(
            "head names row {} but the last row is {}: rows were deleted or added outside the chain",
            head.map_or(0, |h| h.0),
            last.as_ref().map_or(0, |l| l.seq)
        )),
    }
    Ok(report)
}

fn check_row(entry: &AuditEntry, prev: Option<&AuditEntry>, problems: &mut Vec<String>) {
    let (expected_seq, expected_prev): (i64, &[u8]) = match prev {
        Some(p) => (p.seq + 1, &p.hash),
        None => (1, &[]),
    };
    if entry.seq != expected_seq {
        problems.push(format!(
            "row {} follows row {}: rows {}..{} are missing",
            entry.seq,
            expected_seq - 1,
            expected_seq,
            entry.seq - 1
        ));
    }
    if entry.prev_hash != expected_prev {
        problems.push(format!(
            "row {} does not chain to the row before it",
            entry.seq
        ));
    }
    let hash = AuditEntry::chain_hash(&entry.prev_hash, entry.seq, &entry.record);
    if entry.hash != hash {
        problems.push(format!(
            "row {} was edited: its content does not match its hash",
            entry.seq
        ));
    }
}

impl crate::Review {
    /// The newest `limit` rows the actor may read (auditors: their hotline's; platform
    /// administrators: all), newest first. Reading is itself audited.
    pub async fn audit_trail(
        &self,
        actor: &Actor,
        limit: u32,
        now: UnixMillis,
    ) -> Result<Vec<AuditEntry>, ReviewError> {
        let scope = actor.audit_scope()?;
        let desk = self.store().review_desk();
        let last = desk.audit_head().await?.map_or(0, |h| h.0);
        let mut rows = Vec::new();
        let mut after = (last - 5000).max(0);
        loop {
            let page = desk.audit_entries(after, 1000, scope).await?;
            let Some(end) = page.last() else { break };
            after = end.seq;
            rows.extend(page);
        }
        rows.reverse();
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        record(
            self.store(),
            actor.into(),
            AuditAction::AuditRead,
            "audit",
            "",
            now,
        )
        .await?;
        Ok(rows)
    }
}
