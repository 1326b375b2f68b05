//! The statistics page and its JSON form through a real socket, on a store holding a known
//! history of items, notices, removals, matches and reports: the numbers in the provider
//! table, the SVG charts' data points and the JSON agree with that history; each role sees
//! what it may (platform administrators all hotlines, operators and auditors their own,
//! analysts nothing); hostile windows get clear 400s.

mod common;

use aranea_review::{AuditActor, NewUserRequest, Review, ReviewConfig};
use aranea_server::{AppState, ServerConfig};
use aranea_store::{
    BankMatch, CheckRecord, ItemId, MediaRecord, NewHotline, NewItem, NewNotice, NewReport,
    NewSighting, NewUrl, Priority, Store, UrlSource, UserRole,
};
use common::{Reply, call, documented, get, raw};

const PASSWORD: &str = "correct horse battery staple";
/// 2026-03-10T00:00:00Z.
const T0: i64 = 1_773_100_800_000;
const HOUR: i64 = 3_600_000;

fn item(url: &str, provider: &str, hotline: &str, at: i64) -> NewItem {
    NewItem {
        sighting_id: None,
        url: url.into(),
        host: "files.example".into(),
        sha256: "aa".repeat(32),
        md5: "bb".repeat(16),
        sha1: "cc".repeat(20),
        pdq: None,
        media_kind: "jpeg".into(),
        classification: "csam".into(),
        first_seen_at: at,
        provider_key: format!("provider:{provider}"),
        provider_name: provider.into(),
        asn: None,
        prefix: None,
        country: Some("NL".into()),
        hotline: hotline.into(),
        via_cdn: None,
        method: "rdap_abuse".into(),
        confidence_pct: 90,
        contacts: "[]".into(),
        upstream_contact: None,
        notice_due_at: at,
        reupload_of: None,
    }
}

/// Composes a notice and takes it through its lease to `sent` at `at`.
async fn send(store: &Store, key: &str, who: (&str, &str), kind: &str, items: &[ItemId], at: i64) {
    let (provider, hotline) = who;
    let notice = NewNotice {
        report_id: format!("r-{key}"),
        idempotency_key: key.into(),
        provider_key: format!("provider:{provider}"),
        provider_name: provider.into(),
        hotline: hotline.into(),
        kind: kind.into(),
        escalation_step: None,
        via_cdn: None,
        channel: "smtp".into(),
        recipient: "abuse@example.org".into(),
        contacts: "[]".into(),
        contact_index: 0,
        language: "en".into(),
        subject: "s".into(),
        body_text: "t".into(),
        body_html: "<p>t</p>".into(),
        xarf: "[]".into(),
        parent_id: None,
        test: false,
    };
    let n = store.notices();
    let (id, _) = n.create_notice(&notice, items, at).await.unwrap();
    n.claim_notice("w", at, at + 1000).await.unwrap().unwrap();
    assert!(n.mark_committing(id, "w").await.unwrap());
    assert!(n.mark_sent(id, "w", at, "250 ok", HOUR).await.unwrap());
}

async fn remove(store: &Store, item: ItemId, at: i64) {
    let check = CheckRecord {
        at,
        outcome: "gone".into(),
        http_status: Some(404),
        detail: String::new(),
        next_check_at: None,
        pending: None,
        removed: Some(("gone".into(), at)),
    };
    store.notices().record_check(item, &check).await.unwrap();
}

async fn matched(store: &Store, at: i64) {
    let url = NewUrl::new(
        "https://files.example/m.jpg",
        "https://files.example",
        "files.example",
        UrlSource::Link,
        Priority::Ordinary,
        at,
    );
    let done = store.frontier().enqueue_urls(&[url], at).await.unwrap();
    let media = MediaRecord {
        sha256: [1; 32],
        md5: [1; 16],
        sha1: [1; 20],
        pdq: None,
        pdq_quality: None,
        size: 10,
        kind: "jpeg".into(),
        width: None,
        height: None,
    };
    store.media().record(&media, at).await.unwrap();
    let sighting = store
        .media()
        .record_sighting(&NewSighting {
            media_sha256: [1; 32],
            url: done[0].id,
            page: None,
            member_path: None,
            seen_at: at,
            server_ip: None,
        })
        .await
        .unwrap();
    let hit = BankMatch {
        bank_id: 1,
        bank_name: "known".into(),
        entry_id: 1,
        signal_type: "sha256".into(),
        distance: 0,
        classification: "csam".into(),
    };
    store
        .media()
        .record_matches(sighting, &[hit], at)
        .await
        .unwrap();
}

