//! A report's life on both back-ends: queued with its URL by `enqueue_reported`, settled in
//! the transaction that settles the URL, however many reports the URL has and whatever
//! state the URL is in when a report arrives; and only for a registered hotline once the
//! platform has any.

#[macro_use]
mod common;

use aranea_store::{
    Completion, FetchOutcome, Lease, NewHotline, NewReport, Priority, ReportId, ReportStatus,
    Store, StoreError, UrlId, UrlNext, UrlSource, UrlState,
};
use common::{NOW, TestDb};

contract_tests!(
    a_report_arriving_while_its_url_is_fetched_settles_with_that_fetch,
    a_retry_settles_nothing_and_a_final_failure_rejects_every_report,
    a_link_already_done_is_queued_again_as_a_reported_url,
    a_url_failed_for_good_has_every_attempt_again_for_a_new_report,
    a_report_naming_an_unregistered_hotline_is_refused_once_hotlines_are_registered,
    a_link_reported_in_flight_and_skipped_by_a_budget_is_queued_again_for_its_report,
);

async fn report(store: &Store, hotline: &str) -> ReportId {
    let report = NewReport {
        url: "https://r.example/page".into(),
        reporter: "test".into(),
        hotline: hotline.into(),
        notes: String::new(),
    };
    store.reports().add(&report, NOW).await.unwrap()
}

async fn status(store: &Store, id: ReportId) -> ReportStatus {
    store.reports().get(id).await.unwrap().unwrap().status
}

async fn queue(store: &Store, id: ReportId) -> aranea_store::UrlId {
    store
        .frontier()
        .enqueue_reported(id, &common::url("r.example", "/page"), NOW)
        .await
        .unwrap()
        .expect("a received report is queued")
        .id
}

/// Completes `url` under `lease` as a refused connection, to be tried again (`next`
/// `RetryAt`) or given up (`Failed`).
async fn refused(store: &Store, lease: &Lease, url: UrlId, next: UrlNext, at: i64) {
    store
        .frontier()
        .complete_url(
            lease,
            url,
            &FetchOutcome::failed("connection refused", next),
            at,
        )
        .await
        .unwrap();
}

async fn a_report_arriving_while_its_url_is_fetched_settles_with_that_fetch(db: &TestDb) {
    let store = db.open().await;
    let first = report(&store, "nl").await;
    let url = queue(&store, first).await;
    let leased = common::leased::lease(&store, 1).await;
    assert_eq!(leased.urls.len(), 1, "the reported URL is in flight");
    let second = report(&store, "be").await;
    assert_eq!(queue(&store, second).await, url, "one URL for both reports");
    assert_eq!(
        store
            .frontier()
            .enqueue_reported(second, &common::url("r.example", "/page"), NOW)
            .await
            .unwrap(),
        None,
        "a report queued already is not queued twice"
    );
    for id in [first, second] {
        assert_eq!(status(&store, id).await, ReportStatus::Queued);
    }
    store
        .frontier()
        .complete_url(
            &leased.hosts[0].lease,
            url,
            &FetchOutcome::fetched(200, 10, UrlNext::Done),
            NOW + 1,
        )
        .await
        .unwrap();
    for id in [first, second] {
        assert_eq!(status(&store, id).await, ReportStatus::Crawled);
    }
    let record = store.frontier().url(url).await.unwrap().unwrap();
    assert_eq!(
        record.state,
        UrlState::Done,
        "the fetch under way answers the later report too"
    );
}

async fn a_retry_settles_nothing_and_a_final_failure_rejects_every_report(db: &TestDb) {
    let store = db.open().await;
    let first = report(&store, "nl").await;
    let second = report(&store, "be").await;
    let url = queue(&store, first).await;
    queue(&store, second).await;
    let leased = common::leased::lease(&store, 1).await;
    let lease = &leased.hosts[0].lease;
    refused(&store, lease, url, UrlNext::RetryAt(NOW), NOW).await;
    for id in [first, second] {
        assert_eq!(
            status(&store, id).await,
            ReportStatus::Queued,
            "after a retry"
        );
    }
    let again = store.frontier().next_urls(lease, 10, NOW).await.unwrap();
    assert_eq!(again.len(), 1, "the URL is handed out again");
    refused(&store, lease, url, UrlNext::Failed, NOW + 1).await;
    for id in [first, second] {
        assert_eq!(
            status(&store, id).await,
            ReportStatus::Rejected,
            "after the last attempt"
        );
    }
}

async fn a_link_already_done_is_queued_again_as_a_reported_url(db: &TestDb) {
    let store = db.open().await;
    let link = common::url("r.example", "/page");
    let url = store.frontier().enqueue_urls(&[link], NOW).await.unwrap()[0].id;
    let leased = common::leased::lease(&store, 1).await;
    store
        .frontier()
        .complete_url(
            &leased.hosts[0].lease,
            url,
            &FetchOutcome::fetched(200, 10, UrlNext::Done),
            NOW,
        )
        .await
        .unwrap();
    let id = report(&store, "nl").await;
    assert_eq!(queue(&store, id).await, url);
    assert_eq!(status(&store, id).await, ReportStatus::Queued);
    let record = store.frontier().url(url).await.unwrap().unwrap();
    assert_eq!(
        record.state,
        UrlState::Queued,
        "fetched again for the report"
    );
    assert_eq!(record.source, UrlSource::Report, "out of the link budgets");
    assert_eq!(record.priority, Priority::Reported);
    assert_eq!(record.depth, 0);
    assert_eq!(record.report_id, Some(id));
}

