//! Reports as a hotline's staff see them: their hotline's reported URLs and what came of
//! each, reports they submit as their hotline, and an operator's correction of a report's
//! status (audited).
//!
//! Isolation rule: a hotline's users see and correct only reports received by their own
//! hotline (the report's hotline code); platform administrators see every hotline's. A
//! report of another hotline is "not found", never shown.

use aranea_store::{
    NewReport, Report, ReportId, ReportOutcome, ReportReference, ReportStatus, UnixMillis,
    UrlState, UserRole,
};

use crate::access::Actor;
use crate::audit::{self, AuditAction};
use crate::error::ReviewError;

/// A report with what came of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportView {
    pub report: Report,
    pub outcome: ReportOutcome,
}

/// A URL the report led to: the URL reported (`redirects` 0), then its redirect targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportedUrl {
    pub url: String,
    pub redirects: u32,
    pub state: UrlState,
    pub last_status: Option<u16>,
    pub last_fetched_at: Option<UnixMillis>,
}

/// One report in full, for its page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportDetail {
    pub view: ReportView,
    pub urls: Vec<ReportedUrl>,
    /// Whether the actor may correct its status ([`crate::Review::correct_report_status`]).
    pub may_correct: bool,
}

/// The statuses an operator may set by hand: `received` has the crawler take the report
/// again (its URL fetched again now); `crawled` and `rejected` settle it. `queued` is the
/// frontier's alone (a report set to it by hand would wait for a URL that is not coming).
pub const CORRECTABLE_STATUSES: [ReportStatus; 3] = [
    ReportStatus::Received,
    ReportStatus::Crawled,
    ReportStatus::Rejected,
];

/// Longest note kept with a correction (in the audit trail), in bytes.
pub const MAX_CORRECTION_NOTE_BYTES: usize = 1000;

impl Actor {
    /// Whose reports the actor sees: `None` for every hotline's.
    fn report_scope(&self) -> Option<&str> {
        if self.is_platform_admin() {
            None
        } else {
            Some(&self.hotline.code)
        }
    }

    fn sees_report(&self, report: &Report) -> bool {
        self.report_scope()
            .is_none_or(|code| code == report.hotline)
    }

    /// Operators of the report's hotline and platform administrators.
    fn corrects_report(&self, report: &Report) -> bool {
        match self.role() {
            UserRole::PlatformAdmin => true,
            UserRole::HotlineOperator => self.hotline.code == report.hotline,
            _ => false,
        }
    }
}

impl crate::Review {
    /// Up to `limit` of the reports the actor may see with an id below `before`, newest
    /// first, each with what came of it.
    pub async fn reports_for(
        &self,
        actor: &Actor,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ReportView>, ReviewError> {
        let reports = self.store().reports();
        let mut views = Vec::new();
        for report in reports.newest(actor.report_scope(), before, limit).await? {
            let outcome = reports.outcome(report.id).await?;
            views.push(ReportView { report, outcome });
        }
        Ok(views)
    }

    /// One report the actor may see, with the URLs it led to.
    pub async fn report_for(
        &self,
        actor: &Actor,
        id: ReportId,
    ) -> Result<ReportDetail, ReviewError> {
        let report = self.visible_report(actor, id).await?;
        let reports = self.store().reports();
        let outcome = reports.outcome(id).await?;
        let mut urls = Vec::new();
        for link in reports.links(id).await? {
            if let Some(record) = self.store().frontier().url(link.url).await? {
                urls.push(ReportedUrl {
                    url: record.url,
                    redirects: link.redirects,
                    state: record.state,
                    last_status: record.last_status,
                    last_fetched_at: record.last_fetched_at,
                });
            }
        }
        let may_correct = actor.corrects_report(&report);
        Ok(ReportDetail {
            view: ReportView { report, outcome },
            urls,
            may_correct,
        })
    }

    /// The id of the report with the public `reference` (as typed: case, dashes and spaces
    /// do not matter), if the actor may see it; "not found" for anything else, a malformed
    /// reference included.
    pub async fn find_report(
        &self,
        actor: &Actor,
        reference: &str,
    ) -> Result<ReportId, ReviewError> {
        let Some(reference) = ReportReference::parse(reference) else {
            return Err(ReviewError::NotFound("report"));
        };
        match self.store().reports().by_reference(&reference).await? {
            Some(report) if actor.sees_report(&report) => Ok(report.id),
            _ => Err(ReviewError::NotFound("report")),
        }
    }

    async fn visible_report(&self, actor: &Actor, id: ReportId) -> Result<Report, ReviewError> {
        match self.store().reports().get(id).await? {
            Some(report) if actor.sees_report(&report) => Ok(report),
            _ => Err(ReviewError::NotFound("report")),
        }
    }

    /// Records `urls` (already checked by the caller: http(s), parsed) as reports received
    /// by the actor's hotline from the actor, with `notes`; the crawler takes them from
    /// there as it takes every report. Auditors only read. Each report is audited.
    pub async fn add_reports(
        &self,
        actor: &Actor,
        urls: &[String],
        notes: &str,
        now: UnixMillis,
    ) -> Result<Vec<ReportId>, ReviewError> {
        if actor.role() == UserRole::Auditor {
            return Err(ReviewError::Forbidden("auditors do not submit reports"));
        }
        let mut ids = Vec::with_capacity(urls.len());
        for url in urls {
            let report = NewReport {
                url: url.clone(),
                reporter: actor.user.username.clone(),
                hotline: actor.hotline.code.clone(),
                notes: notes.to_string(),
            };
            let id = self.store().reports().add(&report, now).await?;
            audit::record(
                self.store(),
                actor.into(),
                AuditAction::ReportAdded,
                &format!("report:{}", id.get()),
                url,
                now,
            )
            .await?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// An operator's correction of a report's status (one of [`CORRECTABLE_STATUSES`]),
    /// audited with the old and new status and the operator's note: operators of the
    /// report's hotline and platform administrators only. The report's reason becomes
    /// `corrected by USER: NOTE` (shown with its status until it settles again).
    pub async fn correct_report_status(
        &self,
        actor: &Actor,
        id: ReportId,
        status: ReportStatus,
        note: &str,
        now: UnixMillis,
    ) -> Result<(), ReviewError> {
        let report = self.visible_report(actor, id).await?;
        if !actor.corrects_report(&report) {
            return Err(ReviewError::Forbidden(
                "only operators correct a report's status",
            ));
        }
        if !CORRECTABLE_STATUSES.contains(&status) {
            return Err(ReviewError::invalid(
                "status",
                "only received, crawled or rejected can be set by hand",
            ));
        }
        if note.len() > MAX_CORRECTION_NOTE_BYTES {
            return Err(ReviewError::invalid(
                "note",
                format!("at most {MAX_CORRECTION_NOTE_BYTES} bytes"),
            ));
        }
        let reason = if note.trim().is_empty() {
            format!("corrected by {}", actor.user.username)
        } else {
            format!("corrected by {}: {}", actor.user.username, note.trim())
        };
        self.store()
            .reports()
            .correct_status(id, status, &reason)
            .await?;
        audit::record(
            self.store(),
            actor.into(),
            AuditAction::ReportStatus,
            &format!("report:{}", id.get()),
            &format!(
                "status={}->{} note={}",
                report.status.as_str(),
                status.as_str(),
                note
            ),
            now,
        )
        .await?;
        Ok(())
    }
}