async fn open(store: &Store, url: &str, provider: &str, hotline: &str, at: i64) -> ItemId {
    let new = item(url, provider, hotline, at);
    store.notices().open_item(&new, at).await.unwrap().unwrap()
}

/// Quickhost (hotline nl): two items noticed at T0+1h, one removed at T0+3h (2 h after the
/// notice), the other re-noticed at T0+25h, escalated at T0+49h and removed at T0+50h (49 h).
/// Slowhost (hotline ca): one item noticed at T0+2h, never removed. Reports: nl at T0 and
/// T0+30h, ca at T0+31h. One match at T0.
async fn history(store: &Store) {
    let a1 = open(store, "http://q.example/1", "Quickhost", "nl", T0).await;
    let a2 = open(store, "http://q.example/2", "Quickhost", "nl", T0).await;
    let b1 = open(store, "http://s.example/1", "Slowhost", "ca", T0 + 2 * HOUR).await;
    let quick = ("Quickhost", "nl");
    send(store, "q1", quick, "initial", &[a1, a2], T0 + HOUR).await;
    send(
        store,
        "s1",
        ("Slowhost", "ca"),
        "initial",
        &[b1],
        T0 + 2 * HOUR,
    )
    .await;
    remove(store, a1, T0 + 3 * HOUR).await;
    send(store, "q2", quick, "renotice", &[a2], T0 + 25 * HOUR).await;
    send(store, "q3", quick, "escalation", &[a2], T0 + 49 * HOUR).await;
    remove(store, a2, T0 + 50 * HOUR).await;
    let report = |hotline: &str| NewReport {
        url: "https://reported.example/".into(),
        reporter: "tipline".into(),
        hotline: hotline.into(),
        notes: String::new(),
    };
    for (hotline, at) in [("nl", T0), ("nl", T0 + 30 * HOUR), ("ca", T0 + 31 * HOUR)] {
        store.reports().add(&report(hotline), at).await.unwrap();
    }
    matched(store, T0).await;
}

struct Site {
    server: common::Server,
}

/// A server with the review UI installed, hotlines nl and ca, one user per role, and the
/// history above.
fn site() -> Site {
    // The review UI is installed once per process; this binary holds one server.
    let server = common::start("statistics", ServerConfig::default());
    server.block_on(async {
        let store = server.store.clone();
        let review = Review::from_config(store.clone(), ReviewConfig::default(), None).unwrap();
        let now = aranea_review::now_millis();
        for code in ["nl", "ca"] {
            let hotline = NewHotline {
                code: code.into(),
                name: format!("Hotline {code}"),
                country: code.to_uppercase(),
                languages: vec!["en".into()],
                jurisdiction: code.to_uppercase(),
                shares_review_pool: true,
                shares_banks: true,
                daily_cap: 100,
            };
            let id = review
                .add_hotline(AuditActor::Cli, &hotline, now)
                .await
                .unwrap();
            let users: &[(&str, UserRole)] = if code == "nl" {
                &[
                    ("nl-operator", UserRole::HotlineOperator),
                    ("nl-analyst", UserRole::Analyst),
                    ("admin", UserRole::PlatformAdmin),
                ]
            } else {
                &[("ca-auditor", UserRole::Auditor)]
            };
            for (username, role) in users {
                let request = NewUserRequest {
                    hotline: id,
                    username: (*username).into(),
                    display_name: (*username).into(),
                    role: *role,
                    password: PASSWORD.into(),
                };
                review
                    .add_user(AuditActor::Cli, request, now)
                    .await
                    .unwrap();
            }
        }
        aranea_server::ui::install_review(review, false);
        history(&store).await;
    });
    Site { server }
}

impl Site {
    /// A second server on the same store, built after the UI was installed.
    fn ui_addr(&self) -> std::net::SocketAddr {
        self.server.block_on(async {
            let state = AppState::open(
                ServerConfig::default(),
                &self.server.dir.join("banks"),
                self.server.store.clone(),
            )
            .await
            .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(aranea_server::serve(
                listener,
                state,
                std::future::pending(),
            ));
            addr
        })
    }
}