async fn a_url_failed_for_good_has_every_attempt_again_for_a_new_report(db: &TestDb) {
    let store = db.open().await;
    let first = report(&store, "nl").await;
    let url = queue(&store, first).await;
    let leased = common::leased::lease(&store, 1).await;
    let lease = &leased.hosts[0].lease;
    refused(&store, lease, url, UrlNext::RetryAt(NOW), NOW).await;
    store.frontier().next_urls(lease, 10, NOW).await.unwrap();
    refused(&store, lease, url, UrlNext::Failed, NOW + 1).await;
    let failed = store.frontier().url(url).await.unwrap().unwrap();
    assert_eq!((failed.state, failed.attempts), (UrlState::Failed, 2));

    let second = report(&store, "be").await;
    assert_eq!(queue(&store, second).await, url);
    let again = store.frontier().url(url).await.unwrap().unwrap();
    assert_eq!(again.state, UrlState::Queued);
    assert_eq!(
        again.attempts, 0,
        "the crawler gives up after max_attempts: without a fresh count, one transient error \
         would reject the new report"
    );
}

async fn a_report_naming_an_unregistered_hotline_is_refused_once_hotlines_are_registered(
    db: &TestDb,
) {
    let store = db.open().await;
    let before = report(&store, "nl").await;
    assert_eq!(
        store.reports().get(before).await.unwrap().unwrap().hotline,
        "nl",
        "with no hotline registered, nothing reads the name: it is kept"
    );
    let nl = NewHotline {
        code: "nl".into(),
        name: "Hotline NL".into(),
        country: "NL".into(),
        languages: vec!["nl".into()],
        jurisdiction: "NL".into(),
        shares_review_pool: true,
        shares_banks: true,
        daily_cap: 50,
    };
    store.review_desk().add_hotline(&nl, NOW).await.unwrap();
    let refused = store
        .reports()
        .add(
            &NewReport {
                url: "https://r.example/other".into(),
                reporter: "test".into(),
                hotline: "nosuch".into(),
                notes: String::new(),
            },
            NOW,
        )
        .await;
    match refused {
        Err(StoreError::UnknownHotline { code }) => assert_eq!(code, "nosuch"),
        other => panic!("an unregistered hotline was not refused: {other:?}"),
    }
    let after = report(&store, "nl").await;
    let received = store
        .reports()
        .with_status(ReportStatus::Received, 10)
        .await
        .unwrap();
    assert_eq!(
        received.iter().map(|r| r.id).collect::<Vec<_>>(),
        [before, after],
        "nothing written for the refused report"
    );
}

/// A link handed out, then reported while in flight: the worker's record still says
/// "link", so a budget skips it ([`UrlNext::SkippedUnlessReported`]). The completion reads
/// the URL's row as it is now: reported, so it is queued again at the reported priority and
/// the report waits for that fetch. A link nobody reported is skipped as asked.
async fn a_link_reported_in_flight_and_skipped_by_a_budget_is_queued_again_for_its_report(
    db: &TestDb,
) {
    let store = db.open().await;
    let frontier = store.frontier();
    let links = [
        common::url("r.example", "/page"),
        common::url("r.example", "/other"),
    ];
    let enqueued = frontier.enqueue_urls(&links, NOW).await.unwrap();
    let (url, other) = (enqueued[0].id, enqueued[1].id);
    let leased = common::leased::lease(&store, 1).await;
    let lease = &leased.hosts[0].lease;
    assert_eq!(leased.urls.len(), 2, "both links in flight");
    let id = report(&store, "nl").await;
    assert_eq!(queue(&store, id).await, url, "reported while in flight");
    let budget = FetchOutcome {
        error: Some("host budget spent".into()),
        ..FetchOutcome::not_fetched(UrlNext::SkippedUnlessReported)
    };
    let completions = frontier
        .complete_urls(lease, &[(url, &budget), (other, &budget)], NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        completions,
        [Completion::QueuedForReport, Completion::Recorded],
        "the crawler is told which skip was queued again instead"
    );
    assert_eq!(
        status(&store, id).await,
        ReportStatus::Queued,
        "not rejected by a rule reports are exempt from"
    );
    let record = frontier.url(url).await.unwrap().unwrap();
    assert_eq!(
        record.state,
        UrlState::Queued,
        "queued again for the report"
    );
    assert_eq!(record.priority, Priority::Reported);
    assert_eq!(record.next_fetch_at, NOW + 1, "due at once");
    let unreported = frontier.url(other).await.unwrap().unwrap();
    assert_eq!(
        unreported.state,
        UrlState::Skipped,
        "a link nobody reported"
    );
    let again = frontier.next_urls(lease, 10, NOW + 1).await.unwrap();
    assert_eq!(
        again.iter().map(|u| (u.id, u.source)).collect::<Vec<_>>(),
        [(url, UrlSource::Report)],
        "handed out again, as the reported URL it now is"
    );
    frontier
        .complete_url(
            lease,
            url,
            &FetchOutcome::fetched(200, 10, UrlNext::Done),
            NOW + 2,
        )
        .await
        .unwrap();
    assert_eq!(status(&store, id).await, ReportStatus::Crawled);
}
