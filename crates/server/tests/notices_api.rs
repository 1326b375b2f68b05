//! `/api/v1/notices` over a real socket: notice rows written through the store (as the notice
//! room writes them) read back as the OpenAPI document says, with filters, limits, scopes and
//! hostile ids answered by clear 4xx.

mod common;

use aranea_server::ServerConfig;
use aranea_store::{CheckRecord, NewItem, NewNotice, NoticeId, Store};
use common::{documented, get};
use serde_json::Value;

const NOW: i64 = 1_750_000_000_000;

fn item(url: &str, provider: &str) -> NewItem {
    common::notice_item(url, provider, "nl", NOW)
}

fn notice(key: &str, provider: &str) -> NewNotice {
    common::new_notice(key, provider, "nl")
}

/// Three notices: `sent` (one item, re-checked once) and `queued` for asn:64501, and one
/// for asn:64502. Returns the sent notice's id.
async fn seed(store: &Store) -> NoticeId {
    let n = store.notices();
    let mut ids = Vec::new();
    for (key, url, provider) in [
        ("k1", "http://x.example/1", "asn:64501"),
        ("k2", "http://x.example/2", "asn:64501"),
        ("k3", "http://y.example/3", "asn:64502"),
    ] {
        let item = n
            .open_item(&item(url, provider), NOW)
            .await
            .unwrap()
            .unwrap();
        let (id, _) = n
            .create_notice(&notice(key, provider), &[item], NOW)
            .await
            .unwrap();
        ids.push((id, item));
    }
    let claimed = n
        .claim_notice("w1", NOW, NOW + 1000)
        .await
        .unwrap()
        .unwrap();
    let sent = NoticeId(claimed.id);
    assert!(n.mark_committing(sent, "w1").await.unwrap());
    assert!(
        n.mark_sent(sent, "w1", NOW + 5, "250 OK", 60_000)
            .await
            .unwrap()
    );
    let (_, item) = ids.iter().find(|(id, _)| *id == sent).unwrap();
    let check = CheckRecord {
        at: NOW + 60_000,
        outcome: "present".into(),
        http_status: Some(200),
        detail: "still there".into(),
        next_check_at: Some(NOW + 120_000),
        pending: None,
        removed: None,
    };
    n.record_check(*item, &check).await.unwrap();
    sent
}

