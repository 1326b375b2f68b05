//! The appeal stage: items whose matches an appeal withdrew stop here (the store withdraws
//! them and any queued notice naming them), and each recipient of a notice that named one
//! gets a retraction, composed like any notice and delivered exactly once by the same
//! machinery. Must not decide what is withdrawn: the review room's rows say so.

use super::{NoticeEngine, PassReport};
use crate::NoticeError;
use crate::clock::UnixMillis;
use crate::retraction;

/// Items withdrawn and (item, notice) pairs read per pass at most.
const MAX_PER_PASS: i64 = 10_000;

impl NoticeEngine {
    pub(super) async fn withdraw_appealed(
        &self,
        now: UnixMillis,
        report: &mut PassReport,
    ) -> Result<(), NoticeError> {
        let store = self.store.notices();
        report.withdrawn += store.withdraw_appealed(now, MAX_PER_PASS).await?.len();
        let owed = store.retractions_due(MAX_PER_PASS).await?;
        for owed in retraction::group(owed) {
            let notice = retraction::compose(&self.config, &self.templates, &owed)?;
            let items: Vec<aranea_store::ItemId> = owed
                .item_ids
                .iter()
                .map(|id| aranea_store::ItemId(*id))
                .collect();
            let (_, new) = store.create_notice(&notice, &items, now).await?;
            report.retractions += usize::from(new);
        }
        Ok(())
    }
}
