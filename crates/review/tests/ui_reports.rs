//! Reports in the web UI over real HTTP, on SQLite and PostgreSQL: staff see and submit
//! their own hotline's reports only, operators correct a status (audited), every form needs
//! its token and a same-origin request; the public report form takes hostile input without
//! recording any of it, limits each client, and records what it accepts as the intake does.

#[macro_use]
mod common;

use std::net::SocketAddr;

use aranea_review::Login;
use aranea_server::ui::report_form::ReportFormConfig;
use aranea_store::{
    BankMatch, NewReport, NewUrl, Priority, ReportId, ReportStatus, UrlSource, UserRole,
};
use common::http::{HttpResponse, request};
use common::{Backend, NOW, PASSWORD, World};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FORM: &str = "application/x-www-form-urlencoded";

fn form_config(burst: u32) -> ReportFormConfig {
    ReportFormConfig {
        enabled: true,
        hotline: "ca".into(),
        max_urls: 10,
        burst,
        per_hour: 1,
        client_address_header: None,
    }
}

async fn serve(w: &World, form: ReportFormConfig) -> SocketAddr {
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
    addr
}

async fn login(w: &World, name: &str) -> Login {
    w.review
        .login(name, PASSWORD, None, "test", aranea_review::now_millis())
        .await
        .unwrap()
}

