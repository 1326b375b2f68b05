//! With no `link_secret` configured, `aranea notices run` and `aranea serve`, two separate
//! processes sharing one database, sign and verify the notices' respond links with the key
//! the database keeps: the link in a notice the worker sent to the simulated provider is
//! answered by the server, and the answer recorded. A link signed with the key earlier
//! versions derived from the hotline's name (known to anyone) is refused as forged.

#[path = "common/notices.rs"]
mod notices;
#[path = "common/postgres.rs"]
mod postgres;
#[path = "common/process.rs"]
mod process;

use std::path::Path;
use std::time::Duration;

use aranea_simweb::{SimWeb, scenario};
use aranea_store::Store;

#[test]
fn on_sqlite_the_worker_and_the_server_agree_on_the_link_key_without_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("aranea.db").display());
    the_worker_and_the_server_agree_on_the_link_key(dir.path(), &db);
}

#[test]
fn on_postgres_the_worker_and_the_server_agree_on_the_link_key_without_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let db = postgres::fresh_database(&format!("aranea_cli_link_key_{}", std::process::id()));
    the_worker_and_the_server_agree_on_the_link_key(dir.path(), &db);
}

fn the_worker_and_the_server_agree_on_the_link_key(dir: &Path, db: &str) {
    let world = SimWeb::start_with(scenario::load("small").unwrap(), 4).unwrap();
    postgres::block_on(notices::record_a_match(&world, db));
    let config = dir.join("aranea.toml");
    std::fs::write(&config, notices::notice_section(&world, None)).unwrap();
    let data = dir.join("data");

    // The server first (it makes the key), then the worker in its own process.
    let (mut server, url) = process::serve(&data, db, &config);
    let (sent, log) = process::run_bounded(
        std::process::Command::new(process::BIN)
            .arg("--data")
            .arg(&data)
            .args(["--db", db, "--config", config.to_str().unwrap()])
            .args(["notices", "run", "--once"]),
        Duration::from_secs(120),
    );
    let notices = world.notices();
    // The link as the provider reads it: the text part is quoted-printable.
    let token = notices.iter().find_map(|n| {
        let text = quoted_printable(&n.raw);
        let (_, after) = text.split_once("/notice/respond?t=")?;
        let token: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
            .collect();
        Some(token)
    });
    let addr = url.trim_start_matches("http://").to_owned();
    let answers = token.as_ref().map(|token| {
        let shown = process::http_request(&addr, &format!("GET /notice/respond?t={token}"), "");
        let recorded = process::http_request(
            &addr,
            "POST /notice/respond",
            &format!("t={token}&answer=acknowledged&note=on+it"),
        );
        // The same reference and expiry, signed with the name-derived key of old.
        let mut parts = token.rsplitn(3, '.');
        let (_, expires, reference) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        let expires: i64 = expires.parse().unwrap();
        let name = aranea_notice::NoticeConfig::default().hotline.name;
        let old_key = format!("aranea-test-link-key:{name}");
        let forged = aranea_notice::link::sign(old_key.as_bytes(), reference, expires);
        let refused = process::http_request(
            &addr,
            "POST /notice/respond",
            &format!("t={forged}&answer=disputed"),
        );
        let refused_page =
            process::http_request(&addr, &format!("GET /notice/respond?t={forged}"), "");
        (reference.to_owned(), shown, recorded, refused, refused_page)
    });
    let _ = server.kill();
    let _ = server.wait();
    assert!(sent, "{log}");
    let Some((reference, shown, recorded, refused, refused_page)) = answers else {
        panic!("no respond link in the notices received: {notices:#?}\n{log}");
    };
    assert_eq!(shown.0, 200, "{}", shown.1);
    assert!(shown.1.contains(&reference), "{}", shown.1);
    assert_eq!(recorded.0, 200, "{}", recorded.1);
    assert!(recorded.1.contains("was recorded"), "{}", recorded.1);
    assert_eq!(refused.0, 400, "{}", refused.1);
    assert!(refused.1.contains("signature"), "{}", refused.1);
    assert_eq!(refused_page.0, 400, "{}", refused_page.1);

    let notice = postgres::block_on(async {
        let store = Store::open(db).await.unwrap();
        let notice = store.notices().notice_by_report(&reference).await.unwrap();
        store.close().await;
        notice.unwrap()
    });
    assert_eq!(
        notice.response.as_deref(),
        Some("acknowledged"),
        "{notice:?}"
    );
}

/// `raw` with quoted-printable soft line breaks removed and `=XX` escapes decoded.
fn quoted_printable(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'=')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
