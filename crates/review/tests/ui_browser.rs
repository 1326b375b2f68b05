//! The analysts' web UI in real Chromium (Debian `chromium` + `chromium-driver`): three
//! analysts of two hotlines classify the same item and its sightings become matches; the
//! media stays blurred until revealed; a senior analyst settles a disagreement; an analyst
//! over the daily cap gets nothing; the audit chain verifies afterwards.

#[macro_use]
mod common;

use std::net::SocketAddr;

use aranea_review::{Classification, audit, totp};
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
        // The queue's Next button (the item page shows the exposure box too).
        b.wait_for("#next").await;
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

async fn text(b: &common::http::Browser, css: &str) -> String {
    b.property(css, "textContent")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn totp_enrolment_then_login_with_a_code_in_chromium() {
    tokio::time::timeout(std::time::Duration::from_secs(120), totp_scenario())
        .await
        .expect("browser scenario timed out");
}

async fn totp_scenario() {
    let w = World::new(Backend::Sqlite).await;
    let ana = w.actor(w.gb, "ana", UserRole::Analyst).await;
    let (_, base) = serve(&w).await;
    let driver = ChromeDriver::start().await;
    let b = driver.browser().await;
    b.login(&base, "ana", PASSWORD).await;
    b.click("#account").await;
    b.click("#totp-begin").await;
    b.wait_for("#totp-secret").await;
    let secret = w
        .store
        .review_desk()
        .user(ana.user.id)
        .await
        .unwrap()
        .unwrap()
        .totp_pending
        .expect("enrolment started");
    let shown = text(&b, "#totp-secret").await;
    assert_eq!(shown, totp::base32(&secret));
    let uri = text(&b, "#totp-uri").await;
    assert!(
        uri.starts_with("otpauth://totp/Aranea%20gb:ana?secret=") && uri.contains(&shown),
        "{uri}"
    );
    let code_now = |offset_seconds: u64| {
        let t = aranea_review::now_millis() as u64 / 1000 + offset_seconds;
        format!("{:06}", totp::code_at(&secret, t))
    };
    // A wrong code turns nothing on.
    let right = code_now(0);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    b.type_into("#totp-code", &wrong).await;
    b.click("#totp-confirm").await;
    b.wait_for("#totp-wrong").await;
    assert_eq!(
        text(&b, "#totp-state").await,
        "Being set up: not required yet."
    );
    b.type_into("#totp-code", &code_now(0)).await;
    b.click("#totp-confirm").await;
    b.wait_for("#totp-done").await;
    assert_eq!(text(&b, "#totp-state").await, "On.");
    b.quit().await;

    // From now on a sign-in needs a code: without one it fails, with one it works.
    let sign_in = |code: String| {
        let base = base.clone();
        let driver = &driver;
        async move {
            let b = driver.browser().await;
            b.goto(&format!("{base}/ui/login")).await;
            b.type_into("input[name=username]", "ana").await;
            b.type_into("input[name=password]", PASSWORD).await;
            if !code.is_empty() {
                b.type_into("input[name=totp]", &code).await;
            }
            b.click("button[type=submit]").await;
            b
        }
    };
    let b = sign_in(String::new()).await;
    b.wait_for(".error").await;
    assert!(b.url().await.ends_with("/ui/login"));
    b.quit().await;
    // The next time step's code (the confirmation used up the current one).
    let b = sign_in(code_now(30)).await;
    b.wait_for("#exposure").await;
    assert!(b.url().await.ends_with("/ui/"));
    b.quit().await;
    let report = audit::verify(&w.store).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exposure_clock_runs_live_in_chromium() {
    tokio::time::timeout(std::time::Duration::from_secs(120), clock_scenario())
        .await
        .expect("browser scenario timed out");
}

async fn clock_scenario() {
    let config = aranea_review::ReviewConfig {
        break_after_minutes: 1,
        ..aranea_review::ReviewConfig::default()
    };
    let w = World::with_config(Backend::Sqlite, config).await;
    w.queue_photo(1, &["https://one.example/a"]).await;
    w.review.intake(NOW).await.unwrap();
    let ana = w.actor(w.gb, "ana", UserRole::Analyst).await;
    let (_, base) = serve(&w).await;
    let driver = ChromeDriver::start().await;
    let b = driver.browser().await;
    b.login(&base, "ana", PASSWORD).await;
    // Served 50 s ago: the stretch passes the one-minute break limit while the page is open.
    // Served only once the browser is up and signed in (which took over 10 s once, under a
    // loaded CI), so the first reading falls within the 50s.
    let served = aranea_review::now_millis() - 50_000;
    let item = w.review.next_item(&ana, served).await.unwrap().unwrap();
    b.goto(&format!("{base}/ui/items/{item}")).await;
    b.wait_for("#stretch-clock").await;
    let first = text(&b, "#stretch-clock").await;
    assert!(
        first.starts_with("0 min 5") && first.ends_with(" s"),
        "{first}"
    );
    assert_eq!(b.property("#break-reminder", "hidden").await, true);
    let mut shown = false;
    for _ in 0..150 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if b.property("#break-reminder", "hidden").await == false {
            shown = true;
            break;
        }
    }
    let later = text(&b, "#stretch-clock").await;
    assert_ne!(first, later, "the clock runs without a reload");
    assert!(later.starts_with("1 min 0"), "{later}");
    assert!(
        shown,
        "the break reminder appears when the stretch passes the limit"
    );
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn video_plays_muted_blurred_with_blurred_frames_in_chromium() {
    tokio::time::timeout(std::time::Duration::from_secs(180), video_scenario())
        .await
        .expect("browser scenario timed out");
}

async fn video_scenario() {
    let w = World::new(Backend::Sqlite).await;
    let video = common::slideshow_webm(&w.dir, &[1, 2, 3]);
    let sha = w
        .queue_video(&video, &["https://video.example/watch"])
        .await;
    w.review.intake(NOW).await.unwrap();
    let ana = w.actor(w.gb, "ana", UserRole::Analyst).await;
    let item = w
        .review
        .next_item(&ana, aranea_review::now_millis())
        .await
        .unwrap()
        .unwrap();
    let (_, base) = serve(&w).await;
    let driver = ChromeDriver::start().await;
    let b = driver.browser().await;
    b.login(&base, "ana", PASSWORD).await;
    b.goto(&format!("{base}/ui/items/{item}")).await;
    b.wait_for("#video-0").await;
    // Muted, not playing by itself, blurred and gray, served from the playback route.
    assert_eq!(b.property("#video-0", "muted").await, true);
    assert_eq!(b.property("#video-0", "autoplay").await, false);
    assert_eq!(b.property("#video-0", "paused").await, true);
    let src = b.property("#video-0", "src").await;
    assert!(src.as_str().unwrap().ends_with("/video"), "{src}");
    let filter = b.css("#video-0", "filter").await;
    assert!(
        filter.contains("blur") && filter.contains("grayscale"),
        "{filter}"
    );
    // One blurred thumbnail per vPDQ sample: frames 0, 10, 20 at 0, 1 and 2 seconds.
    let thumbs = b.find_all("#frames-0 img").await;
    assert_eq!(thumbs.len(), 3);
    let times: Vec<String> = {
        let mut out = Vec::new();
        for k in 1..=3 {
            out.push(text(&b, &format!("#frames-0 li:nth-child({k}) .at")).await);
        }
        out
    };
    assert_eq!(times, ["0.0 s", "1.0 s", "2.0 s"]);
    assert!(
        b.css("#frames-0 img", "filter").await.contains("blur"),
        "thumbnails blurred by CSS too"
    );
    for k in 1..=3 {
        let css = format!("#frames-0 li:nth-child({k}) img");
        for _ in 0..50 {
            if b.property(&css, "complete").await == true {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let width = b.property(&css, "naturalWidth").await.as_u64().unwrap();
        assert!(width > 0 && width <= 160, "frame {k}: {width}");
    }
    // It plays when asked (muted), still blurred.
    b.execute("document.getElementById('video-0').play(); return true;")
        .await;
    let mut played = 0.0;
    for _ in 0..100 {
        played = b
            .property("#video-0", "currentTime")
            .await
            .as_f64()
            .unwrap();
        if played > 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(played > 0.0, "the video plays");
    assert_eq!(b.property("#video-0", "muted").await, true);
    b.quit().await;

    // Every view was audited: the page's frame list, each thumbnail, the playback.
    let views: Vec<String> = w
        .store
        .review_desk()
        .audit_entries(0, 1000, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.record.action == "view")
        .map(|e| e.record.detail)
        .collect();
    let hex = common::hex(&sha);
    assert!(
        views.contains(&format!("video frames listed media:{hex}")),
        "{views:?}"
    );
    for k in 0..3 {
        assert!(
            views.contains(&format!("video frame thumbnail {k} media:{hex}")),
            "{views:?}"
        );
    }
    assert!(
        views.contains(&format!("video blurred playback media:{hex}")),
        "{views:?}"
    );
    // No plaintext copy of the video was left in the data or temporary directories.
    for dir in [w.dir.clone(), std::env::temp_dir(), "/dev/shm".into()] {
        assert!(
            !holds(&dir, &video[100..164]),
            "plaintext video in {}",
            dir.display()
        );
    }
    let report = audit::verify(&w.store).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
}

/// Whether a regular file directly in `dir`, of at most 16 MiB, contains `needle`.
fn holds(dir: &std::path::Path, needle: &[u8]) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let Ok(meta) = e.metadata() else { return false };
        meta.is_file()
            && meta.len() <= 16 * 1024 * 1024
            && std::fs::read(e.path())
                .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
    })
}
