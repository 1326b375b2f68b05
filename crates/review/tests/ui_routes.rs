//! Every UI route over real HTTP: none answers without a session (only the login form),
//! none lets a user of one hotline read or change another's items, users or settings by
//! guessing ids, and every POST needs the session's CSRF token and a same-origin request.

#[macro_use]
mod common;

use std::net::SocketAddr;

use aranea_review::Login;
use aranea_store::UserRole;
use common::http::{HttpResponse, request};
use common::{Backend, NOW, PASSWORD, World, hex};

async fn serve(w: &World) -> SocketAddr {
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
    addr
}

async fn login(w: &World, name: &str) -> Login {
    w.review
        .login(name, PASSWORD, None, "test", aranea_review::now_millis())
        .await
        .unwrap()
}

async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    session: Option<&Login>,
    form: &str,
) -> HttpResponse {
    let cookie = session.map(|s| format!("aranea_session={}", s.token));
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(c) = &cookie {
        headers.push(("Cookie", c));
    }
    let body = match session {
        Some(s) if method == "POST" => format!("csrf={}&{form}", s.csrf_token),
        _ => form.to_string(),
    };
    request(addr, method, path, &headers, body.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_closed_without_a_session_and_between_hotlines() {
    tokio::time::timeout(std::time::Duration::from_secs(120), scenario())
        .await
        .expect("timed out");
}

async fn scenario() {
    let w = World::new(Backend::Sqlite).await;
    let fr = w
        .review
        .add_hotline(
            aranea_review::AuditActor::Cli,
            &common::hotline("fr", "FR", false),
            NOW,
        )
        .await
        .unwrap();
    let sha = w.queue_photo(1, &["https://one.example/secret-page"]).await;
    w.review.intake(NOW).await.unwrap();
    let gb_analyst = w.actor(w.gb, "gbana", UserRole::Analyst).await;
    w.actor(w.gb, "gbop", UserRole::HotlineOperator).await;
    w.actor(w.gb, "gbaud", UserRole::Auditor).await;
    w.actor(fr, "frana", UserRole::Analyst).await;
    w.actor(fr, "frsen", UserRole::SeniorAnalyst).await;
    w.actor(fr, "frop", UserRole::HotlineOperator).await;
    let item = w.review.next_item(&gb_analyst, NOW).await.unwrap().unwrap();
    let addr = serve(&w).await;
    let sha = hex(&sha);
    let (user, gb) = (gb_analyst.user.id, w.gb);
    let classification = "age_band=7-10&severity=B";
    let routes: Vec<(&str, String, &str)> = vec![
        ("GET", "/ui/".into(), ""),
        ("POST", "/ui/logout".into(), ""),
        ("POST", "/ui/next".into(), ""),
        ("GET", format!("/ui/items/{item}"), ""),
        ("POST", format!("/ui/items/{item}/vote"), classification),
        ("POST", format!("/ui/items/{item}/settle"), classification),
        (
            "POST",
            format!("/ui/items/{item}/reopen"),
            "not_relevant=1&note=x",
        ),
        ("GET", format!("/ui/items/{item}/media/{sha}/thumb"), ""),
        ("POST", format!("/ui/items/{item}/media/{sha}/reveal"), ""),
        ("GET", format!("/ui/items/{item}/media/{sha}/original"), ""),
        ("GET", "/ui/history".into(), ""),
        ("GET", "/ui/disputes".into(), ""),
        ("GET", "/ui/admin".into(), ""),
        ("POST", format!("/ui/admin/hotlines/{gb}"), "daily_cap=0"),
        (
            "POST",
            "/ui/admin/users".into(),
            "hotline=1&username=intruder&role=analyst&password=aaaaaaaaaaaaaaaa",
        ),
        (
            "POST",
            format!("/ui/admin/users/{user}/disabled"),
            "disabled=1",
        ),
        ("POST", format!("/ui/admin/users/{user}/totp-reset"), ""),
        ("GET", "/ui/audit".into(), ""),
    ];
    let secrets = ["secret-page", sha.as_str(), "gbana", "gbop"];
    // A user's own pages: every user has one, so only the no-session rule applies.
    let own_routes: Vec<(&str, String, &str)> = vec![
        ("GET", "/ui/account".into(), ""),
        ("POST", "/ui/account/totp/begin".into(), ""),
        ("POST", "/ui/account/totp/confirm".into(), "code=123456"),
        (
            "POST",
            "/ui/account/totp/disable".into(),
            "password=x&code=123456",
        ),
        ("GET", "/ui/static/exposure.js".into(), ""),
    ];

    // No session (none, or a guessed token): a redirect to the login form, nothing else.
    let guessed = Login {
        token: "ab".repeat(32),
        csrf_token: "x".into(),
        actor: gb_analyst.clone(),
    };
    for session in [None, Some(&guessed)] {
        for (method, path, form) in routes.iter().chain(&own_routes) {
            let r = call(addr, method, path, session, form).await;
            assert_eq!(r.status, 303, "{method} {path}");
            assert_eq!(r.header("location"), Some("/ui/login"), "{method} {path}");
            let body = r.text();
            assert!(
                secrets.iter().all(|s| !body.contains(s)),
                "{method} {path} leaked: {body}"
            );
        }
    }
    assert_eq!(call(addr, "GET", "/ui/login", None, "").await.status, 200);

    // Users of another hotline (outside the pool) get "not found" or "forbidden".
    for name in ["frana", "frsen", "frop"] {
        let s = login(&w, name).await;
        for (method, path, form) in &routes {
            if path == "/ui/logout"
                || path == "/ui/"
                || path == "/ui/history"
                || path == "/ui/disputes"
                || path == "/ui/next"
            {
                continue;
            }
            let r = call(addr, method, path, Some(&s), form).await;
            let body = r.text();
            if path == "/ui/admin" && name == "frop" {
                assert_eq!(r.status, 200);
            } else {
                assert!(
                    matches!(r.status, 403 | 404),
                    "{name} {method} {path}: {}",
                    r.status
                );
            }
            assert!(
                secrets.iter().all(|x| !body.contains(x)),
                "{name} {method} {path} leaked: {body}"
            );
        }
    }
    // Nothing changed: the gb analyst is enabled, gb's cap intact, no intruder, no vote.
    let desk = w.store.review_desk();
    assert!(!desk.user(user).await.unwrap().unwrap().disabled);
    assert!(!desk.user(user).await.unwrap().unwrap().totp_enrol_required);
    assert_eq!(desk.hotline(gb).await.unwrap().unwrap().daily_cap, 100);
    assert!(desk.user_by_name("intruder").await.unwrap().is_none());
    assert!(desk.votes_on(item).await.unwrap().is_empty());

    // A user of the same hotline who was not served the item cannot open it either.
    w.actor(w.gb, "gbana2", UserRole::Analyst).await;
    let other = login(&w, "gbana2").await;
    assert_eq!(
        call(addr, "GET", &format!("/ui/items/{item}"), Some(&other), "")
            .await
            .status,
        404
    );

    // The gb auditor reads gb's trail only.
    let aud = login(&w, "gbaud").await;
    let trail = call(addr, "GET", "/ui/audit", Some(&aud), "").await;
    assert_eq!(trail.status, 200);
    assert!(trail.text().contains("gbana") && !trail.text().contains("frana"));

    // CSRF: a wrong token or a cross-site origin is refused, with the right cookie.
    let s = login(&w, "gbana").await;
    let cookie = format!("aranea_session={}", s.token);
    for (headers, body) in [
        (vec![("Cookie", cookie.as_str())], "csrf=wrong".to_string()),
        (vec![("Cookie", cookie.as_str())], String::new()),
        (
            vec![
                ("Cookie", cookie.as_str()),
                ("Origin", "http://evil.example"),
            ],
            format!("csrf={}", s.csrf_token),
        ),
        (
            vec![
                ("Cookie", cookie.as_str()),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            format!("csrf={}", s.csrf_token),
        ),
    ] {
        let r = request(
            addr,
            "POST",
            &format!("/ui/items/{item}/vote"),
            &headers,
            format!("{body}&{classification}").as_bytes(),
        )
        .await;
        assert_eq!(r.status, 403);
    }
    assert!(desk.votes_on(item).await.unwrap().is_empty());
    // And the right token from the same origin works.
    let r = call(
        addr,
        "POST",
        &format!("/ui/items/{item}/vote"),
        Some(&s),
        classification,
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(desk.votes_on(item).await.unwrap().len(), 1);
    // The original is refused until revealed, then served.
    let original = format!("/ui/items/{item}/media/{sha}/original");
    assert_eq!(call(addr, "GET", &original, Some(&s), "").await.status, 403);
    // The TOTP forms need the token too: a forged one starts no enrolment.
    let r = request(
        addr,
        "POST",
        "/ui/account/totp/begin",
        &[("Cookie", cookie.as_str())],
        b"csrf=wrong",
    )
    .await;
    assert_eq!(r.status, 403);
    let me = desk.user(user).await.unwrap().unwrap();
    assert_eq!((me.totp_pending, me.totp_secret), (None, None));
    // Every page carries the safety headers; scripts only from the server's own files.
    let page = call(addr, "GET", "/ui/", Some(&s), "").await;
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let script_src: Vec<&str> = csp
        .split(';')
        .map(str::trim)
        .filter(|d| d.starts_with("script-src"))
        .collect();
    assert_eq!(script_src, ["script-src 'self'"], "{csp}");
    assert_eq!(page.header("cache-control"), Some("no-store"));
    // Without running the script the page already shows the exposure figures, and the
    // script it names is served as JavaScript.
    let html = page.text();
    assert!(
        html.contains("Reviewed today: <strong id=\"served-today\">0</strong>"),
        "{html}"
    );
    assert!(
        html.contains("<strong id=\"stretch-clock\" aria-live=\"off\">0 min</strong>"),
        "{html}"
    );
    assert!(html.contains("<script src=\"/ui/static/exposure.js\" defer></script>"));
    assert!(!html.contains("<script>"), "no inline script");
    let script = call(addr, "GET", "/ui/static/exposure.js", Some(&s), "").await;
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(script.text().contains("stretch-clock"));
}

/// The statistics and notice pages are linked from every UI page for the roles their rule admits
/// (operators, auditors, platform administrators), and for no one else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn navigation_links_statistics_for_the_roles_that_may_see_them() {
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let w = World::new(Backend::Sqlite).await;
        let addr = serve(&w).await;
        let link = "<a href=\"/ui/statistics\">Statistics</a><a href=\"/ui/notices\">Notices</a>";
        for (name, role, sees) in [
            ("ana", UserRole::Analyst, false),
            ("sen", UserRole::SeniorAnalyst, false),
            ("op", UserRole::HotlineOperator, true),
            ("aud", UserRole::Auditor, true),
            ("admin", UserRole::PlatformAdmin, true),
        ] {
            w.actor(w.gb, name, role).await;
            let s = login(&w, name).await;
            let page = call(addr, "GET", "/ui/account", Some(&s), "").await;
            assert_eq!(page.status, 200, "{name}");
            assert_eq!(page.text().contains(link), sees, "{name}: {}", page.text());
        }
    })
    .await
    .expect("timed out");
}

/// An operator resets a user's lost second factor from the administration page: a forged
/// form does nothing, another hotline's operator gets "not found", the real form resets
/// it, and the user's next sign-in leads to enrolment and nowhere else until they enrol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_resets_a_second_factor_over_http() {
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let w = World::new(Backend::Sqlite).await;
        let ana = w.actor(w.gb, "ana", UserRole::Analyst).await;
        w.actor(w.gb, "op", UserRole::HotlineOperator).await;
        w.actor(w.ca, "caop", UserRole::HotlineOperator).await;
        let now = aranea_review::now_millis();
        w.review.begin_totp(&ana, now).await.unwrap();
        let desk = w.store.review_desk();
        let secret = desk
            .user(ana.user.id)
            .await
            .unwrap()
            .unwrap()
            .totp_pending
            .unwrap();
        let code = |at: i64| {
            format!(
                "{:06}",
                aranea_review::totp::code_at(&secret, (at / 1000) as u64)
            )
        };
        // A code of the previous step, so re-enrolling right after can use the current one.
        w.review
            .confirm_totp(&ana, &code(now - 30_000), now)
            .await
            .unwrap();
        let addr = serve(&w).await;
        let reset = format!("/ui/admin/users/{}/totp-reset", ana.user.id);

        let op = login(&w, "op").await;
        let admin_page = call(addr, "GET", "/ui/admin", Some(&op), "").await.text();
        assert!(
            admin_page.contains(&format!("action=\"{reset}\"")),
            "{admin_page}"
        );
        assert!(admin_page.contains("id=\"totp-reset-ana\""));
        let cookie = format!("aranea_session={}", op.token);
        let forged = request(
            addr,
            "POST",
            &reset,
            &[("Cookie", cookie.as_str())],
            b"csrf=wrong",
        )
        .await;
        assert_eq!(forged.status, 403);
        let caop = login(&w, "caop").await;
        assert_eq!(
            call(addr, "POST", &reset, Some(&caop), "").await.status,
            404
        );
        assert!(
            desk.user(ana.user.id)
                .await
                .unwrap()
                .unwrap()
                .totp_secret
                .is_some()
        );

        let done = call(addr, "POST", &reset, Some(&op), "").await;
        assert_eq!(done.status, 303);
        let row = desk.user(ana.user.id).await.unwrap().unwrap();
        assert!(row.totp_secret.is_none() && row.totp_enrol_required);
        let admin_page = call(addr, "GET", "/ui/admin", Some(&op), "").await.text();
        assert!(admin_page.contains("reset: must enrol at next sign-in"));

        // Her sign-in needs only the password and leads to enrolment, and nothing else opens.
        let signed = request(
            addr,
            "POST",
            "/ui/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            format!("username=ana&password={}", PASSWORD.replace(' ', "+")).as_bytes(),
        )
        .await;
        assert_eq!(signed.status, 303);
        assert_eq!(signed.header("location"), Some("/ui/account"));
        let token = signed
            .header("set-cookie")
            .and_then(|c| c.strip_prefix("aranea_session="))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_string();
        let (enrolling, csrf) = w.review.enrolment_session(&token, "", now).await.unwrap();
        let s = Login {
            token,
            csrf_token: csrf,
            actor: enrolling,
        };
        for path in ["/ui/", "/ui/history", "/ui/items/1"] {
            let r = call(addr, "GET", path, Some(&s), "").await;
            assert_eq!(r.status, 303, "{path}");
            assert_eq!(r.header("location"), Some("/ui/account"), "{path}");
        }
        assert_eq!(
            call(addr, "POST", "/ui/next", Some(&s), "")
                .await
                .header("location"),
            Some("/ui/account")
        );
        let account = call(addr, "GET", "/ui/account", Some(&s), "").await;
        assert_eq!(account.status, 200);
        assert!(account.text().contains("id=\"totp-required\""));
        assert_eq!(
            call(addr, "POST", "/ui/account/totp/begin", Some(&s), "")
                .await
                .status,
            303
        );
        let fresh = desk
            .user(ana.user.id)
            .await
            .unwrap()
            .unwrap()
            .totp_pending
            .unwrap();
        let fresh_code = format!(
            "{:06}",
            aranea_review::totp::code_at(&fresh, (aranea_review::now_millis() / 1000) as u64)
        );
        let confirmed = call(
            addr,
            "POST",
            "/ui/account/totp/confirm",
            Some(&s),
            &format!("code={fresh_code}"),
        )
        .await;
        assert_eq!(
            confirmed.header("location"),
            Some("/ui/account?done=enabled")
        );
        assert_eq!(call(addr, "GET", "/ui/", Some(&s), "").await.status, 200);
    })
    .await
    .expect("timed out");
}
