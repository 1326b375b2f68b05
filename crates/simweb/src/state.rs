//! What changes while the world runs: removals, re-uploads, site moves, received notices and
//! the request log. Every change carries its simulated time, so "what was served at time t"
//! is answered by comparing times, without timers.
//!
//! Must not hold anything that `world` can derive from (scenario, seed).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

use crate::world::{ItemId, MediaItem, ProviderId, SiteId, World};

/// Request log entries kept at most (oldest kept; later ones counted only).
const MAX_REQUESTS: usize = 2_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalKind {
    /// The URL answers 404.
    Gone,
    /// The URL answers 200 with a placeholder image.
    Placeholder,
}

#[derive(Debug, Clone, Serialize)]
pub struct Removal {
    pub item: ItemId,
    pub provider: ProviderId,
    /// Simulated time of the removal, since world start.
    pub at: Duration,
    pub kind: RemovalKind,
    /// Index of the notice that caused it.
    pub notice: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reupload {
    pub item: MediaItem,
    /// The item this is a copy of.
    pub copy_of: ItemId,
    /// Page (path) of `item.site` that links it once it is up.
    pub page: String,
    pub appears_at: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteMove {
    pub site: SiteId,
    pub at: Duration,
    pub to_provider: ProviderId,
    pub ip: Ipv4Addr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Smtp,
    Webhook,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReceivedNotice {
    pub index: usize,
    pub channel: Channel,
    /// The provider whose mailbox or webhook received it.
    pub provider: ProviderId,
    /// SMTP envelope sender (empty for webhooks).
    pub from: String,
    /// SMTP envelope recipients, or the webhook path.
    pub to: Vec<String>,
    /// The message as received (after dot-unstuffing) or the webhook body.
    pub raw: String,
    /// Every http(s) URL found in it.
    pub urls: Vec<String>,
    pub received_at: Duration,
    /// What the provider decided, in words (for test failure messages and the demo).
    pub outcome: Vec<String>,
    /// The sender's idempotency key: the `Message-ID` header of an email, the
    /// `Idempotency-Key` header of a webhook POST.
    pub key: Option<String>,
    /// The earlier notice to the same provider with the same key, when this is a resend: the
    /// provider's mailbox (like a deduplicating MTA or webhook receiver) keeps it on record
    /// but does not act on it again.
    pub duplicate_of: Option<usize>,
    /// Whether it arrived over TLS (implicit TLS, STARTTLS or HTTPS).
    pub tls: bool,
    /// The SMTP AUTH user the sender logged in as, if it did.
    pub authenticated: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    /// The Host header as sent (lowercased, without port).
    pub host: String,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub method: String,
    pub target: String,
    pub status: u16,
    pub unix_millis: u64,
    pub sim_at: Duration,
}

/// Whether a URL serves its image at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// A re-upload that is not up yet.
    NotYetUp,
    Live,
    Gone,
    Placeholder,
}

#[derive(Debug, Default)]
pub struct State {
    pub removals: BTreeMap<ItemId, Removal>,
    pub reuploads: Vec<Reupload>,
    reupload_paths: BTreeMap<(SiteId, String), usize>,
    pub moves: BTreeMap<SiteId, SiteMove>,
    pub notices: Vec<ReceivedNotice>,
    pub requests: Vec<RequestRecord>,
    pub requests_dropped: u64,
    rate: BTreeMap<Ipv4Addr, (u64, u32)>,
}

impl State {
    pub fn item<'a>(&'a self, world: &'a World, id: ItemId) -> Option<&'a MediaItem> {
        match id.checked_sub(world.items.len()) {
            None => world.items.get(id),
            Some(extra) => self.reuploads.get(extra).map(|r| &r.item),
        }
    }

    /// The item at a path of a site, generated or re-uploaded.
    pub fn item_at<'a>(
        &'a self,
        world: &'a World,
        site: SiteId,
        path: &str,
    ) -> Option<&'a MediaItem> {
        world.item_at(site, path).or_else(|| {
            let index = *self.reupload_paths.get(&(site, path.to_owned()))?;
            self.reuploads.get(index).map(|r| &r.item)
        })
    }

    pub fn status(&self, world: &World, id: ItemId, at: Duration) -> ItemStatus {
        if let Some(extra) = id.checked_sub(world.items.len()) {
            match self.reuploads.get(extra) {
                Some(r) if r.appears_at > at => return ItemStatus::NotYetUp,
                Some(_) => {}
                None => return ItemStatus::Gone,
            }
        }
        match self.removals.get(&id) {
            Some(r) if r.at <= at => match r.kind {
                RemovalKind::Gone => ItemStatus::Gone,
                RemovalKind::Placeholder => ItemStatus::Placeholder,
            },
            _ => ItemStatus::Live,
        }
    }

    /// Where a site's origin is at a time: (provider, address).
    pub fn site_origin(
        &self,
        world: &World,
        site: SiteId,
        at: Duration,
    ) -> Option<(ProviderId, Ipv4Addr)> {
        let s = world.sites.get(site)?;
        match self.moves.get(&site) {
            Some(m) if m.at <= at => Some((m.to_provider, m.ip)),
            _ => Some((s.provider, s.ip)),
        }
    }

    /// The address DNS gives for a site at a time (the CDN edge if fronted).
    pub fn site_address(&self, world: &World, site: SiteId, at: Duration) -> Option<Ipv4Addr> {
        let s = world.sites.get(site)?;
        match &s.cdn {
            Some(cdn) => Some(cdn.ip),
            None => self.site_origin(world, site, at).map(|(_, ip)| ip),
        }
    }

    /// Re-uploaded items linked from a page and up at `at`.
    pub fn reuploads_on(&self, site: SiteId, page: &str, at: Duration) -> Vec<&MediaItem> {
        self.reuploads
            .iter()
            .filter(|r| r.item.site == site && r.page == page && r.appears_at <= at)
            .map(|r| &r.item)
            .collect()
    }

    pub fn add_reupload(&mut self, reupload: Reupload) {
        let index = self.reuploads.len();
        self.reupload_paths
            .insert((reupload.item.site, reupload.item.path.clone()), index);
        self.reuploads.push(reupload);
    }

    /// Records a removal unless an earlier one is already scheduled.
    pub fn remove(&mut self, removal: Removal) {
        match self.removals.get(&removal.item) {
            Some(existing) if existing.at <= removal.at => {}
            _ => {
                self.removals.insert(removal.item, removal);
            }
        }
    }

    pub fn log(&mut self, record: RequestRecord) {
        if self.requests.len() < MAX_REQUESTS {
            self.requests.push(record);
        } else {
            self.requests_dropped += 1;
        }
    }

    /// Counts a request against a per-address, per-real-second budget; false when over.
    pub fn admit(&mut self, ip: Ipv4Addr, per_second: u32, now_second: u64) -> bool {
        if per_second == 0 {
            return true;
        }
        let entry = self.rate.entry(ip).or_insert((now_second, 0));
        if entry.0 != now_second {
            *entry = (now_second, 0);
        }
        entry.1 += 1;
        entry.1 <= per_second
    }
}