fn ids(list: &Value) -> Vec<i64> {
    list["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn notices_read_back_as_documented_and_hostile_ids_get_clear_refusals() {
    let server = common::start("notices", ServerConfig::default());
    let addr = server.addr;
    let sent = server.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(30), seed(&server.store))
            .await
            .expect("seeding timed out")
    });
    let reader = server.client("reader", &["read"], None);
    let reader = Some(reader.as_str());
    let intake = server.client("intake", &["intake"], None);
    let doc = get(addr, "/api/v1/openapi.json", None).json();
    let list = "/api/v1/notices";

    let all = documented(&doc, "get", list, &get(addr, list, reader), 200);
    let all_ids = ids(&all);
    assert_eq!(all_ids.len(), 3);
    assert!(all_ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(
        all["notices"][0].get("body_text").is_none(),
        "summaries only"
    );

    let by_state = get(addr, "/api/v1/notices?state=sent", reader);
    let by_state = documented(&doc, "get", list, &by_state, 200);
    assert_eq!(ids(&by_state), [sent.0]);
    assert_eq!(by_state["notices"][0]["state"], "sent");
    let by_provider = get(addr, "/api/v1/notices?provider=asn:64502", reader);
    let by_provider = documented(&doc, "get", list, &by_provider, 200);
    assert_eq!(by_provider["notices"][0]["subject"], "Notice k3");
    assert_eq!(ids(&by_provider).len(), 1);
    let both = get(
        addr,
        "/api/v1/notices?state=queued&provider=asn:64501",
        reader,
    );
    assert_eq!(ids(&documented(&doc, "get", list, &both, 200)).len(), 1);
    let page = get(addr, "/api/v1/notices?limit=2", reader);
    assert_eq!(
        ids(&documented(&doc, "get", list, &page, 200)),
        all_ids[..2]
    );

    for bad in [
        "?state=bogus",
        "?limit=0",
        "?limit=5000",
        "?limit=-1",
        "?limit=x",
        "?before=3",
        "?provider=",
        "?provider=%00",
    ] {
        let reply = get(addr, &format!("{list}{bad}"), reader);
        let body = documented(&doc, "get", list, &reply, 400);
        assert!(!body["detail"].as_str().unwrap().is_empty(), "{bad}");
    }

    let one = format!("/api/v1/notices/{}", sent.0);
    let shown = documented(
        &doc,
        "get",
        "/api/v1/notices/{id}",
        &get(addr, &one, reader),
        200,
    );
    assert_eq!(shown["notice"]["id"], sent.0);
    assert_eq!(shown["notice"]["state"], "sent");
    assert_eq!(shown["notice"]["body_text"], "text");
    let items = shown["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["checks"][0]["outcome"], "present");
    assert_eq!(items[0]["checks"][0]["http_status"], 200);
    let kinds: Vec<&str> = shown["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[..3], ["opened", "composed", "sent"]);

    let by_id = "/api/v1/notices/{id}";
    for hostile in [
        "abc",
        "-1",
        "0",
        "1.5",
        "99999999999999999999999",
        "%00",
        "1%20",
    ] {
        let reply = get(addr, &format!("/api/v1/notices/{hostile}"), reader);
        let body = documented(&doc, "get", by_id, &reply, 400);
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("positive integer"),
            "{hostile}"
        );
    }
    for unknown in ["9223372036854775807", "424242"] {
        let reply = get(addr, &format!("/api/v1/notices/{unknown}"), reader);
        documented(&doc, "get", by_id, &reply, 404);
    }

    assert_eq!(get(addr, list, None).status, 401);
    assert_eq!(get(addr, &one, Some(intake.as_str())).status, 403);
    assert_eq!(get(addr, list, Some("reader:wrong")).status, 401);
}

/// Records `media` seen at `path` on a page of files.example at `at`, matched against the
/// `known` bank at `distance` when given; returns the sighting id.
async fn sighting(store: &Store, seed: u8, path: &str, at: i64, distance: Option<u32>) -> i64 {
    use aranea_store::{BankMatch, MediaRecord, NewSighting, NewUrl, Priority, UrlSource};
    let url = |p: &str| {
        NewUrl::new(
            &format!("https://files.example{p}"),
            "https://files.example",
            "files.example",
            UrlSource::Link,
            Priority::Ordinary,
            at,
        )
    };
    let done = store
        .frontier()
        .enqueue_urls(&[url(path), url("/gallery.html")], at)
        .await
        .unwrap();
    let media = MediaRecord {
        sha256: [seed; 32],
        md5: [seed; 16],
        sha1: [seed; 20],
        pdq: None,
        pdq_quality: None,
        size: 100,
        kind: "jpeg".into(),
        width: Some(10),
        height: Some(10),
    };
    store.media().record(&media, at).await.unwrap();
    let id = store
        .media()
        .record_sighting(&NewSighting {
            media_sha256: [seed; 32],
            url: done[0].id,
            page: Some(done[1].id),
            member_path: None,
            seen_at: at,
            server_ip: Some("127.10.1.5".into()),
        })
        .await
        .unwrap();
    if let Some(distance) = distance {
        let hit = BankMatch {
            bank_id: 1,
            bank_name: "known".into(),
            entry_id: i64::from(seed),
            signal_type: "pdq".into(),
            distance,
            classification: "csam".into(),
        };
        store.media().record_matches(id, &[hit], at).await.unwrap();
    }
    id.get()
}

#[test]
fn matches_and_sightings_list_recorded_rows_newest_first_in_pages() {
    let server = common::start("lists-api", ServerConfig::default());
    let reader = server.client("reader", &["read"], None);
    let reader = Some(reader.as_str());
    let addr = server.addr;
    let store = server.store.clone();
    let sightings = server.block_on(async {
        vec![
            sighting(&store, 1, "/a.jpg", NOW, Some(3)).await,
            sighting(&store, 2, "/b.jpg", NOW + 1, None).await,
            sighting(&store, 3, "/c.jpg", NOW + 2, Some(0)).await,
        ]
    });
    let doc = get(addr, "/api/v1/openapi.json", None).json();

    let listed = get(addr, "/api/v1/matches", reader);
    let listed = documented(&doc, "get", "/api/v1/matches", &listed, 200);
    let matches = listed["matches"].as_array().unwrap();
    let seen: Vec<i64> = matches
        .iter()
        .map(|m| m["sighting_id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seen,
        [sightings[2], sightings[0]],
        "newest first, unmatched left out"
    );
    assert_eq!(matches[0]["media_sha256"], "03".repeat(32));
    assert_eq!(matches[0]["url"], "https://files.example/c.jpg");
    assert_eq!(matches[0]["page_url"], "https://files.example/gallery.html");
    assert_eq!(matches[0]["bank"], "known");
    assert_eq!(matches[0]["classification"], "csam");
    assert_eq!(matches[0]["matched_at"], NOW + 2);
    assert_eq!(matches[1]["distance"], 3);
    let first = get(addr, "/api/v1/matches?limit=1", reader).json();
    assert_eq!(first["matches"].as_array().unwrap().len(), 1);
    let newest = first["matches"][0]["id"].as_i64().unwrap();
    let next = get(
        addr,
        &format!("/api/v1/matches?limit=1&before={newest}"),
        reader,
    )
    .json();
    assert_eq!(next["matches"][0]["sighting_id"], sightings[0]);

    let listed = get(addr, "/api/v1/sightings", reader);
    let listed = documented(&doc, "get", "/api/v1/sightings", &listed, 200);
    let rows = listed["sightings"].as_array().unwrap();
    let ids: Vec<i64> = rows.iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [sightings[2], sightings[1], sightings[0]]);
    assert_eq!(rows[1]["media_sha256"], "02".repeat(32));
    assert_eq!(rows[1]["server_ip"], "127.10.1.5");
    assert_eq!(rows[1]["first_seen_at"], NOW + 1);
    let page = get(
        addr,
        &format!("/api/v1/sightings?limit=2&before={}", sightings[2]),
        reader,
    )
    .json();
    let ids: Vec<i64> = page["sightings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [sightings[1], sightings[0]]);

    for bad in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "before=soon",
        "order=asc",
    ] {
        for list in ["matches", "sightings"] {
            let reply = get(addr, &format!("/api/v1/{list}?{bad}"), reader);
            assert_eq!(reply.status, 400, "{list}?{bad}");
            assert!(reply.json()["detail"].is_string());
        }
    }
}

#[test]
fn notices_page_by_cursor_and_hostile_cursors_get_clear_refusals() {
    let server = common::start("notices-cursor", ServerConfig::default());
    let addr = server.addr;
    server.block_on(async {
        let n = server.store.notices();
        for k in 0..5 {
            let provider = if k % 2 == 0 { "asn:64501" } else { "asn:64502" };
            let url = format!("http://x.example/page-{k}");
            let item = n
                .open_item(&item(&url, provider), NOW)
                .await
                .unwrap()
                .unwrap();
            n.create_notice(&notice(&format!("p{k}"), provider), &[item], NOW)
                .await
                .unwrap();
        }
    });
    let reader = server.client("reader", &["read"], None);
    let reader = Some(reader.as_str());
    let doc = get(addr, "/api/v1/openapi.json", None).json();
    let list = "/api/v1/notices";
    let all = ids(&documented(
        &doc,
        "get",
        list,
        &get(addr, list, reader),
        200,
    ));
    assert_eq!(all.len(), 5);

    // Following next_cursor visits every notice once, newest first, in pages of two.
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut path = format!("{list}?limit=2");
    loop {
        let page = documented(&doc, "get", list, &get(addr, &path, reader), 200);
        pages.push(ids(&page).len());
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => path = format!("{list}?limit=2&cursor={next}"),
            None => break,
        }
        assert!(pages.len() < 10, "paging does not end");
    }
    assert_eq!(seen, all);
    assert_eq!(pages, [2, 2, 1]);

    // The cursor pages within the filters; an exact last page leads to one empty page.
    let filtered = format!("{list}?provider=asn:64502&limit=1");
    let first = documented(&doc, "get", list, &get(addr, &filtered, reader), 200);
    let next = first["next_cursor"].as_str().unwrap().to_owned();
    let second = get(addr, &format!("{filtered}&cursor={next}"), reader);
    let second = documented(&doc, "get", list, &second, 200);
    assert_eq!(ids(&second).len(), 1);
    assert_eq!(second["notices"][0]["provider_key"], "asn:64502");
    let next = second["next_cursor"].as_str().unwrap().to_owned();
    let last = get(addr, &format!("{filtered}&cursor={next}"), reader);
    let last = documented(&doc, "get", list, &last, 200);
    assert!(ids(&last).is_empty() && last["next_cursor"].is_null());
    let unpaged = documented(&doc, "get", list, &get(addr, list, reader), 200);
    assert!(
        unpaged["next_cursor"].is_null(),
        "a short page has no cursor"
    );
    // The largest cursor is older-than-everything's opposite: the first page again.
    let top = get(addr, &format!("{list}?cursor=9223372036854775807"), reader);
    assert_eq!(ids(&documented(&doc, "get", list, &top, 200)), all);
    // Past i64::MAX, a cursor the document's pattern allows means the same, not a 400.
    let past = get(addr, &format!("{list}?cursor=9999999999999999999"), reader);
    assert_eq!(ids(&documented(&doc, "get", list, &past, 200)), all);

    let long = "1".repeat(5000);
    for hostile in [
        "",
        "abc",
        "-1",
        "0",
        "007",
        "+3",
        "1.5",
        "1e3",
        "0x10",
        "%20",
        "3%20",
        "%00",
        "99999999999999999999",
        "99999999999999999999999",
        &long,
    ] {
        let reply = get(addr, &format!("{list}?cursor={hostile}"), reader);
        let body = documented(&doc, "get", list, &reply, 400);
        assert!(
            body["detail"].as_str().unwrap().contains("next_cursor"),
            "{hostile}: {body}"
        );
    }
    let twice = get(addr, &format!("{list}?cursor=3&cursor=2"), reader);
    documented(&doc, "get", list, &twice, 400);
}

