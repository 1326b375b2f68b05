//! The audit trail's "from where" through the real server: `aranea_server::serve` on a
//! loopback socket hands each request its peer address, so a login through the web UI is
//! recorded with 127.0.0.1, never "unknown".

mod common;

use std::time::Duration;

use aranea_review::{Review, ReviewConfig};
use aranea_server::{AppState, ServerConfig};
use aranea_store::Store;
use common::{ANALYST, PASSWORD};

#[test]
fn a_login_through_the_server_records_the_peer_address() {
    let dir = std::env::temp_dir().join(format!("aranea-server-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = format!("sqlite://{}", dir.join("aranea.db").display());
    let (addr, store) = runtime.block_on(async {
        let store = Store::open(&db).await.unwrap();
        let review = Review::from_config(store.clone(), ReviewConfig::default(), None).unwrap();
        common::add_hotline_and_analyst(&review).await;
        // The UI router is read when the server builds its routes, so install it first.
        aranea_server::ui::install_review(review, false);
        let state = AppState::open(ServerConfig::default(), &dir.join("banks"), store.clone())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(aranea_server::serve(
            listener,
            state,
            std::future::pending(),
        ));
        (addr, store)
    });

    let form = format!("username={ANALYST}&password={}", PASSWORD.replace(' ', "+"));
    let request = format!(
        "POST /ui/login HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    let reply = common::raw(addr, request.as_bytes());
    assert_eq!(reply.status, 303, "login refused: {reply:?}");
    assert!(
        reply
            .header("set-cookie")
            .is_some_and(|c| c.starts_with("aranea_session="))
    );

    let rows = runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(20),
            store.review_desk().audit_entries(0, 1000, None),
        )
        .await
        .unwrap()
        .unwrap()
    });
    let login = rows
        .iter()
        .find(|r| r.record.action == "login" && r.record.actor == "ana")
        .unwrap_or_else(|| panic!("no login row in {rows:#?}"));
    assert_eq!(login.record.source, "127.0.0.1");
    let _ = std::fs::remove_dir_all(&dir);
}
