//! Reports filed straight into the store, as the intake API and `aranea report add` file
//! them, and read back as the crawl settles them.

use aranea_store::{NewReport, Report, ReportId, ReportStatus, Store};

/// Files a report of `url` from hotline `hotline`; it is `received` until a crawler queues it.
pub async fn file(store: &Store, url: &str, hotline: &str) -> ReportId {
    let report = NewReport {
        url: url.to_owned(),
        reporter: "test".into(),
        hotline: hotline.into(),
        notes: String::new(),
    };
    store.reports().add(&report, 0).await.unwrap()
}

/// The report as it stands now.
pub async fn get(store: &Store, id: ReportId) -> Report {
    store.reports().get(id).await.unwrap().unwrap()
}

pub async fn status(store: &Store, id: ReportId) -> ReportStatus {
    get(store, id).await.status
}

/// Why the report was rejected; fails the test if it was not, or if it gives no reason.
pub async fn rejection(store: &Store, id: ReportId) -> String {
    let report = get(store, id).await;
    assert_eq!(
        report.status,
        ReportStatus::Rejected,
        "report {id:?}: {:?}",
        report.reason
    );
    report.reason.expect("a rejected report says why")
}