/// Percent-encodes every byte but ASCII letters and digits, as a form value.
fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A signed-in GET or form POST (with the session's token).
async fn call(addr: SocketAddr, method: &str, path: &str, s: &Login, form: &str) -> HttpResponse {
    let cookie = format!("aranea_session={}", s.token);
    let body = if method == "POST" {
        format!("csrf={}&{form}", s.csrf_token)
    } else {
        String::new()
    };
    request(
        addr,
        method,
        path,
        &[("Cookie", &cookie), ("Content-Type", FORM)],
        body.as_bytes(),
    )
    .await
}

async fn public_post(addr: SocketAddr, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    request(addr, "POST", "/report", headers, body).await
}

async fn all_reports(w: &World) -> Vec<aranea_store::Report> {
    w.store.reports().newest(None, None, 1000).await.unwrap()
}

/// Staff reports: submit, list, isolation between hotlines, what came of a report.
async fn staff_see_and_submit_their_own_hotlines_reports(backend: Backend) {
    let w = World::new(backend).await;
    w.actor(w.gb, "gbana", UserRole::Analyst).await;
    w.actor(w.gb, "gbaud", UserRole::Auditor).await;
    w.actor(w.ca, "caana", UserRole::Analyst).await;
    let addr = serve(&w, ReportFormConfig::default()).await;
    let gb = login(&w, "gbana").await;
    let ca = login(&w, "caana").await;

    // Two URLs (one a private address: recorded as text; the crawler's guard decides), a
    // blank line and a repeat.
    let urls = "https://a.example/1\r\nhttp://10.0.0.5/x\r\n\r\nhttps://a.example/1\r\n";
    let r = call(
        addr,
        "POST",
        "/ui/reports",
        &gb,
        &format!("urls={}&notes={}", enc(urls), enc("from a partner <b>")),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/ui/reports?added=2"));
    let recorded = all_reports(&w).await;
    assert_eq!(recorded.len(), 2);
    for report in &recorded {
        assert_eq!(
            (report.hotline.as_str(), report.reporter.as_str()),
            ("gb", "gbana")
        );
        assert_eq!(report.notes, "from a partner <b>");
        assert_eq!(report.status, ReportStatus::Received);
    }
    // What the crawler seeds from: the same intake as the API's.
    let waiting = w
        .store
        .reports()
        .with_status(ReportStatus::Received, 10)
        .await
        .unwrap();
    assert_eq!(waiting.len(), 2);
    let first = recorded
        .iter()
        .find(|r| r.url == "https://a.example/1")
        .unwrap()
        .id;
    assert!(recorded.iter().any(|r| r.url == "http://10.0.0.5/x"));

    // Another hotline's report, received through the intake.
    let secret = w
        .store
        .reports()
        .add(
            &NewReport {
                url: "https://ca-secret.example/page".into(),
                reporter: "ca partner".into(),
                hotline: "ca".into(),
                notes: String::new(),
            },
            NOW,
        )
        .await
        .unwrap();

    // The crawler fetched gb's first URL and found two media on it, one of them known.
    let page = NewUrl::new(
        "https://a.example/1",
        "https://a.example",
        "a.example",
        UrlSource::Report,
        Priority::Reported,
        NOW,
    );
    w.store
        .frontier()
        .enqueue_reported(first, &page, NOW)
        .await
        .unwrap()
        .unwrap();
    let page_id = w
        .store
        .frontier()
        .url_id("https://a.example/1")
        .await
        .unwrap()
        .unwrap();
    common::tamper(
        &w.url,
        &format!(
            "UPDATE urls SET state = 'done', last_status = 200, last_fetched_at = {NOW} \
             WHERE id = {}",
            page_id.get()
        ),
    )
    .await;
    let known = w.queue_photo(1, &["https://a.example/1"]).await;
    w.queue_photo(2, &["https://a.example/1"]).await;
    let sighting = w.store.media().sightings_of(&known).await.unwrap()[0].id;
    w.store
        .media()
        .record_matches(
            sighting,
            &[BankMatch {
                bank_id: 1,
                bank_name: "test".into(),
                entry_id: 7,
                signal_type: "pdq".into(),
                distance: 3,
                classification: "csam".into(),
            }],
            NOW,
        )
        .await
        .unwrap();

    // gb's list: its two reports, with what came of the first; nothing of ca's.
    let list = call(addr, "GET", "/ui/reports", &gb, "").await;
    assert_eq!(list.status, 200);
    let html = list.text();
    assert!(html.contains("<code>https://a.example/1</code>"), "{html}");
    assert!(html.contains("<code>http://10.0.0.5/x</code>"), "{html}");
    assert!(!html.contains("ca-secret"), "{html}");
    let id = first.get();
    let row = html
        .split("<tr>")
        .find(|row| row.contains(&format!("/ui/reports/{id}\"")))
        .unwrap();
    assert!(
        row.contains(
            "<td class=\"status\">queued</td><td>1</td><td>2</td><td>1</td><td>0</td><td>0</td>"
        ),
        "{row}"
    );
    // The report's page: the URL fetched, its answer, the counts; the note escaped.
    let detail = call(addr, "GET", &format!("/ui/reports/{id}"), &gb, "").await;
    assert_eq!(detail.status, 200);
    let html = detail.text();
    assert!(
        html.contains("1 of its URLs fetched; 2 media found on them, 1 matching a bank"),
        "{html}"
    );
    assert!(html.contains("<td>done</td><td>200</td>"), "{html}");
    assert!(html.contains("from a partner &lt;b&gt;"), "{html}");
    assert!(!html.contains("from a partner <b>"));
    // An analyst may not correct a status: no form.
    assert!(!html.contains("/status\""), "{html}");

    // ca sees its own report and none of gb's, even by id.
    let html = call(addr, "GET", "/ui/reports", &ca, "").await.text();
    assert!(html.contains("ca-secret.example/page"), "{html}");
    assert!(
        !html.contains("a.example/1") && !html.contains("10.0.0.5"),
        "{html}"
    );
    let r = call(addr, "GET", &format!("/ui/reports/{id}"), &ca, "").await;
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("a.example"));
    let r = call(
        addr,
        "GET",
        &format!("/ui/reports/{}", secret.get()),
        &gb,
        "",
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("ca-secret"));

    // The auditor reads gb's reports but submits none.
    let aud = login(&w, "gbaud").await;
    assert!(
        call(addr, "GET", "/ui/reports", &aud, "")
            .await
            .text()
            .contains("a.example/1")
    );
    let r = call(
        addr,
        "POST",
        "/ui/reports",
        &aud,
        "urls=https%3A%2F%2Fb.example%2F",
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(all_reports(&w).await.len(), 3);
}

/// The list is paged newest first, `Older reports` leading on.
async fn the_list_is_paged_newest_first(backend: Backend) {
    let w = World::new(backend).await;
    w.actor(w.gb, "gbana", UserRole::Analyst).await;
    let addr = serve(&w, ReportFormConfig::default()).await;
    let gb = login(&w, "gbana").await;
    let urls: String = (0..55)
        .map(|n| format!("https://paged.example/{n:02}\n"))
        .collect();
    let r = call(
        addr,
        "POST",
        "/ui/reports",
        &gb,
        &format!("urls={}", enc(&urls)),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let html = call(addr, "GET", "/ui/reports", &gb, "").await.text();
    let shown = |html: &str| -> Vec<String> {
        html.split("<code>https://paged.example/")
            .skip(1)
            .map(|rest| rest[..2].to_string())
            .collect()
    };
    let first: Vec<String> = shown(&html);
    assert_eq!(first.len(), 50);
    assert_eq!((first[0].as_str(), first[49].as_str()), ("54", "05"));
    let older = html
        .split("href=\"/ui/reports?before=")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let html = call(addr, "GET", &format!("/ui/reports?before={older}"), &gb, "")
        .await
        .text();
    assert_eq!(shown(&html), ["04", "03", "02", "01", "00"]);
    assert!(!html.contains("?before="), "no further page");
    assert_eq!(
        call(addr, "GET", "/ui/reports?before=x", &gb, "")
            .await
            .status,
        400
    );
}

/// Operators correct a status (audited); nobody else can, nor across hotlines, nor without
/// the form's token and a same-origin request.
async fn operators_correct_a_status_and_it_is_audited(backend: Backend) {
    let w = World::new(backend).await;
    w.actor(w.gb, "gbana", UserRole::Analyst).await;
    w.actor(w.gb, "gbop", UserRole::HotlineOperator).await;
    w.actor(w.gb, "gbaud", UserRole::Auditor).await;
    w.actor(w.ca, "caop", UserRole::HotlineOperator).await;
    let addr = serve(&w, ReportFormConfig::default()).await;
    let id = w
        .store
        .reports()
        .add(
            &NewReport {
                url: "https://spam.example/".into(),
                reporter: "someone".into(),
                hotline: "gb".into(),
                notes: String::new(),
            },
            NOW,
        )
        .await
        .unwrap();
    let path = format!("/ui/reports/{}/status", id.get());
    let status = |w: &World, id: ReportId| {
        let store = w.store.clone();
        async move { store.reports().get(id).await.unwrap().unwrap().status }
    };
    let note = "status=rejected&note=duplicate+of+an+older+report";
    for (name, refused) in [("gbana", 403), ("gbaud", 403), ("caop", 404)] {
        let s = login(&w, name).await;
        let r = call(addr, "POST", &path, &s, note).await;
        assert_eq!(r.status, refused, "{name}");
        assert!(!r.text().contains("spam.example"), "{name}");
    }
    assert_eq!(status(&w, id).await, ReportStatus::Received);

    let op = login(&w, "gbop").await;
    let page = call(addr, "GET", &format!("/ui/reports/{}", id.get()), &op, "").await;
    assert!(page.text().contains("id=\"correct\""), "{}", page.text());
    // Forged: no token, a wrong one, another site.
    let cookie = format!("aranea_session={}", op.token);
    let forged = [
        (vec![("Cookie", cookie.as_str())], note.to_string()),
        (
            vec![("Cookie", cookie.as_str())],
            format!("csrf=wrong&{note}"),
        ),
        (
            vec![
                ("Cookie", cookie.as_str()),
                ("Origin", "http://evil.example"),
            ],
            format!("csrf={}&{note}", op.csrf_token),
        ),
        (
            vec![
                ("Cookie", cookie.as_str()),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            format!("csrf={}&{note}", op.csrf_token),
        ),
    ];
    for (headers, body) in forged {
        let r = request(addr, "POST", &path, &headers, body.as_bytes()).await;
        assert_eq!(r.status, 403);
    }
    // `queued` is the frontier's, and an unknown status nothing.
    for bad in ["status=queued", "status=gone", ""] {
        assert_eq!(
            call(addr, "POST", &path, &op, bad).await.status,
            400,
            "{bad}"
        );
    }
    let long_note = format!("status=rejected&note={}", "x".repeat(1001));
    assert_eq!(call(addr, "POST", &path, &op, &long_note).await.status, 400);
    assert_eq!(status(&w, id).await, ReportStatus::Received);

    let r = call(addr, "POST", &path, &op, note).await;
    assert_eq!(r.status, 303);
    assert_eq!(status(&w, id).await, ReportStatus::Rejected);
    // The note is the report's reason now, on its page and in the list.
    let page = call(addr, "GET", &format!("/ui/reports/{}", id.get()), &op, "")
        .await
        .text();
    assert!(
        page.contains("<dd id=\"reason\">corrected by gbop: duplicate of an older report</dd>"),
        "{page}"
    );
    let list = call(addr, "GET", "/ui/reports", &op, "").await.text();
    assert!(
        list.contains("rejected <small>(corrected by gbop: duplicate of an older report)</small>"),
        "{list}"
    );
    let trail = w
        .review
        .audit_trail(&login(&w, "gbaud").await.actor, 50, NOW)
        .await
        .unwrap();
    let row = trail
        .iter()
        .find(|r| r.record.action == "report_status")
        .expect("the correction is audited");
    assert_eq!(row.record.actor, "gbop");
    assert_eq!(row.record.subject, format!("report:{}", id.get()));
    assert_eq!(
        row.record.detail,
        "status=received->rejected note=duplicate of an older report"
    );
    // Back to received: the crawler takes it again. No note: who corrected it is the why.
    let r = call(addr, "POST", &path, &op, "status=received").await;
    assert_eq!(r.status, 303);
    let report = w.store.reports().get(id).await.unwrap().unwrap();
    assert_eq!(report.reason.as_deref(), Some("corrected by gbop"));
    let waiting = w
        .store
        .reports()
        .with_status(ReportStatus::Received, 10)
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1);
}

/// The staff form refuses hostile input whole, says why, and loses nothing typed.
async fn the_staff_form_refuses_hostile_input(backend: Backend) {
    let w = World::new(backend).await;
    w.actor(w.gb, "gbana", UserRole::Analyst).await;
    let addr = serve(&w, ReportFormConfig::default()).await;
    let gb = login(&w, "gbana").await;
    let too_many: String = (0..501)
        .map(|n| format!("https://m.example/{n}\n"))
        .collect();
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!("urls={}", enc("https://ok.example/\nftp://files.example/x")),
            400,
            "line 2: only http and https URLs with a host",
        ),
        (
            format!("urls={}", enc("javascript:alert(1)")),
            400,
            "line 1",
        ),
        (
            format!("urls={}", enc("https://ok.example/\n<script>x</script>")),
            400,
            "&lt;script&gt;x&lt;/script&gt;",
        ),
        (
            format!("urls={}", enc(&too_many)),
            400,
            "501 URLs: at most 500",
        ),
        (
            format!("urls={}&notes=a%00b", enc("https://ok.example/")),
            400,
            "notes: contains a NUL character",
        ),
        (
            format!("urls={}", enc("https://ok.example/a\u{1}b")),
            400,
            "contains a control character",
        ),
        ("urls=%FF%FE".into(), 400, "not a valid URL"),
        ("urls=".into(), 400, "no URL given"),
    ];
    for (body, status, says) in &cases {
        let r = call(addr, "POST", "/ui/reports", &gb, body).await;
        assert_eq!(r.status, *status, "{body:.80}");
        let html = r.text();
        assert!(html.contains(says), "{says}: {html:.2000}");
        assert!(!html.contains("<script>x"), "{html}");
    }
    // What was typed comes back, escaped, so nothing is lost.
    let r = call(
        addr,
        "POST",
        "/ui/reports",
        &gb,
        &format!(
            "urls={}&notes=keep+me",
            enc("https://ok.example/\nftp://x/")
        ),
    )
    .await;
    assert!(
        r.text()
            .contains("https://ok.example/\nftp://x/</textarea>")
    );
    assert!(r.text().contains(">keep me</textarea>"));
    // A body over the cap, and one that is not a form.
    let cookie = format!("aranea_session={}", gb.token);
    let huge = format!(
        "csrf={}&urls={}",
        gb.csrf_token,
        "a".repeat(1024 * 1024 + 1)
    );
    let r = request(
        addr,
        "POST",
        "/ui/reports",
        &[("Cookie", &cookie), ("Content-Type", FORM)],
        huge.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 413);
    let r = request(
        addr,
        "POST",
        "/ui/reports",
        &[("Cookie", &cookie), ("Content-Type", "application/json")],
        format!("csrf={}&urls={}", gb.csrf_token, enc("https://ok.example/")).as_bytes(),
    )
    .await;
    assert_eq!(r.status, 415);
    assert!(all_reports(&w).await.is_empty());
}

/// No report route answers without a session.
async fn report_routes_need_a_session(backend: Backend) {
    let w = World::new(backend).await;
    let addr = serve(&w, ReportFormConfig::default()).await;
    for (method, path) in [
        ("GET", "/ui/reports"),
        ("GET", "/ui/reports/new"),
        ("GET", "/ui/reports/1"),
        ("POST", "/ui/reports"),
        ("POST", "/ui/reports/1/status"),
    ] {
        let r = request(
            addr,
            method,
            path,
            &[("Content-Type", FORM)],
            b"urls=https%3A%2F%2Fx.example%2F&status=rejected",
        )
        .await;
        assert_eq!(r.status, 303, "{method} {path}");
        assert_eq!(r.header("location"), Some("/ui/login"));
    }
    // The public form is off unless configured.
    assert_eq!(request(addr, "GET", "/report", &[], b"").await.status, 404);
    let r = public_post(
        addr,
        &[("Content-Type", FORM)],
        b"urls=https%3A%2F%2Fx.example%2F",
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(all_reports(&w).await.is_empty());
}

/// The public form records what it accepts as the intake does, the contact only if given,
/// and confirms with the references alone.
async fn the_public_form_records_a_report(backend: Backend) {
    let w = World::new(backend).await;
    let addr = serve(&w, form_config(10)).await;
    let page = request(addr, "GET", "/report", &[], b"").await;
    assert_eq!(page.status, 200);
    assert!(
        page.text()
            .contains("<form method=\"post\" action=\"/report\">")
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");

    let hostile_url = "https://a.example/x\"><script>alert(1)</script>";
    let body = format!(
        "urls={}&description={}&contact={}",
        enc(&format!("{hostile_url}\nhttp://192.168.1.20/private")),
        enc("a <i>gallery</i>"),
        enc(" reporter@example.org ")
    );
    let r = public_post(addr, &[("Content-Type", FORM)], body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let html = r.text();
    let mut recorded = all_reports(&w).await;
    assert_eq!(recorded.len(), 2);
    // The public references, in the order sent; never the sequential ids.
    recorded.sort_by_key(|r| r.id);
    assert_eq!(
        references_in(&html),
        [
            recorded[0].reference.as_str(),
            recorded[1].reference.as_str()
        ],
        "{html}"
    );
    // Nothing sent is repeated.
    for echo in ["a.example", "script", "gallery", "reporter@", "192.168"] {
        assert!(!html.contains(echo), "{echo} echoed: {html}");
    }
    for report in &recorded {
        assert_eq!(report.hotline, "ca");
        assert_eq!(report.reporter, "public form: reporter@example.org");
        assert_eq!(report.notes, "a <i>gallery</i>");
        assert_eq!(report.status, ReportStatus::Received);
    }
    assert!(recorded.iter().any(|r| r.url == hostile_url));
    assert!(
        recorded
            .iter()
            .any(|r| r.url == "http://192.168.1.20/private")
    );

    // Without a contact, none is kept.
    let r = public_post(
        addr,
        &[(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        )],
        b"urls=https%3A%2F%2Fb.example%2F&contact=++",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let anonymous = &all_reports(&w).await[0];
    assert_eq!(
        (anonymous.url.as_str(), anonymous.reporter.as_str()),
        ("https://b.example/", "public form")
    );
    assert_eq!(anonymous.notes, "");
    assert_eq!(
        w.store
            .reports()
            .with_status(ReportStatus::Received, 10)
            .await
            .unwrap()
            .len(),
        3
    );
}

/// The references a public confirmation page gives.
fn references_in(html: &str) -> Vec<&str> {
    html.split("<strong id=\"reference\">")
        .nth(1)
        .and_then(|rest| rest.split("</strong>").next())
        .map(|list| list.split(", ").collect())
        .unwrap_or_default()
}

/// `XXXX-XXXX-XXXX` in Crockford's base32, as docs/reports.md says.
fn is_a_reference(text: &str) -> bool {
    const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 3
        && groups
            .iter()
            .all(|g| g.len() == 4 && g.chars().all(|c| ALPHABET.contains(c)))
}

/// A public reporter is told a random reference, not the report's id; the hotline's staff
/// find the report by it (typed any way), other hotlines' staff do not, and an unknown or
/// malformed reference is not found.
async fn staff_find_a_public_report_by_its_reference(backend: Backend) {
    let w = World::new(backend).await;
    w.actor(w.ca, "caana", UserRole::Analyst).await;
    w.actor(w.gb, "gbop", UserRole::HotlineOperator).await;
    let addr = serve(&w, form_config(10)).await;
    let mut told = Vec::new();
    for url in ["https://one.example/", "https://two.example/"] {
        let body = format!("urls={}", enc(url));
        let r = public_post(addr, &[("Content-Type", FORM)], body.as_bytes()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let html = r.text();
        let references = references_in(&html);
        assert_eq!(references.len(), 1, "{html}");
        told.push(references[0].to_string());
    }
    assert!(told.iter().all(|r| is_a_reference(r)), "{told:?}");
    assert_ne!(told[0], told[1]);
    let mut recorded = all_reports(&w).await;
    recorded.sort_by_key(|r| r.id);
    let ids: Vec<i64> = recorded.iter().map(|r| r.id.get()).collect();
    assert_eq!(ids[1], ids[0] + 1, "consecutive reports");
    // Nothing of the sequence shows: the references share no leading half.
    assert_ne!(told[0][..7], told[1][..7], "{told:?}");
    for (reference, report) in told.iter().zip(&recorded) {
        assert_eq!(report.reference.as_str(), reference);
        assert_ne!(reference.as_str(), report.id.get().to_string());
    }

    let ca = login(&w, "caana").await;
    for (n, reference) in told.iter().enumerate() {
        // As read out on the telephone: lower case, spaces for dashes.
        let typed = reference.to_lowercase().replace('-', "+");
        let r = call(
            addr,
            "GET",
            &format!("/ui/reports/find?reference={typed}"),
            &ca,
            "",
        )
        .await;
        assert_eq!(r.status, 303, "{}", r.text());
        let to = format!("/ui/reports/{}", ids[n]);
        assert_eq!(r.header("location"), Some(to.as_str()));
        let page = call(addr, "GET", &to, &ca, "").await.text();
        assert!(
            page.contains(&format!("<code id=\"reference\">{reference}</code>")),
            "{page}"
        );
    }
    let list = call(addr, "GET", "/ui/reports", &ca, "").await.text();
    assert!(list.contains("action=\"/ui/reports/find\""), "{list}");
    assert!(
        list.contains(&format!("<code>{}</code>", told[0])),
        "{list}"
    );
    // Another hotline's staff: not found, nothing shown.
    let gb = login(&w, "gbop").await;
    let r = call(
        addr,
        "GET",
        &format!("/ui/reports/find?reference={}", told[0]),
        &gb,
        "",
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("one.example"));
    // Unknown, malformed, hostile, absent.
    for query in [
        "?reference=0000-0000-0000",
        "?reference=12",
        "?reference=%3Cscript%3E",
        "",
    ] {
        let r = call(addr, "GET", &format!("/ui/reports/find{query}"), &ca, "").await;
        assert_eq!(r.status, 404, "{query}");
        assert!(!r.text().contains("<script>"), "{query}");
    }
}

/// What came of a report counts the pages the crawler reached from it by following links:
/// a reported thread links to a post holding a known photo, which was matched, noticed and
/// found removed; a page reached from elsewhere holds another photo, not counted.
async fn what_came_of_a_report_counts_the_pages_it_links_to(backend: Backend) {
    let w = World::new(backend).await;
    w.actor(w.gb, "gbana", UserRole::Analyst).await;
    let addr = serve(&w, ReportFormConfig::default()).await;
    let gb = login(&w, "gbana").await;
    let report = w
        .store
        .reports()
        .add(
            &NewReport {
                url: "https://forum.example/thread".into(),
                reporter: "a partner".into(),
                hotline: "gb".into(),
                notes: String::new(),
            },
            NOW,
        )
        .await
        .unwrap();
    let page = |path: &str, source: UrlSource, report: Option<ReportId>| NewUrl {
        report_id: report,
        ..NewUrl::new(
            &format!("https://forum.example{path}"),
            "https://forum.example",
            "forum.example",
            source,
            Priority::Reported,
            NOW,
        )
    };
    w.store
        .frontier()
        .enqueue_reported(
            report,
            &page("/thread", UrlSource::Report, Some(report)),
            NOW,
        )
        .await
        .unwrap()
        .unwrap();
    // As the crawler enqueues the links it finds: they carry the page's report.
    w.store
        .frontier()
        .enqueue_urls(
            &[
                page("/post/2", UrlSource::Link, Some(report)),
                page("/elsewhere", UrlSource::Link, None),
            ],
            NOW,
        )
        .await
        .unwrap();
    for path in ["/thread", "/post/2", "/elsewhere"] {
        common::tamper(
            &w.url,
            &format!(
                "UPDATE urls SET state = 'done', last_status = 200, last_fetched_at = {NOW} \
                 WHERE url = 'https://forum.example{path}'"
            ),
        )
        .await;
    }
    w.queue_photo(2, &["https://forum.example/thread"]).await;
    let known = w.queue_photo(1, &["https://forum.example/post/2"]).await;
    w.queue_photo(3, &["https://forum.example/elsewhere"]).await;
    let sighting = w.store.media().sightings_of(&known).await.unwrap()[0].id;
    w.store
        .media()
        .record_matches(
            sighting,
            &[BankMatch {
                bank_id: 1,
                bank_name: "test".into(),
                entry_id: 7,
                signal_type: "pdq".into(),
                distance: 3,
                classification: "csam".into(),
            }],
            NOW,
        )
        .await
        .unwrap();
    let item = w
        .store
        .notices()
        .open_item(&notice_item(sighting.get()), NOW)
        .await
        .unwrap()
        .unwrap();
    w.store
        .notices()
        .create_notice(&notice("forum-1"), &[item], NOW)
        .await
        .unwrap();
    // The re-check found it gone.
    common::tamper(
        &w.url,
        &format!(
            "UPDATE notice_items SET state = 'removed' WHERE id = {}",
            item.0
        ),
    )
    .await;

    let id = report.get();
    let html = call(addr, "GET", "/ui/reports", &gb, "").await.text();
    let row = html
        .split("<tr>")
        .find(|row| row.contains(&format!("/ui/reports/{id}\"")))
        .unwrap();
    assert!(
        row.contains("<td>2</td><td>2</td><td>1</td><td>1</td><td>1</td></tr>"),
        "{row}"
    );
    let html = call(addr, "GET", &format!("/ui/reports/{id}"), &gb, "")
        .await
        .text();
    assert!(
        html.contains(
            "2 of its URLs fetched; 2 media found on them, 1 matching a bank; \
             1 notices sent about them, 1 items removed."
        ),
        "{html}"
    );
}

fn notice_item(sighting: i64) -> aranea_store::NewItem {
    aranea_store::NewItem {
        sighting_id: Some(sighting),
        url: "https://forum.example/files/1.jpg".into(),
        host: "forum.example".into(),
        sha256: "aa".repeat(32),
        md5: "bb".repeat(16),
        sha1: "cc".repeat(20),
        pdq: None,
        media_kind: "jpeg".into(),
        classification: "csam".into(),
        first_seen_at: NOW,
        provider_key: "asn:64501".into(),
        provider_name: "Quickhost".into(),
        asn: Some(64501),
        prefix: Some("192.0.2.0/24".into()),
        country: Some("GB".into()),
        hotline: "gb".into(),
        via_cdn: None,
        method: "rdap_abuse".into(),
        confidence_pct: 90,
        contacts: r#"[{"channel":"smtp","address":"abuse@q.example","role":"abuse"}]"#.into(),
        upstream_contact: None,
        notice_due_at: NOW,
        reupload_of: None,
    }
}

fn notice(key: &str) -> aranea_store::NewNotice {
    aranea_store::NewNotice {
        report_id: format!("r-{key}"),
        idempotency_key: key.into(),
        provider_key: "asn:64501".into(),
        provider_name: "Quickhost".into(),
        hotline: "gb".into(),
        kind: "initial".into(),
        escalation_step: None,
        via_cdn: None,
        channel: "smtp".into(),
        recipient: "abuse@q.example".into(),
        contacts: "[]".into(),
        contact_index: 0,
        language: "en".into(),
        subject: "s".into(),
        body_text: "t".into(),
        body_html: "<p>t</p>".into(),
        xarf: "[]".into(),
        parent_id: None,
        test: false,
    }
}

/// Sends `head` and the first `sent` bytes of a body that claims `claimed`, then closes
/// the sending side; returns the status line's code.
async fn truncated(addr: SocketAddr, claimed: usize, sent: &[u8]) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /report HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {FORM}\r\nContent-Length: {claimed}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(sent).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("an answer");
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Hostile input to the public form: refused whole, nothing recorded, nothing unescaped.
async fn the_public_form_refuses_hostile_input(backend: Backend) {
    let w = World::new(backend).await;
    let addr = serve(&w, form_config(1000)).await;
    let eleven: String = (0..11)
        .map(|n| format!("https://m.example/{n}\n"))
        .collect();
    let long_url = format!("https://a.example/{}", "a".repeat(2048));
    let cases: Vec<(String, u16, &str)> = vec![
        (format!("urls={}", enc(&eleven)), 400, "11 URLs: at most 10"),
        (
            format!("urls={}", enc("file:///etc/passwd")),
            400,
            "only http and https",
        ),
        (
            format!("urls={}", enc("ftp://a.example/")),
            400,
            "only http and https",
        ),
        (
            format!("urls={}", enc("data:text/html,<script>x</script>")),
            400,
            "&lt;script&gt;x",
        ),
        (
            format!("urls={}", enc("javascript:alert(1)")),
            400,
            "only http and https",
        ),
        (
            format!("urls={}", enc("a.example/page")),
            400,
            "not a valid URL",
        ),
        (
            format!("urls={}", enc(&long_url)),
            400,
            "longer than 2048 bytes",
        ),
        ("urls=%FF%FE%2".into(), 400, "not a valid URL"),
        ("urls=https%3A%2F%2Fa.ex%2".into(), 400, "not a valid URL"),
        ("nothing=here".into(), 400, "no URL given"),
        (
            format!(
                "urls={}&description={}",
                enc("https://a.example/"),
                "d".repeat(4001)
            ),
            400,
            "description: at most 4000 bytes",
        ),
        (
            format!(
                "urls={}&contact={}",
                enc("https://a.example/"),
                enc("me@example.org\r\nBcc: x")
            ),
            400,
            "contact: one line",
        ),
        (
            format!(
                "urls={}&description={}",
                enc("ftp://x/"),
                enc("<script>alert('d')</script>")
            ),
            400,
            "&lt;script&gt;alert(&#39;d&#39;)&lt;/script&gt;</textarea>",
        ),
    ];
    for (body, status, says) in &cases {
        let r = public_post(addr, &[("Content-Type", FORM)], body.as_bytes()).await;
        assert_eq!(r.status, *status, "{body:.100}");
        let html = r.text();
        assert!(html.contains(says), "{says}: {html:.3000}");
        assert!(!html.contains("<script>"), "{html}");
    }
    // Not a form, too large, cut short, from another site.
    for content_type in [
        "application/json",
        "multipart/form-data; boundary=x",
        "text/plain",
    ] {
        let r = public_post(
            addr,
            &[("Content-Type", content_type)],
            b"urls=https%3A%2F%2Fa.example%2F",
        )
        .await;
        assert_eq!(r.status, 415, "{content_type}");
    }
    let r = public_post(addr, &[], b"urls=https%3A%2F%2Fa.example%2F").await;
    assert_eq!(r.status, 415);
    let huge = format!("urls={}", "a".repeat(200 * 1024));
    let r = public_post(addr, &[("Content-Type", FORM)], huge.as_bytes()).await;
    assert_eq!(r.status, 413);
    assert_eq!(truncated(addr, 500, b"urls=https%3A%2F%2Fa.exa").await, 400);
    for (name, value) in [
        ("Origin", "https://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Origin", "null"),
    ] {
        let r = public_post(
            addr,
            &[("Content-Type", FORM), (name, value)],
            b"urls=https%3A%2F%2Fa.example%2F",
        )
        .await;
        assert_eq!(r.status, 403, "{name}: {value}");
    }
    assert!(all_reports(&w).await.is_empty());
}

/// A client sends its burst, then waits; another client (here: another forwarded address)
/// is not held up by it.
async fn the_public_form_limits_each_client(backend: Backend) {
    let w = World::new(backend).await;
    let addr = serve(&w, form_config(3)).await;
    // Refused reports count too: a flood of garbage is limited like any other.
    for n in 0..3 {
        let body = if n == 0 {
            "urls=ftp%3A%2F%2Fx%2F"
        } else {
            "urls=https%3A%2F%2Fa.example%2F"
        };
        let r = public_post(addr, &[("Content-Type", FORM)], body.as_bytes()).await;
        assert_eq!(r.status, if n == 0 { 400 } else { 200 }, "{n}");
    }
    let r = public_post(
        addr,
        &[("Content-Type", FORM)],
        b"urls=https%3A%2F%2Fc.example%2F",
    )
    .await;
    assert_eq!(r.status, 429);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1000..=3600).contains(&wait), "{wait}");
    assert_eq!(all_reports(&w).await.len(), 2);

    // Behind a proxy: its header names the client, the last address the proxy's own.
    let w = World::new(backend).await;
    let addr = serve(
        &w,
        ReportFormConfig {
            client_address_header: Some("X-Forwarded-For".into()),
            ..form_config(1)
        },
    )
    .await;
    let send = |client: &'static str| async move {
        public_post(
            addr,
            &[("Content-Type", FORM), ("X-Forwarded-For", client)],
            b"urls=https%3A%2F%2Fa.example%2F",
        )
        .await
        .status
    };
    assert_eq!(send("198.51.100.1").await, 200);
    assert_eq!(send("203.0.113.9, 198.51.100.1").await, 429);
    assert_eq!(send("198.51.100.1, 198.51.100.2").await, 200);
    assert_eq!(send("2001:db8:5:6::1").await, 200);
    assert_eq!(send("2001:db8:5:6:ffff::2").await, 429, "the same /64");
    assert_eq!(all_reports(&w).await.len(), 3);
}

/// A platform administrator sees every hotline's reports, with their hotline, and corrects
/// any of them.
async fn a_platform_administrator_sees_and_corrects_every_report(backend: Backend) {
    let w = World::new(backend).await;
    w.actor(w.gb, "admin", UserRole::PlatformAdmin).await;
    let addr = serve(&w, ReportFormConfig::default()).await;
    let mut ids = Vec::new();
    for (hotline, url) in [("gb", "https://gb.example/"), ("ca", "https://ca.example/")] {
        let report = NewReport {
            url: url.into(),
            reporter: "partner".into(),
            hotline: hotline.into(),
            notes: String::new(),
        };
        ids.push(w.store.reports().add(&report, NOW).await.unwrap());
    }
    let admin = login(&w, "admin").await;
    let html = call(addr, "GET", "/ui/reports", &admin, "").await.text();
    assert!(html.contains("<small>(gb)</small>"), "{html}");
    assert!(
        html.contains("<small>(ca)</small>") && html.contains("https://ca.example/"),
        "{html}"
    );
    let path = format!("/ui/reports/{}/status", ids[1].get());
    let r = call(addr, "POST", &path, &admin, "status=crawled&note=checked").await;
    assert_eq!(r.status, 303);
    let corrected = w.store.reports().get(ids[1]).await.unwrap().unwrap();
    assert_eq!(corrected.status, ReportStatus::Crawled);
}

both_backends!(
    staff_see_and_submit_their_own_hotlines_reports,
    the_list_is_paged_newest_first,
    operators_correct_a_status_and_it_is_audited,
    the_staff_form_refuses_hostile_input,
    report_routes_need_a_session,
    the_public_form_records_a_report,
    the_public_form_refuses_hostile_input,
    the_public_form_limits_each_client,
    a_platform_administrator_sees_and_corrects_every_report,
    staff_find_a_public_report_by_its_reference,
    what_came_of_a_report_counts_the_pages_it_links_to,
);
