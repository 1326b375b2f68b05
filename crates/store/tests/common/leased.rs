//! What a crawl worker holds in the crawl and embeds contract tests: hosts leased at `NOW`
//! with every URL due on them taken, and the media and sightings a settled page writes.

use std::collections::HashMap;

use aranea_store::{
    BankMatch, Lease, LeasedHost, MediaRecord, NewSighting, SeenMedia, Store, TimedMatch, UrlId,
    UrlRecord,
};

use super::NOW;

/// Hosts leased by one worker, and the URLs taken from them.
pub struct Leased {
    pub hosts: Vec<LeasedHost>,
    pub urls: Vec<UrlRecord>,
    ids: HashMap<String, UrlId>,
}

/// Claims up to `hosts` hosts for worker `w` (lease 60 s) at `NOW` and takes up to ten URLs
/// due on each.
pub async fn lease(store: &Store, hosts: u32) -> Leased {
    let frontier = store.frontier();
    let leased = frontier.claim_hosts("w", hosts, 60_000, NOW).await.unwrap();
    let mut urls = Vec::new();
    for host in &leased {
        urls.extend(frontier.next_urls(&host.lease, 10, NOW).await.unwrap());
    }
    let ids = urls.iter().map(|u| (u.url.clone(), u.id)).collect();
    Leased {
        hosts: leased,
        urls,
        ids,
    }
}

impl Leased {
    /// The lease on `https://{host}`.
    pub fn lease(&self, host: &str) -> &Lease {
        let key = format!("https://{host}");
        &self
            .hosts
            .iter()
            .find(|l| l.host.key == key)
            .unwrap_or_else(|| panic!("{key} is not leased"))
            .lease
    }

    /// The id of `https://{host_and_path}`, taken from a leased host.
    pub fn id(&self, host_and_path: &str) -> UrlId {
        let url = format!("https://{host_and_path}");
        *self
            .ids
            .get(&url)
            .unwrap_or_else(|| panic!("{url} was not taken"))
    }
}

/// A JPEG without PDQ whose digests are `seed` repeated.
pub fn photo(seed: u8) -> MediaRecord {
    MediaRecord {
        sha256: [seed; 32],
        md5: [seed; 16],
        sha1: [seed; 20],
        pdq: None,
        pdq_quality: None,
        size: 10,
        kind: "jpeg".into(),
        width: None,
        height: None,
    }
}

/// [`photo`]`(seed)` fetched at `url` for `page` at `NOW`, with `matches`.
pub fn seen(seed: u8, url: UrlId, page: UrlId, matches: Vec<TimedMatch>) -> SeenMedia {
    SeenMedia {
        media: photo(seed),
        sighting: NewSighting {
            media_sha256: [seed; 32],
            url,
            page: Some(page),
            member_path: None,
            seen_at: NOW,
            server_ip: None,
        },
        matches,
    }
}

/// An MD5 match with entry `entry` of bank 1 (`known`, classification `csam`).
pub fn known(entry: i64) -> TimedMatch {
    TimedMatch {
        hit: BankMatch {
            bank_id: 1,
            bank_name: "known".into(),
            entry_id: entry,
            signal_type: "md5".into(),
            distance: 0,
            classification: "csam".into(),
        },
        frame_ms: None,
    }
}
