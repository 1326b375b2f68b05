//! The ground truth, for tests: which URL serves which photo (known or not, how transformed)
//! at a given simulated time, every notice received, every removal and site move, and the
//! request log per host.
//!
//! Read-only views over the running world. Must not change any state.

use std::time::Duration;

use serde::Serialize;

use crate::RunningWorld;
use crate::state::{ItemStatus, ReceivedNotice, RemovalKind, RequestRecord};
use crate::world::{MediaItem, Transform};

/// One image URL and what it serves at a time.
#[derive(Debug, Clone, Serialize)]
pub struct ServedImage {
    pub url: String,
    pub host: String,
    pub path: String,
    /// The corpus file it is a copy of.
    pub source_file: String,
    pub transform: Transform,
    pub known: bool,
    pub status: ItemStatus,
    /// Name of the provider hosting the origin at that time.
    pub origin_provider: String,
    /// Name of the CDN in front, if any.
    pub cdn: Option<String>,
    /// For re-uploads: the URL it is a copy of.
    pub reupload_of: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RemovalRecord {
    pub url: String,
    pub provider: String,
    pub at: Duration,
    pub kind: RemovalKind,
    pub notice: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteMoveRecord {
    pub host: String,
    pub at: Duration,
    pub from_provider: String,
    pub to_provider: String,
    pub new_ip: std::net::Ipv4Addr,
}

impl RunningWorld {
    fn item_url(&self, item: &MediaItem) -> String {
        let host = self
            .shared
            .world
            .sites
            .get(item.site)
            .map_or("", |s| s.host.as_str());
        self.url(host, &item.path)
    }

    fn served(&self, item: &MediaItem, at: Duration, reupload_of: Option<String>) -> ServedImage {
        let shared = &self.shared;
        let world = &shared.world;
        let site = world.sites.get(item.site);
        let (status, origin) = match shared.state.lock() {
            Ok(state) => (
                state.status(world, item.id, at),
                state.site_origin(world, item.site, at),
            ),
            Err(_) => (ItemStatus::Live, None),
        };
        let name = |id: usize| {
            world
                .providers
                .get(id)
                .map(|p| p.name.clone())
                .unwrap_or_default()
        };
        ServedImage {
            url: self.item_url(item),
            host: site.map(|s| s.host.clone()).unwrap_or_default(),
            path: item.path.clone(),
            source_file: world.corpus.file_name(item.source).to_owned(),
            transform: item.transform,
            known: item.known,
            status,
            origin_provider: origin.map(|(p, _)| name(p)).unwrap_or_default(),
            cdn: site.and_then(|s| s.cdn.as_ref()).map(|c| name(c.provider)),
            reupload_of,
        }
    }

    /// Every image URL of the world (generated and re-uploaded) and its status at `at`.
    pub fn images_at(&self, at: Duration) -> Vec<ServedImage> {
        let world = &self.shared.world;
        let reuploads: Vec<_> = self
            .shared
            .state
            .lock()
            .map(|s| s.reuploads.clone())
            .unwrap_or_default();
        let mut out: Vec<ServedImage> = world
            .items
            .iter()
            .map(|i| self.served(i, at, None))
            .collect();
        for r in &reuploads {
            let original = world.items.get(r.copy_of).map(|i| self.item_url(i));
            out.push(self.served(&r.item, at, original));
        }
        out
    }

    /// What a URL serves at `at`, if it is an image URL of the world.
    pub fn image_at(&self, url: &str, at: Duration) -> Option<ServedImage> {
        let (host, path) = crate::behaviour::split_url(url)?;
        let world = &self.shared.world;
        let site = world.site_by_host(&host)?;
        let (item, copy_of) = {
            let state = self.shared.state.lock().ok()?;
            let item = state.item_at(world, site.id, &path)?.clone();
            let copy_of = state
                .reuploads
                .iter()
                .find(|r| r.item.id == item.id)
                .map(|r| r.copy_of);
            (item, copy_of)
        };
        let original = copy_of
            .and_then(|id| world.items.get(id))
            .map(|i| self.item_url(i));
        Some(self.served(&item, at, original))
    }

    /// PDQ distance from what a URL serves (at time zero, before any notice) to the nearest
    /// hash in the bank, computed on demand. Re-encoded, resized and converted copies stay
    /// within 31 bits; crops, watermarks and thumbnails may not, as in the real world.
    pub fn pdq_distance_to_bank(&self, url: &str) -> Option<u32> {
        let (host, path) = crate::behaviour::split_url(url)?;
        let shared = &self.shared;
        let site = shared.world.site_by_host(&host)?;
        let item = shared
            .state
            .lock()
            .ok()?
            .item_at(&shared.world, site.id, &path)?
            .clone();
        let rendered = shared
            .media
            .render(&shared.world.corpus, item.source, item.transform)
            .ok()?;
        let hashes =
            aranea_hash::hash_media(&rendered.bytes, &aranea_hash::Limits::default()).ok()?;
        let pdq = hashes.pdq?.hash;
        let bank = std::fs::read_to_string(self.bank_path()).ok()?;
        bank.lines()
            .filter_map(|l| l.strip_prefix("pdq,"))
            .filter_map(|h| aranea_hash::PdqHash::from_hex(h).ok())
            .map(|k| k.hamming_distance(&pdq))
            .min()
    }

    /// URLs serving a known photo (or a transformed copy) at `at`.
    pub fn known_urls_at(&self, at: Duration) -> Vec<String> {
        self.images_at(at)
            .into_iter()
            .filter(|i| i.known && i.status == ItemStatus::Live)
            .map(|i| i.url)
            .collect()
    }

    /// Every notice received so far, by SMTP or webhook, in arrival order.
    pub fn notices(&self) -> Vec<ReceivedNotice> {
        self.shared
            .state
            .lock()
            .map(|s| s.notices.clone())
            .unwrap_or_default()
    }

    /// Every removal scheduled so far (some may lie in the simulated future).
    pub fn removals(&self) -> Vec<RemovalRecord> {
        let world = &self.shared.world;
        let Ok(state) = self.shared.state.lock() else {
            return Vec::new();
        };
        state
            .removals
            .values()
            .filter_map(|r| {
                let item = state.item(world, r.item)?;
                Some(RemovalRecord {
                    url: self.item_url(item),
                    provider: world.providers.get(r.provider)?.name.clone(),
                    at: r.at,
                    kind: r.kind,
                    notice: r.notice,
                })
            })
            .collect()
    }

    /// Every site move scheduled so far.
    pub fn site_moves(&self) -> Vec<SiteMoveRecord> {
        let world = &self.shared.world;
        let Ok(state) = self.shared.state.lock() else {
            return Vec::new();
        };
        state
            .moves
            .values()
            .filter_map(|m| {
                let site = world.sites.get(m.site)?;
                Some(SiteMoveRecord {
                    host: site.host.clone(),
                    at: m.at,
                    from_provider: world.providers.get(site.provider)?.name.clone(),
                    to_provider: world.providers.get(m.to_provider)?.name.clone(),
                    new_ip: m.ip,
                })
            })
            .collect()
    }

    /// Requests received with this Host header (without port), in arrival order.
    pub fn requests_for(&self, host: &str) -> Vec<RequestRecord> {
        let host = host.to_ascii_lowercase();
        self.shared
            .state
            .lock()
            .map(|s| {
                s.requests
                    .iter()
                    .filter(|r| r.host == host)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every request received by the web hosts.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared
            .state
            .lock()
            .map(|s| s.requests.clone())
            .unwrap_or_default()
    }
}