fn login(addr: std::net::SocketAddr, username: &str) -> String {
    let form = format!(
        "username={username}&password={}",
        PASSWORD.replace(' ', "+")
    );
    let request = format!(
        "POST /ui/login HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    let reply = raw(addr, request.as_bytes());
    assert_eq!(reply.status, 303, "login of {username}: {reply:?}");
    let cookie = reply.header("set-cookie").unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

fn page(addr: std::net::SocketAddr, cookie: &str, query: &str) -> Reply {
    let request = format!(
        "GET /ui/statistics{query} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
    );
    raw(addr, request.as_bytes())
}

fn text(reply: &Reply) -> String {
    String::from_utf8(reply.body.clone()).unwrap()
}

/// The text between `start` (after it) and the next `end`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in page"))
        + start.len();
    let rest = &html[from..];
    &rest[..rest.find(end).unwrap()]
}

/// Every `name="VALUE"` attribute value in `html`, in order.
fn attributes(html: &str, name: &str) -> Vec<String> {
    let key = format!("{name}=\"");
    html.split(key.as_str())
        .skip(1)
        .map(|part| part[..part.find('"').unwrap()].to_owned())
        .collect()
}

/// The cells of the provider table's row for `provider`.
fn provider_row(html: &str, provider: &str) -> Vec<String> {
    let row = between(html, &format!("<tr data-provider=\"{provider}\">"), "</tr>");
    row.split("<td class=\"n\">")
        .skip(1)
        .map(|cell| cell[..cell.find("</td>").unwrap()].to_owned())
        .collect()
}

fn series(html: &str, name: &str) -> Vec<i64> {
    let group = between(html, &format!("data-series=\"{name}\">"), "</g>");
    attributes(group, "data-value")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect()
}

const WINDOW: &str = "?from=2026-03-10&to=2026-03-12";

#[test]
fn statistics_show_each_role_its_own_numbers_and_refuse_hostile_windows() {
    let site = site();
    let addr = site.ui_addr();

    // Platform administrator: every hotline.
    let admin = login(addr, "admin");
    let reply = page(addr, &admin, WINDOW);
    assert_eq!(reply.status, 200, "{}", text(&reply));
    assert!(
        reply
            .header("content-security-policy")
            .is_some_and(|c| c.contains("default-src 'none'"))
    );
    let html = text(&reply);
    // For a look in a browser: `ARANEA_STATISTICS_HTML=/tmp/s.html cargo test ...`.
    if let Ok(path) = std::env::var("ARANEA_STATISTICS_HTML") {
        std::fs::write(path, &html).unwrap();
    }
    assert!(!html.contains("<script"));
    assert!(html.contains("2026-03-10 to 2026-03-12 (UTC), by day"));
    // items, removed, outstanding, median h, p90 h, within 24 h, notices, re-notices,
    // escalations, re-uploads
    assert_eq!(
        provider_row(&html, "Quickhost"),
        ["2", "2", "0", "2.0", "49.0", "50 %", "3", "1", "1", "0"]
    );
    assert_eq!(
        provider_row(&html, "Slowhost"),
        ["1", "0", "1", "–", "–", "–", "1", "0", "0", "0"]
    );
    let bars = between(&html, "<svg id=\"time-to-removal\"", "</svg>");
    assert_eq!(
        attributes(bars, "data-label"),
        ["≤ 1 h", "1–6 h", "6–24 h", "1–3 d", "3–7 d", "&gt; 7 d"]
    );
    assert_eq!(
        attributes(bars, "data-value"),
        ["0", "1", "0", "1", "0", "0"]
    );
    assert_eq!(series(&html, "notices_sent"), [2, 1, 1]);
    assert_eq!(series(&html, "removals"), [1, 0, 1]);
    assert_eq!(series(&html, "matches"), [1, 0, 0]);
    assert_eq!(series(&html, "reports"), [1, 2, 0]);
    let days = between(&html, "data-series=\"notices_sent\">", "</g>");
    assert_eq!(
        attributes(days, "data-x"),
        ["2026-03-10", "2026-03-11", "2026-03-12"]
    );
    assert_eq!(
        attributes(between(&html, "id=\"counter-matches\"", ">"), "data-value"),
        ["1"]
    );

    // A hotline operator: their hotline's notices and reports; matches are platform-wide.
    let operator = login(addr, "nl-operator");
    let html = text(&page(addr, &operator, WINDOW));
    assert!(html.contains("data-provider=\"Quickhost\""));
    assert!(
        !html.contains("Slowhost"),
        "another hotline's provider shown"
    );
    assert_eq!(series(&html, "notices_sent"), [1, 1, 1]);
    assert_eq!(series(&html, "reports"), [1, 1, 0]);
    assert_eq!(series(&html, "matches"), [1, 0, 0]);

    // An auditor of the other hotline.
    let auditor = login(addr, "ca-auditor");
    let html = text(&page(addr, &auditor, WINDOW));
    assert_eq!(
        provider_row(&html, "Slowhost"),
        ["1", "0", "1", "–", "–", "–", "1", "0", "0", "0"]
    );
    assert!(!html.contains("Quickhost"));
    assert_eq!(series(&html, "removals"), [0, 0, 0]);

    // One day is charted by the hour.
    let html = text(&page(addr, &admin, "?from=2026-03-10&to=2026-03-10"));
    let removals = series(&html, "removals");
    assert_eq!(removals.len(), 24);
    assert_eq!(removals[3], 1);
    assert_eq!(removals.iter().sum::<i64>(), 1);

    // Analysts and strangers.
    let analyst = login(addr, "nl-analyst");
    assert_eq!(page(addr, &analyst, WINDOW).status, 403);
    let stranger = page(addr, "aranea_session=forged", WINDOW);
    assert_eq!(stranger.status, 303);
    assert_eq!(stranger.header("location"), Some("/ui/login"));
    let anonymous = raw(
        addr,
        b"GET /ui/statistics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(anonymous.status, 303);

    notice_pages_show_each_reader_its_own_hotlines_notices(&site, addr, &admin, &analyst);

    // Hostile windows.
    let long = format!("?from={}", "9".repeat(5000));
    for (query, says) in [
        ("?from=2026-03-12&to=2026-03-10", "must not be after"),
        ("?from=2000-01-01&to=2999-12-31", "at most 366 days"),
        ("?from=2025-01-01&to=2026-03-01", "at most 366 days"),
        ("?from=yesterday", "YYYY-MM-DD"),
        ("?to=2026-02-30", "YYYY-MM-DD"),
        ("?from=1970-01-01&to=1970-01-02", "between 2000-01-01"),
        ("?from=2026-03-10%00", "YYYY-MM-DD"),
        (long.as_str(), "YYYY-MM-DD"),
        ("?from=2026-03-10&limit=5", "Bad query"),
        ("?from=2026-03-10&from=2026-03-11", "Bad query"),
    ] {
        let reply = page(addr, &admin, query);
        assert_eq!(reply.status, 400, "{query}: {}", text(&reply));
        assert!(text(&reply).contains(says), "{query}: {}", text(&reply));
    }
}

fn ui_get(addr: std::net::SocketAddr, cookie: &str, path: &str) -> Reply {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
    );
    raw(addr, request.as_bytes())
}

/// `/ui/notices/{id}`: the notice and its timeline for its own hotline's operator and
/// auditor and for platform administrators; 404 for other hotlines and unknown ids alike.
fn notice_pages_show_each_reader_its_own_hotlines_notices(
    site: &Site,
    addr: std::net::SocketAddr,
    admin: &str,
    analyst: &str,
) {
    let (quick, slow) = site.server.block_on(async {
        let notices = site.server.store.notices();
        let all = notices
            .list_notices(&aranea_store::NoticeFilter::default())
            .await
            .unwrap();
        let find = |key: &str| all.iter().find(|n| n.idempotency_key == key).unwrap().id;
        let (quick, slow) = (find("q1"), find("s1"));
        notices
            .record_event(
                Some(aranea_store::NoticeId(quick)),
                None,
                T0 + 2 * HOUR,
                "response",
                "provider <acknowledged> the notice",
            )
            .await
            .unwrap();
        (quick, slow)
    });
    let operator = login(addr, "nl-operator");
    let auditor = login(addr, "ca-auditor");
    let own = ui_get(addr, &operator, &format!("/ui/notices/{quick}"));
    assert_eq!(own.status, 200, "{}", text(&own));
    let html = text(&own);
    assert!(html.contains("<dd>Quickhost</dd>"), "{html}");
    assert!(html.contains("<tr data-event=\"response\">"), "{html}");
    assert!(
        html.contains("provider &lt;acknowledged&gt; the notice"),
        "escaped detail: {html}"
    );
    assert!(
        own.header("content-security-policy")
            .is_some_and(|c| c.contains("default-src 'none'"))
    );
    assert_eq!(
        ui_get(addr, admin, &format!("/ui/notices/{slow}")).status,
        200
    );
    assert_eq!(
        ui_get(addr, &auditor, &format!("/ui/notices/{slow}")).status,
        200
    );
    // Another hotline's notice looks exactly like a missing one.
    let foreign = ui_get(addr, &auditor, &format!("/ui/notices/{quick}"));
    let missing = ui_get(addr, &auditor, "/ui/notices/987654321");
    assert_eq!((foreign.status, missing.status), (404, 404));
    assert_eq!(text(&foreign), text(&missing));
    for hostile in [
        "/ui/notices/abc",
        "/ui/notices/-1",
        "/ui/notices/99999999999999999999",
    ] {
        assert_eq!(ui_get(addr, admin, hostile).status, 404, "{hostile}");
    }
    assert_eq!(
        ui_get(addr, analyst, &format!("/ui/notices/{quick}")).status,
        403
    );
    let anonymous = ui_get(
        addr,
        "aranea_session=forged",
        &format!("/ui/notices/{quick}"),
    );
    assert_eq!(anonymous.status, 303);
    // The list: each reader's own hotline's notices, newest first; older ones by `before`.
    let listed = |cookie: &str, query: &str| -> Vec<i64> {
        let reply = ui_get(addr, cookie, &format!("/ui/notices{query}"));
        assert_eq!(reply.status, 200, "{query}: {}", text(&reply));
        attributes(&text(&reply), "data-notice")
            .iter()
            .map(|id| id.parse().unwrap())
            .collect()
    };
    let everything = listed(admin, "");
    assert_eq!(everything.len(), 4, "{everything:?}");
    assert!(everything.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert_eq!(listed(&auditor, ""), [slow]);
    let nl = listed(&operator, "");
    assert_eq!(nl.len(), 3);
    assert!(!nl.contains(&slow));
    assert_eq!(
        listed(admin, &format!("?before={}", everything[1])),
        everything[2..]
    );
    for hostile in [
        "?before=abc",
        "?before=0",
        "?before=-5",
        "?limit=5",
        "?before=1&before=2",
    ] {
        let reply = ui_get(addr, admin, &format!("/ui/notices{hostile}"));
        assert_eq!(reply.status, 400, "{hostile}: {}", text(&reply));
    }
    assert_eq!(ui_get(addr, analyst, "/ui/notices").status, 403);
    assert_eq!(
        ui_get(addr, "aranea_session=forged", "/ui/notices").status,
        303
    );
}

#[test]
fn the_json_form_matches_the_page_and_its_openapi_document() {
    let site = site_json();
    let addr = site.server.addr;
    let reader = site.server.client("reader", &["read"], None);
    let intake = site.server.client("intake", &["intake"], None);
    let doc = get(addr, "/api/v1/openapi.json", None).json();
    let reply = get(
        addr,
        &format!("/api/v1/statistics/removals{WINDOW}"),
        Some(&reader),
    );
    let body = documented(&doc, "get", "/api/v1/statistics/removals", &reply, 200);
    assert_eq!(body["bucket"], "day");
    assert_eq!(body["series"]["notices_sent"], serde_json::json!([2, 1, 1]));
    assert_eq!(body["series"]["reports"], serde_json::json!([1, 2, 0]));
    let quick = &body["providers"][0];
    assert_eq!(quick["provider"], "Quickhost");
    assert_eq!(quick["median_hours_to_removal"], 2.0);
    assert_eq!(quick["p90_hours_to_removal"], 49.0);
    assert_eq!(
        (quick["renotices"].as_i64(), quick["escalations"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        body["time_to_removal"][1],
        serde_json::json!({"bucket": "1–6 h", "items": 1})
    );
    let refused = get(addr, "/api/v1/statistics/removals", Some(&intake));
    assert_eq!(refused.status, 403);
    let bad = call(
        addr,
        "GET",
        "/api/v1/statistics/removals?from=2020-01-01&to=2026-01-01",
        Some(&reader),
        None,
        b"",
    );
    let problem = documented(&doc, "get", "/api/v1/statistics/removals", &bad, 400);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("at most 366 days")
    );
    // Without a window: the 30 days ending with the newest event or today, whichever is later.
    let default = get(addr, "/api/v1/statistics/removals", Some(&reader)).json();
    assert_eq!(default["buckets"].as_array().unwrap().len(), 30);
}

/// A plain server (no review UI needed) with the same history, for the JSON form.
fn site_json() -> Site {
    let server = common::start("statistics-json", ServerConfig::default());
    server.block_on(history(&server.store));
    Site { server }
}
