//! What the `aranea notices` tests share: a match recorded as the crawler records one, and a
//! `[notice]` section that reaches the simulated world's providers.

use aranea_simweb::{ItemStatus, RunningWorld};
use aranea_store::{BankMatch, NewSighting, NewUrl, Priority, Store, UrlSource};

/// When the recorded match was seen (1 Jan 2026).
pub const SEEN_AT: i64 = 1_767_225_600_000;

/// Records one known photo of the world on the ignoring provider's forum (`oak-forum.sim`),
/// fetched through the simulated DNS, hashed, sighted and matched as the crawler would;
/// returns the photo's URL.
pub async fn record_a_match(world: &RunningWorld, db: &str) -> String {
    let store = Store::open(db).await.unwrap();
    let image = world
        .images_at(world.sim_now())
        .into_iter()
        .find(|i| i.known && i.status == ItemStatus::Live && i.host == "oak-forum.sim")
        .unwrap();
    let url = url::Url::parse(&image.url).unwrap();
    let host = url.host_str().unwrap().to_owned();
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
    assert!(fetched.is_success(), "{url}");
    let hashes = aranea_hash::hash_media(&fetched.body, &aranea_hash::Limits::default()).unwrap();
    store
        .media()
        .record(&aranea_crawl::pipeline::media_record(&hashes), SEEN_AT)
        .await
        .unwrap();
    let new_url = NewUrl::new(
        &image.url,
        &host,
        &host,
        UrlSource::Link,
        Priority::Ordinary,
        SEEN_AT,
    );
    let queued = store
        .frontier()
        .enqueue_urls(&[new_url], SEEN_AT)
        .await
        .unwrap();
    let sighting = store
        .media()
        .record_sighting(&NewSighting {
            media_sha256: hashes.sha256,
            url: queued[0].id,
            page: None,
            member_path: None,
            seen_at: SEEN_AT,
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
        .record_matches(sighting, &[hit], SEEN_AT)
        .await
        .unwrap();
    store.close().await;
    image.url
}

/// A `[notice]` section reaching the world's providers (DNS, iptoasn, RDAP, SMTP sink), with
/// `link_secret` set when given (otherwise the database's key signs the respond links).
pub fn notice_section(world: &RunningWorld, link_secret: Option<&str>) -> String {
    let secret = link_secret
        .map(|s| format!("link_secret = {s:?}\n"))
        .unwrap_or_default();
    format!(
        "[notice]\nip_to_asn_path = {:?}\nrdap_base_urls = [{:?}]\n\
         allow_cidrs = [\"127.10.0.0/16\", \"127.0.53.0/24\"]\nname_servers = [\"{}\"]\n\
         {secret}[notice.smtp]\nhost = \"{}\"\nport = {}\ntls = \"none\"\n",
        world.ip_to_asn_path().display().to_string(),
        world.rdap_base_url(),
        world.dns_addr(),
        world.smtp_addr().ip(),
        world.smtp_addr().port()
    )
}
