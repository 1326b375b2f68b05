//! `aranea notices`: one worker pass against the simulated internet sends a notice for a
//! recorded match; `list --format json|jsonl`, `show --format xarf|json`, `resend` and
//! `stats --format csv` read it back.

use std::process::Command;

use aranea_simweb::{ItemStatus, SimWeb, scenario};
use aranea_store::{BankMatch, NewSighting, NewUrl, Priority, Store, UrlSource};

fn aranea(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aranea"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_pass_sends_and_the_commands_show_it_as_sent() {
    let world = SimWeb::start_with(scenario::load("small").unwrap(), 4).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("aranea.db").display());
    let store = Store::open(&db).await.unwrap();

    // One known image on the ignoring provider's forum, recorded as the crawler would.
    let image = world
        .images_at(world.sim_now())
        .into_iter()
        .find(|i| i.known && i.status == ItemStatus::Live && i.host == "oak-forum.sim")
        .unwrap();
    let now = 1_767_225_600_000;
    let url = url::Url::parse(&image.url).unwrap();
    let host = url.host_str().unwrap().to_owned();
    let bytes = {
        let path = url.path().to_owned();
        // Fetched like the crawler does, through the simulated DNS.
        let config = aranea_crawl::fetch::FetchConfig {
            guard: aranea_crawl::ssrf::GuardConfig {
                allow_cidrs: vec!["127.10.0.0/16".parse().unwrap()],
                name_servers: aranea_crawl::ssrf::NameServers::Servers(vec![world.dns_addr()]),
                ..Default::default()
            },
            ..Default::default()
        };
        let fetcher = aranea_crawl::fetch::Fetcher::new(config).unwrap();
        let fetched = fetcher.fetch(&url).await.outcome.unwrap();
        assert!(fetched.is_success(), "{path}");
        fetched.body
    };
    let hashes = aranea_hash::hash_media(&bytes, &aranea_hash::Limits::default()).unwrap();
    store
        .media()
        .record(&aranea_crawl::pipeline::media_record(&hashes), now)
        .await
        .unwrap();
    let queued = store
        .frontier()
        .enqueue_urls(
            &[NewUrl::new(
                &image.url,
                &host,
                &host,
                UrlSource::Link,
                Priority::Ordinary,
                now,
            )],
            now,
        )
        .await
        .unwrap();
    let sighting = store
        .media()
        .record_sighting(&NewSighting {
            media_sha256: hashes.sha256,
            url: queued[0].id,
            page: None,
            member_path: None,
            seen_at: now,
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
        classification: "A1".into(),
    };
    store
        .media()
        .record_matches(sighting, &[hit], now)
        .await
        .unwrap();
    store.close().await;

    let config = dir.path().join("aranea.toml");
    std::fs::write(
        &config,
        format!(
            "[notice]\nip_to_asn_path = {:?}\nrdap_base_urls = [{:?}]\n\
             allow_cidrs = [\"127.10.0.0/16\", \"127.0.53.0/24\"]\nname_servers = [\"{}\"]\n\
             link_secret = \"s\"\n[notice.smtp]\nhost = \"{}\"\nport = {}\ntls = \"none\"\n",
            world.ip_to_asn_path().display().to_string(),
            world.rdap_base_url(),
            world.dns_addr(),
            world.smtp_addr().ip(),
            world.smtp_addr().port()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let (ok, _, err) = aranea(&["--db", &db, "--config", &config, "notices", "run", "--once"]);
    assert!(ok, "{err}");
    assert!(err.contains("1 sent"), "{err}");
    assert_eq!(world.notices().len(), 1);

    let (ok, out, err) = aranea(&["--db", &db, "notices", "list", "--format", "json"]);
    assert!(ok, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["state"], "sent");
    assert_eq!(list[0]["recipient"], "abuse@slowpoke-hosting.sim");
    let id = list[0]["id"].as_i64().unwrap().to_string();
    let (ok, out, _) = aranea(&["--db", &db, "notices", "list", "--format", "jsonl"]);
    assert!(ok && out.lines().count() == 1);

    let (ok, xarf, _) = aranea(&["--db", &db, "notices", "show", &id, "--format", "xarf"]);
    assert!(ok);
    let reports: serde_json::Value = serde_json::from_str(&xarf).unwrap();
    assert_eq!(reports[0]["url"], image.url.as_str());
    assert_eq!(reports[0]["type"], "csam");
    let received = &world.notices()[0].raw;
    assert!(
        received.contains(reports[0]["report_id"].as_str().unwrap())
            || received.contains("xarf-reports.json")
    );

    let (ok, shown, _) = aranea(&["--db", &db, "notices", "show", &id, "--format", "json"]);
    assert!(ok);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["items"][0]["url"], image.url.as_str());
    assert!(
        shown["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "sent")
    );

    let (ok, out, _) = aranea(&["--db", &db, "notices", "resend", &id]);
    assert!(ok && out.contains("resend"));
    // Two notices now: one per page, newest first; the cursor leads to the older one.
    let page = |cursor: Option<&str>| {
        let mut args = vec![
            "--db", &db, "notices", "list", "--limit", "1", "--format", "jsonl",
        ];
        if let Some(cursor) = cursor {
            args.extend(["--cursor", cursor]);
        }
        let (ok, out, err) = aranea(&args);
        assert!(ok, "{err}");
        let ids: Vec<i64> = out
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        let next = err
            .lines()
            .find_map(|l| l.strip_prefix("more: --cursor "))
            .map(str::to_owned);
        (ids, next)
    };
    let (newest, next) = page(None);
    let (older, last) = page(next.as_deref());
    assert_eq!(older, [id.parse::<i64>().unwrap()]);
    assert!(newest[0] > older[0]);
    assert_eq!(page(last.as_deref()), (vec![], None));
    let (ok, csv, _) = aranea(&["--db", &db, "notices", "stats", "--format", "csv"]);
    assert!(ok);
    assert!(csv.starts_with("dimension,key,items"));
    assert!(csv.contains("provider,Slowpoke Hosting,1,1,0"), "{csv}");

    let (ok, _, err) = aranea(&["--db", &db, "notices", "show", "999999"]);
    assert!(!ok && err.contains("no notice"));
}
