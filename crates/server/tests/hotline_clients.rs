//! API clients bound to a hotline, over a real socket: such a client reports only to its
//! hotline and reads only its hotline's reports, notices and removal statistics, while a
//! platform client sees every hotline.

mod common;

use aranea_server::ServerConfig;
use aranea_store::{NewHotline, NoticeId, Store};
use common::{documented, get, post_json};
use serde_json::{Value, json};

fn now_ms() -> i64 {
    aranea_review::now_millis()
}

async fn add_hotline(store: &Store, code: &str) {
    let hotline = NewHotline {
        code: code.into(),
        name: format!("Hotline {code}"),
        country: "NL".into(),
        languages: vec!["en".into()],
        jurisdiction: "NL".into(),
        shares_review_pool: true,
        shares_banks: true,
        daily_cap: 100,
    };
    store
        .review_desk()
        .add_hotline(&hotline, now_ms())
        .await
        .unwrap();
}

/// A notice of `hotline` with one item, sent now.
async fn sent_notice(store: &Store, hotline: &str, n: u8) -> NoticeId {
    let now = now_ms();
    let notices = store.notices();
    let mut item = common::notice_item(
        &format!("http://files.example/{hotline}/{n}.jpg"),
        "asn:64501",
        hotline,
        now,
    );
    item.sha256 = format!("{n:02x}").repeat(32);
    let item = notices.open_item(&item, now).await.unwrap().unwrap();
    let notice = common::new_notice(&format!("k{n}"), "asn:64501", hotline);
    let (id, _) = notices.create_notice(&notice, &[item], now).await.unwrap();
    // The only queued notice, so the claim takes this one.
    let claimed = notices
        .claim_notice("w1", now, now + 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, id.0);
    assert!(notices.mark_committing(id, "w1").await.unwrap());
    assert!(
        notices
            .mark_sent(id, "w1", now + 1, "250 OK", 60_000)
            .await
            .unwrap()
    );
    id
}

fn notice_ids(list: &Value) -> Vec<i64> {
    list["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_i64().unwrap())
        .collect()
}

fn total_sent(statistics: &Value) -> i64 {
    statistics["series"]["notices_sent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_i64().unwrap())
        .sum()
}

#[test]
fn a_hotline_client_acts_for_and_reads_only_its_own_hotline() {
    let server = common::start("hotline-clients", ServerConfig::default());
    let addr = server.addr;
    let (nl_notice, se_notices) = server.block_on(async {
        add_hotline(&server.store, "nl").await;
        add_hotline(&server.store, "se").await;
        let nl = sent_notice(&server.store, "nl", 1).await;
        let se = [
            sent_notice(&server.store, "se", 2).await,
            sent_notice(&server.store, "se", 3).await,
        ];
        (nl, se)
    });
    let scopes = ["intake", "read"];
    let nl_client = server.hotline_client("nl-partner", &scopes, None, Some("nl"));
    let nl_client = Some(nl_client.as_str());
    let platform = server.client("ops", &scopes, None);
    let platform = Some(platform.as_str());
    let doc = get(addr, "/api/v1/openapi.json", None).json();
    let reports = "/api/v1/reports";

    // Reports: its own hotline by default and when named; another hotline is refused.
    let own = post_json(
        addr,
        reports,
        nl_client,
        &json!({"url": "http://a.example/1"}),
    );
    let own = documented(&doc, "post", reports, &own, 201);
    assert_eq!(own["hotline"], "nl");
    let named = post_json(
        addr,
        reports,
        nl_client,
        &json!({"url": "http://a.example/2", "hotline": "nl"}),
    );
    assert_eq!(
        documented(&doc, "post", reports, &named, 201)["hotline"],
        "nl"
    );
    let other = post_json(
        addr,
        reports,
        nl_client,
        &json!({"url": "http://a.example/3", "hotline": "se"}),
    );
    let problem = documented(&doc, "post", reports, &other, 403);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"nl\"") && detail.contains("\"se\""),
        "{detail}"
    );
    let se_report = post_json(
        addr,
        reports,
        platform,
        &json!({"url": "http://a.example/4", "hotline": "se"}),
    );
    let se_report = documented(&doc, "post", reports, &se_report, 201);
    assert_eq!(se_report["hotline"], "se");
    assert_eq!(
        server.block_on(server.store.counts()).unwrap().reports,
        3,
        "the refused report was not recorded"
    );

    let one = "/api/v1/reports/{id}";
    let se_path = format!("/api/v1/reports/{}", se_report["id"]);
    assert_eq!(get(addr, &se_path, nl_client).status, 404);
    let seen = documented(&doc, "get", one, &get(addr, &se_path, platform), 200);
    assert_eq!(seen["hotline"], "se");
    // By its public reference the same: another hotline's report is not found.
    let se_by_reference = format!(
        "/api/v1/reports/{}",
        se_report["reference"].as_str().unwrap()
    );
    assert_eq!(get(addr, &se_by_reference, nl_client).status, 404);
    let seen = documented(
        &doc,
        "get",
        one,
        &get(addr, &se_by_reference, platform),
        200,
    );
    assert_eq!(seen["id"], se_report["id"]);
    let own_path = format!("/api/v1/reports/{}", own["id"]);
    let seen = documented(&doc, "get", one, &get(addr, &own_path, nl_client), 200);
    assert_eq!(seen["url"], "http://a.example/1");

    // Notices: the list and each notice.
    let list = "/api/v1/notices";
    let listed = documented(&doc, "get", list, &get(addr, list, nl_client), 200);
    assert_eq!(notice_ids(&listed), [nl_notice.0]);
    let listed = documented(&doc, "get", list, &get(addr, list, platform), 200);
    let every = [se_notices[1].0, se_notices[0].0, nl_notice.0];
    assert_eq!(notice_ids(&listed), every, "newest first");
    for id in se_notices {
        let path = format!("/api/v1/notices/{}", id.0);
        assert_eq!(get(addr, &path, nl_client).status, 404, "{path}");
        assert_eq!(get(addr, &path, platform).status, 200, "{path}");
    }
    let path = format!("/api/v1/notices/{}", nl_notice.0);
    let shown = documented(
        &doc,
        "get",
        "/api/v1/notices/{id}",
        &get(addr, &path, nl_client),
        200,
    );
    assert_eq!(shown["notice"]["hotline"], "nl");

    // Removal statistics: its hotline's notices only.
    let removals = "/api/v1/statistics/removals";
    let mine = documented(&doc, "get", removals, &get(addr, removals, nl_client), 200);
    let all = documented(&doc, "get", removals, &get(addr, removals, platform), 200);
    assert_eq!((total_sent(&mine), total_sent(&all)), (1, 3));
}