#[test]
fn metrics_count_notices_and_items_by_state_so_failed_deliveries_show() {
    let server = common::start("notices-metrics", ServerConfig::default());
    server.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(30), async {
            seed(&server.store).await;
            // The relay refuses one of the two queued notices for good.
            let n = server.store.notices();
            let claimed = n
                .claim_notice("w1", NOW + 10, NOW + 1000)
                .await
                .unwrap()
                .unwrap();
            let gave_up = n
                .mark_attempt_failed(
                    NoticeId(claimed.id),
                    "w1",
                    NOW + 11,
                    "554 relay refused",
                    None,
                    None,
                    NOW + 3_600_000,
                )
                .await
                .unwrap();
            assert!(gave_up);
        })
        .await
        .expect("seeding timed out")
    });
    let metrics = String::from_utf8(get(server.addr, "/metrics", None).body).unwrap();
    for sample in [
        "# TYPE aranea_notices gauge",
        "aranea_notices{state=\"queued\"} 1",
        "aranea_notices{state=\"sent\"} 1",
        "aranea_notices{state=\"failed\"} 1",
        "aranea_notices{state=\"withdrawn\"} 0",
        "aranea_notice_items{state=\"open\"} 3",
        "aranea_notice_items{state=\"removed\"} 0",
    ] {
        assert!(
            metrics.lines().any(|line| line == sample),
            "no line {sample:?} in:\n{metrics}"
        );
    }
}

