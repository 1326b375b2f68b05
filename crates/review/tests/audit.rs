//! The audit trail on both back-ends: every human action is recorded, the chain verifies
//! after a run, and a single edited, deleted or truncated row is detected.

#[macro_use]
mod common;

use aranea_review::{Classification, audit};
use aranea_store::UserRole;
use common::{Backend, NOW, World, tamper};

both_backends!(
    a_review_run_is_audited_and_verifies,
    an_edited_row_is_detected,
    a_deleted_row_is_detected,
    a_deleted_last_row_is_detected,
);

/// Logins, a view, a reveal, a vote, a decision: a realistic trail.
async fn run(w: &World) {
    let sha = w.queue_photo(1, &["https://one.example/a"]).await;
    w.review.intake(NOW).await.unwrap();
    let a = w.actor(w.gb, "a", UserRole::SeniorAnalyst).await;
    let _ = w
        .review
        .login("a", "wrong password!", None, "203.0.113.5", NOW)
        .await;
    let item = w.review.next_item(&a, NOW).await.unwrap().unwrap();
    w.review.item_for(&a, item, NOW).await.unwrap();
    w.review.media_for(&a, item, &sha, true, NOW).await.unwrap();
    w.review
        .vote(
            &a,
            item,
            &Classification::new("3-6", "C", false, false).unwrap(),
            NOW,
        )
        .await
        .unwrap();
}

async fn a_review_run_is_audited_and_verifies(backend: Backend) {
    let w = World::new(backend).await;
    run(&w).await;
    let report = audit::verify(&w.store).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    let rows = w
        .store
        .review_desk()
        .audit_entries(0, 1000, None)
        .await
        .unwrap();
    assert_eq!(report.rows, rows.len() as u64);
    let actions: Vec<&str> = rows.iter().map(|r| r.record.action.as_str()).collect();
    for expected in [
        "hotline_added",
        "user_added",
        "login",
        "login_failed",
        "view",
        "reveal",
        "vote",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let reveal = rows.iter().find(|r| r.record.action == "reveal").unwrap();
    assert_eq!(reveal.record.actor, "a");
    assert_eq!(reveal.record.hotline, "gb");
    assert_eq!(reveal.record.source, "198.51.100.7");
    assert!(reveal.record.subject.starts_with("item:"));
    let failed = rows
        .iter()
        .find(|r| r.record.action == "login_failed")
        .unwrap();
    assert_eq!(failed.record.source, "203.0.113.5");
    // The auditor's view is the hotline's own rows only.
    assert!(
        w.store
            .review_desk()
            .audit_entries(0, 1000, Some("ca"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn an_edited_row_is_detected(backend: Backend) {
    let w = World::new(backend).await;
    run(&w).await;
    assert_eq!(
        tamper(
            &w.url,
            "UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 3"
        )
        .await,
        1
    );
    let report = audit::verify(&w.store).await.unwrap();
    assert!(!report.is_intact());
    assert_eq!(
        report.problems,
        vec!["row 3 was edited: its content does not match its hash"]
    );
}

async fn a_deleted_row_is_detected(backend: Backend) {
    let w = World::new(backend).await;
    run(&w).await;
    assert_eq!(
        tamper(&w.url, "DELETE FROM audit_log WHERE seq = 4").await,
        1
    );
    let report = audit::verify(&w.store).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("rows 4..4 are missing")),
        "{:?}",
        report.problems
    );
}

async fn a_deleted_last_row_is_detected(backend: Backend) {
    let w = World::new(backend).await;
    run(&w).await;
    let last = w.store.review_desk().audit_head().await.unwrap().unwrap().0;
    tamper(&w.url, &format!("DELETE FROM audit_log WHERE seq = {last}")).await;
    let report = audit::verify(&w.store).await.unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("head names row")),
        "{:?}",
        report.problems
    );
}