/// Why a client with `scope` bound to `hotline` is not issued (it must not be).
fn refused_client(server: &common::Server, name: &str, scope: &str, hotline: &str) -> String {
    let refused = server.block_on(aranea_server::issue_hotline_client(
        &server.store,
        name,
        &[scope.to_owned()],
        None,
        Some(hotline),
    ));
    refused.unwrap_err().to_string()
}

#[test]
fn a_client_cannot_be_bound_to_an_unknown_hotline() {
    let server = common::start("hotline-clients-unknown", ServerConfig::default());
    let error = refused_client(&server, "ghost", "intake", "zz");
    assert!(error.contains("zz"), "{error}");
    let listed = server.block_on(server.store.api_clients().list()).unwrap();
    assert!(listed.is_empty(), "nothing recorded: {listed:?}");
}

/// The banks are every hotline's: a client bound to one may not be given the `banks` scope,
/// and one that has it (recorded before this rule, or written to the database by hand) is
/// refused every bank change, while a platform client makes the same change.
#[test]
fn a_hotline_client_cannot_change_the_shared_banks() {
    use sha2::Digest;
    let server = common::start("hotline-clients-banks", ServerConfig::default());
    let addr = server.addr;
    server.block_on(add_hotline(&server.store, "nl"));
    let error = refused_client(&server, "nl-banker", "banks", "nl");
    assert!(error.contains("banks scope"), "{error}");

    let secret = "a-secret-of-a-client-recorded-by-hand";
    let bound = aranea_store::NewApiClient {
        name: "nl-legacy".into(),
        secret_sha256: sha2::Sha256::digest(secret.as_bytes()).into(),
        scopes: vec!["banks".into(), "read".into()],
        rate_per_second: None,
        hotline: Some("nl".into()),
    };
    server
        .block_on(server.store.api_clients().add(&bound, now_ms()))
        .unwrap()
        .unwrap();
    server.block_on(server.state.clients().reload()).unwrap();
    let bound = format!("nl-legacy:{secret}");
    let bound = Some(bound.as_str());
    let platform = server.client("ops", &["banks", "read"], None);
    let platform = Some(platform.as_str());
    let doc = get(addr, "/api/v1/openapi.json", None).json();
    let banks = "/api/v1/banks";
    let allow_list = json!({"name": "quiet", "source": "partner", "classification": "allow", "kind": "allow-list"});
    let problem = documented(
        &doc,
        "post",
        banks,
        &post_json(addr, banks, bound, &allow_list),
        403,
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("platform key"),
        "{problem}"
    );
    let listed = documented(&doc, "get", banks, &get(addr, banks, bound), 200);
    assert!(
        !listed.to_string().contains("quiet"),
        "nothing created: {listed}"
    );
    let created = post_json(addr, banks, platform, &allow_list);
    documented(&doc, "post", banks, &created, 201);
    let disable = "/api/v1/banks/quiet/disable";
    let problem = post_json(addr, disable, bound, &json!({}));
    assert_eq!(
        problem.status,
        403,
        "{}",
        String::from_utf8_lossy(&problem.body)
    );
    assert_eq!(post_json(addr, disable, platform, &json!({})).status, 200);
}