/// The page a notice's signed link leads to: a provider acknowledges or disputes the notice
/// without an account; the first answer is recorded and restarts its items' unanswered
/// count; forged, expired and unknown links, bad answers and notes are refused with the
/// reason. Before, no route served the link (`respond_base_url`): every answer was a 404.
#[test]
fn a_provider_answers_a_notice_through_its_signed_link() {
    const KEY: &[u8] = b"respond-test-link-key";
    aranea_server::ui::install_notice_links(aranea_notice::LinkKeys::configured(KEY.to_vec()));
    let server = common::start("notice-respond", ServerConfig::default());
    let addr = server.addr;
    let sent = server.block_on(seed(&server.store));
    let notices = server.store.notices();
    let report = server
        .block_on(notices.notice(sent))
        .unwrap()
        .unwrap()
        .report_id;
    let hour_ahead = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 3_600_000;
    let link = |key: &[u8], reference: &str, expires: i64| {
        let token = aranea_notice::link::sign(key, reference, expires);
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("t", &token)
            .finish();
        (token, format!("/notice/respond?{query}"))
    };
    let answer = |token: &str, answer: &str, note: &str| {
        let form: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("t", token)
            .append_pair("answer", answer)
            .append_pair("note", note)
            .finish();
        common::call(
            addr,
            "POST",
            "/notice/respond",
            None,
            Some("application/x-www-form-urlencoded"),
            form.as_bytes(),
        )
    };
    let text = |reply: &common::Reply| String::from_utf8_lossy(&reply.body).into_owned();

    let (token, page) = link(KEY, &report, hour_ahead);
    let form = get(addr, &page, None);
    assert_eq!(form.status, 200, "{}", text(&form));
    assert!(text(&form).contains(&report) && text(&form).contains("value=\"acknowledged\""));

    // Refused links: forged, expired, malformed, unknown; nothing recorded by any.
    let (_, forged) = link(b"another key", &report, hour_ahead);
    assert_eq!(get(addr, &forged, None).status, 400);
    let (_, expired) = link(KEY, &report, hour_ahead - 7_200_000);
    assert_eq!(get(addr, &expired, None).status, 410);
    assert_eq!(get(addr, "/notice/respond?t=nonsense", None).status, 400);
    assert_eq!(get(addr, "/notice/respond", None).status, 400);
    let (unknown_token, unknown) = link(KEY, "5eed-99", hour_ahead);
    assert_eq!(get(addr, &unknown, None).status, 404);
    assert_eq!(answer(&unknown_token, "acknowledged", "").status, 404);
    // Refused answers.
    assert_eq!(answer(&token, "maybe", "").status, 400);
    assert_eq!(
        answer(&token, "acknowledged", &"x".repeat(1001)).status,
        400
    );
    assert_eq!(answer(&token, "acknowledged", "a\0b").status, 400);
    let (expired_token, _) = link(KEY, &report, hour_ahead - 7_200_000);
    assert_eq!(answer(&expired_token, "acknowledged", "").status, 410);
    let held = server.block_on(notices.notice(sent)).unwrap().unwrap();
    assert_eq!(held.response, None, "nothing recorded by a refused answer");

    let recorded = answer(&token, "acknowledged", "removing it today");
    assert_eq!(recorded.status, 200, "{}", text(&recorded));
    assert!(text(&recorded).contains("was recorded"));
    let held = server.block_on(notices.notice(sent)).unwrap().unwrap();
    assert_eq!(held.response.as_deref(), Some("acknowledged"));
    assert_eq!(held.response_note.as_deref(), Some("removing it today"));
    // Only the first answer counts, and the provider is told so.
    let again = answer(&token, "disputed", "");
    assert_eq!(again.status, 409);
    assert!(text(&again).contains("already answered"));
    let held = server.block_on(notices.notice(sent)).unwrap().unwrap();
    assert_eq!(held.response.as_deref(), Some("acknowledged"));
    assert!(text(&get(addr, &page, None)).contains("already answered"));
}
