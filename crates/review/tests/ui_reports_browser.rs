//! Reports in real Chromium (Debian `chromium` + `chromium-driver`): a member of the public
//! reports two URLs with the public form and gets their references; an operator submits a
//! URL as their hotline, finds it in the hotline's list (without the other hotline's public
//! reports), opens it and corrects its status. No JavaScript is involved: plain forms.

#[macro_use]
mod common;

use std::net::SocketAddr;

use aranea_server::ui::report_form::ReportFormConfig;
use aranea_store::{ReportStatus, UserRole};
use common::http::ChromeDriver;
use common::{Backend, PASSWORD, World};

async fn serve(w: &World) -> String {
    let form = ReportFormConfig {
        enabled: true,
        hotline: "ca".into(),
        ..ReportFormConfig::default()
    };
    let app = aranea_server::ui::review_router(w.review.clone(), false).merge(
        aranea_server::ui::report_form::router(w.store.clone(), form),
    );
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
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reports_in_chromium() {
    tokio::time::timeout(std::time::Duration::from_secs(240), scenario())
        .await
        .expect("browser scenario timed out");
}

async fn scenario() {
    let w = World::new(Backend::Sqlite).await;
    w.actor(w.gb, "gbop", UserRole::HotlineOperator).await;
    let base = serve(&w).await;
    let driver = ChromeDriver::start().await;

    // The public form, without signing in.
    let public = driver.browser().await;
    public.goto(&format!("{base}/report")).await;
    public
        .type_into("#urls", "https://shop.example/a\nhttp://192.168.0.9/b")
        .await;
    public.type_into("#description", "a <b>gallery</b>").await;
    public.type_into("#contact", "me@example.org").await;
    public.click("#send").await;
    public.wait_for("#reference").await;
    let reference = public.property("#reference", "textContent").await;
    let received = w.store.reports().newest(None, None, 10).await.unwrap();
    assert_eq!(received.len(), 2);
    assert_eq!(
        reference.as_str().unwrap(),
        format!("{}, {}", received[1].reference, received[0].reference)
    );
    for report in &received {
        assert_eq!(report.hotline, "ca");
        assert_eq!(report.reporter, "public form: me@example.org");
        assert_eq!(report.notes, "a <b>gallery</b>");
    }
    assert!(!public.source().await.contains("shop.example"));
    public.quit().await;

    // An operator of another hotline submits a URL, finds it, corrects its status.
    let staff = driver.browser().await;
    staff.login(&base, "gbop", PASSWORD).await;
    staff.click("nav a[href='/ui/reports']").await;
    staff.wait_for("#submit-link").await;
    staff.click("#submit-link").await;
    staff.wait_for("textarea#urls").await;
    staff
        .type_into("textarea#urls", "https://forum.example/thread/9")
        .await;
    staff.type_into("textarea#notes", "from a partner").await;
    staff.click("#submit").await;
    staff.wait_for("#added").await;
    let list = staff.source().await;
    assert!(list.contains("https://forum.example/thread/9"), "{list}");
    assert!(
        !list.contains("shop.example"),
        "another hotline's report: {list}"
    );
    let mine = w
        .store
        .reports()
        .newest(Some("gb"), None, 10)
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    let id = mine[0].id;
    staff
        .click(&format!("#reports a[href='/ui/reports/{}']", id.get()))
        .await;
    staff.wait_for("#correct").await;
    staff.click("#new-status option[value='rejected']").await;
    staff
        .type_into("#status-note", "not reachable from here")
        .await;
    staff.click("#correct").await;
    for _ in 0..100 {
        if w.store.reports().get(id).await.unwrap().unwrap().status == ReportStatus::Rejected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    staff.wait_for("#status").await;
    assert_eq!(
        staff.property("#status", "textContent").await.as_str(),
        Some("rejected")
    );
    assert_eq!(
        staff.property("#reason", "textContent").await.as_str(),
        Some("corrected by gbop: not reachable from here")
    );
    staff.quit().await;
}
