//! The analysts' web UI in real Chromium (Debian `chromium` + `chromium-driver`): three
//! analysts of two hotlines classify the same item and its sightings become matches; the
//! media stays blurred until revealed; a senior analyst settles a disagreement; an analyst
//! over the daily cap gets nothing; the audit chain verifies afterwards.

#[macro_use]
mod common;

use std::net::SocketAddr;

use aranea_review::{Classification, audit};
use aranea_store::{ItemState, UserRole};
use common::http::ChromeDriver;
use common::{Backend, NOW, PASSWORD, World};

async fn serve(w: &World) -> (SocketAddr, String) {
    let app = aranea_server::ui::review_router(w.review.clone(), false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (addr, format!("http://{addr}"))
}

async fn matches_of(w: &World, sha: &[u8; 32]) -> usize {
    let mut n = 0;
    for s in w.store.media().sightings_of(sha).await.unwrap() {
        n += w.store.media().matches_of(s.id).await.unwrap().len();
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn analysts_classify_in_chromium() {
    tokio::time::timeout(std::time::Duration::from_secs(240), scenario())
        .await
        .expect("browser scenario timed out");
}

async fn scenario() {
    let w = World::new(Backend::Sqlite).await;
    // Photo 1 on two sites is served first; photo 2 (one page) becomes the disagreement.
    let known = w
        .queue_photo(1, &["https://one.example/a", "https://two.example/b"])
        .await;
    let disputed = w.queue_photo(2, &["https://three.example/c"]).await;
    w.review.intake(NOW).await.unwrap();
    for (hotline, name, role) in [
        (w.gb, "gb1", UserRole::Analyst),
        (w.gb, "gb2", UserRole::Analyst),
        (w.ca, "ca1", UserRole::Analyst),
        (w.gb, "senior", UserRole::SeniorAnalyst),
        (w.ca, "capped", UserRole::Analyst),
    ] {
        w.actor(hotline, name, role).await;
    }
    let capped = w
        .store
        .review_desk()
        .user_by_name("capped")
        .await
        .unwrap()
        .unwrap();
    w.store
        .review_desk()
        .set_user_daily_cap(capped.id, Some(0))
        .await
        .unwrap();
    let (_, base) = serve(&w).await;
    let driver = ChromeDriver::start().await;

    for (i, name) in ["gb1", "gb2", "ca1"].into_iter().enumerate() {
        let b = driver.browser().await;
        b.login(&base, name, PASSWORD).await;
        b.wait_for("#exposure").await;
        assert!(b.source().await.contains("id=\"exposure\""));
        // The Next button has the focus: the keyboard alone gets the next item.
        b.press_enter_on_focused().await;
        b.wait_for("#media-0").await;
        assert!(
            b.url().await.contains("/ui/items/"),
            "served: {}",
            b.url().await
        );
        // Blurred and gray by default, from the server-side thumbnail.
        let src = b.property("#media-0", "src").await;
        assert!(src.as_str().unwrap().ends_with("/thumb"), "{src}");
        let filter = b.css("#media-0", "filter").await;
        assert!(
            filter.contains("blur") && filter.contains("grayscale"),
            "{filter}"
        );
        assert!(b.find_all("img.revealed").await.is_empty());
        assert!(
            b.property("#media-0", "naturalWidth")
                .await
                .as_u64()
                .unwrap()
                > 0
        );
        if i == 0 {
            // A deliberate, logged reveal of this one media.
            b.click("#reveal-0").await;
            b.wait_for("#revealed-0").await;
            let src = b.property("#revealed-0", "src").await;
            assert!(src.as_str().unwrap().ends_with("/original"));
            assert!(
                b.property("#revealed-0", "naturalWidth")
                    .await
                    .as_u64()
                    .unwrap()
                    > 100
            );
        }
        b.click("#age_band option[value='7-10']").await;
        b.click("#severity option[value='B']").await;
        b.click("#submit-vote").await;
        b.wait_for("#exposure").await;
        assert!(b.url().await.ends_with("/ui/"));
        b.quit().await;
    }
    // Known: decided, every sighting a match, bytes purged.
    let item = w
        .store
        .review_desk()
        .item_of_media(&known)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        w.store
            .review_desk()
            .item(item)
            .await
            .unwrap()
            .unwrap()
            .state,
        ItemState::Decided
    );
    assert_eq!(matches_of(&w, &known).await, 2);
    assert_eq!(
        w.store
            .review_desk()
            .vault_ciphertext(&known)
            .await
            .unwrap(),
        None
    );
    let reveals = w
        .store
        .review_desk()
        .audit_entries(0, 1000, None)
        .await
        .unwrap();
    assert_eq!(
        reveals
            .iter()
            .filter(|r| r.record.action == "reveal")
            .count(),
        1
    );

    // A disagreement on photo 2, settled by a senior analyst in the browser.
    let second = w
        .store
        .review_desk()
        .item_of_media(&disputed)
        .await
        .unwrap()
        .unwrap();
    for (name, c) in [
        (
            "gb1",
            Classification::new("3-6", "A", false, false).unwrap(),
        ),
        ("ca1", Classification::not_relevant()),
    ] {
        let actor = w
            .review
            .login(name, PASSWORD, None, "test", NOW)
            .await
            .unwrap()
            .actor;
        assert_eq!(w.review.next_item(&actor, NOW).await.unwrap(), Some(second));
        w.review.vote(&actor, second, &c, NOW).await.unwrap();
    }
    let b = driver.browser().await;
    b.login(&base, "senior", PASSWORD).await;
    b.goto(&format!("{base}/ui/disputes")).await;
    b.click("#disputed a").await;
    b.wait_for("#votes").await;
    assert_eq!(
        b.find_all("#votes li").await.len(),
        2,
        "the senior sees both votes"
    );
    b.click("#not_relevant").await;
    b.type_into("#note", "stock photograph").await;
    b.click("#settle").await;
    b.wait_for("#decision").await;
    assert!(b.source().await.contains(">decided<"));
    b.quit().await;
    assert!(w.store.review_desk().is_negative(&disputed).await.unwrap());

    // Over the daily cap: the queue serves nothing, whatever waits.
    w.queue_photo(3, &["https://four.example/d"]).await;
    let b = driver.browser().await;
    b.login(&base, "capped", PASSWORD).await;
    b.wait_for("#exposure").await;
    assert!(!b.find_all("#capped").await.is_empty());
    assert!(b.find_all("#next").await.is_empty());
    b.quit().await;

    let report = audit::verify(&w.store).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
}
