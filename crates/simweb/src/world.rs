//! World generation: providers, sites, pages and media items, as a pure function of
//! (scenario, seed).
//!
//! Everything here is immutable once built; what changes over time (removals, moves,
//! re-uploads, notices) lives in `state`. Must not touch the network or read image bytes.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::archive_sites::SiteArchive;
use crate::corpus::Corpus;
use crate::error::SimWebError;
use crate::generate::{generate_providers, generate_site_specs};
use crate::layout::{Layout, draw_transform};
use crate::rng::Rng;
use crate::scenario::{
    Action, Block, ProviderSpec, RobotsVariant, Scenario, Serving, SiteKind, SiteSpec, Trap,
};

pub type ProviderId = usize;
pub type SiteId = usize;
pub type ItemId = usize;

#[derive(Debug, Clone)]
pub struct Provider {
    pub id: ProviderId,
    pub name: String,
    pub slug: String,
    pub country: String,
    pub asn: u32,
    pub blocks: Vec<Block>,
    pub abuse_email: String,
    pub webhook: bool,
    pub cdn: bool,
    pub on_notice: Action,
    pub serving: Serving,
}

#[derive(Debug, Clone)]
pub struct Site {
    pub id: SiteId,
    pub host: String,
    pub kind: SiteKind,
    /// The provider hosting the origin server.
    pub provider: ProviderId,
    /// The origin server's address.
    pub ip: Ipv4Addr,
    /// The CDN in front, its edge name and address (DNS answers with these).
    pub cdn: Option<CdnFront>,
    pub robots: RobotsVariant,
    pub hostile: bool,
    pub https: bool,
    pub traps: Vec<Trap>,
    /// The photos trap pages show (see `traps`).
    pub trap_media: Vec<ItemId>,
    /// Full names that are CNAMEs of `host`.
    pub aliases: Vec<String>,
    pub pages: Vec<Page>,
    /// Photo archives the site serves (see `archive_sites`).
    pub archives: Vec<SiteArchive>,
    /// Where the site goes if its provider moves it (provider, address).
    pub move_target: Option<(ProviderId, Ipv4Addr)>,
}

#[derive(Debug, Clone)]
pub struct CdnFront {
    pub provider: ProviderId,
    pub edge_name: String,
    pub ip: Ipv4Addr,
}

#[derive(Debug, Clone)]
pub struct Page {
    /// Path and query, as linked (`/album/x/?page=2`).
    pub path: String,
    pub title: String,
    pub items: Vec<ItemId>,
    pub links: Vec<String>,
}

/// How a served copy was derived from its corpus photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Transform {
    Original,
    Resize { percent: u8 },
    Reencode { quality: u8 },
    Crop { percent: u8 },
    Watermark,
    Thumbnail { max_side: u16 },
    ConvertPng,
}

impl Transform {
    /// The extension the copy is served with; `None` keeps the source's.
    pub fn ext(self) -> Option<&'static str> {
        match self {
            Transform::Original => None,
            Transform::ConvertPng => Some("png"),
            _ => Some("jpg"),
        }
    }
}

/// One image at one URL.
#[derive(Debug, Clone, Serialize)]
pub struct MediaItem {
    pub id: ItemId,
    pub site: SiteId,
    pub path: String,
    /// Index into the corpus.
    pub source: usize,
    pub transform: Transform,
    /// Whether the source photo is one the world declared known (so the copy counts as known).
    pub known: bool,
}

#[derive(Debug)]
pub struct World {
    pub seed: u64,
    pub name: String,
    pub tlds: Vec<String>,
    pub time_scale: f64,
    pub providers: Vec<Provider>,
    pub sites: Vec<Site>,
    pub items: Vec<MediaItem>,
    /// Corpus indices declared known, ascending.
    pub known: Vec<usize>,
    pub corpus: Corpus,
    hosts: BTreeMap<String, SiteId>,
    pages: BTreeMap<(SiteId, String), usize>,
    item_paths: BTreeMap<(SiteId, String), ItemId>,
}

impl World {
    pub fn generate(scenario: &Scenario, seed: u64, corpus: Corpus) -> Result<World, SimWebError> {
        let tld = scenario
            .tlds
            .first()
            .cloned()
            .unwrap_or_else(|| "sim".to_owned());
        let mut providers: Vec<Provider> = Vec::new();
        for spec in &scenario.providers {
            providers.push(provider_from_spec(providers.len(), spec, &tld)?);
        }
        let mut site_specs = scenario.sites.clone();
        if let Some(g) = &scenario.generate {
            generate_providers(&mut providers, g, seed, &tld);
            generate_site_specs(&mut site_specs, &providers, g, seed, &scenario.tlds);
        }
        let known = choose_known(scenario, seed, &corpus)?;
        let mut world = World {
            seed,
            name: scenario.name.clone(),
            tlds: scenario.tlds.clone(),
            time_scale: scenario.time_scale,
            providers,
            sites: Vec::new(),
            items: Vec::new(),
            known,
            corpus,
            hosts: BTreeMap::new(),
            pages: BTreeMap::new(),
            item_paths: BTreeMap::new(),
        };
        let mut ip_counters = vec![0u32; world.providers.len()];
        for spec in &site_specs {
            world.add_site(spec, seed, &mut ip_counters)?;
        }
        Ok(world)
    }

    pub fn provider_by_name(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }

    pub fn provider_by_email(&self, email: &str) -> Option<&Provider> {
        self.providers
            .iter()
            .find(|p| p.abuse_email.eq_ignore_ascii_case(email))
    }

    /// The site answering to a name (its host or an alias), case-insensitively.
    pub fn site_by_host(&self, host: &str) -> Option<&Site> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.get(&host).and_then(|&id| self.sites.get(id))
    }

    pub fn page(&self, site: SiteId, path: &str) -> Option<&Page> {
        let index = *self.pages.get(&(site, path.to_owned()))?;
        self.sites.get(site)?.pages.get(index)
    }

    pub fn item_at(&self, site: SiteId, path: &str) -> Option<&MediaItem> {
        self.item_paths
            .get(&(site, path.to_owned()))
            .and_then(|&id| self.items.get(id))
    }

    /// Every address some site is served from, at any time (origin, CDN edge, move target).
    pub fn all_host_ips(&self) -> Vec<Ipv4Addr> {
        let mut ips: Vec<Ipv4Addr> = self
            .sites
            .iter()
            .flat_map(|s| {
                [
                    Some(s.ip),
                    s.cdn.as_ref().map(|c| c.ip),
                    s.move_target.map(|(_, ip)| ip),
                ]
            })
            .flatten()
            .collect();
        ips.sort();
        ips.dedup();
        ips
    }

    /// The provider owning an address, by IP block.
    pub fn provider_of_ip(&self, ip: Ipv4Addr) -> Option<(&Provider, &Block)> {
        self.providers
            .iter()
            .find_map(|p| p.blocks.iter().find(|b| b.contains(ip)).map(|b| (p, b)))
    }

    fn add_site(
        &mut self,
        spec: &SiteSpec,
        seed: u64,
        ip_counters: &mut [u32],
    ) -> Result<(), SimWebError> {
        let id = self.sites.len();
        let host = spec.host.to_ascii_lowercase();
        if self.hosts.contains_key(&host) {
            return Err(SimWebError::Scenario(format!(
                "site {host:?} is listed twice"
            )));
        }
        let provider = self
            .provider_by_name(&spec.provider)
            .ok_or_else(|| SimWebError::Scenario(format!("unknown provider {:?}", spec.provider)))?
            .clone();
        let counter = ip_counters.get_mut(provider.id).map_or(0, |c| {
            *c += 1;
            *c - 1
        });
        let block = provider
            .blocks
            .get(counter as usize % provider.blocks.len().max(1))
            .copied();
        let ip = block.map_or(Ipv4Addr::LOCALHOST, |b| b.host(counter / 2));
        let cdn = match &spec.behind_cdn {
            Some(name) => {
                let cdn = self
                    .provider_by_name(name)
                    .ok_or_else(|| SimWebError::Scenario(format!("unknown CDN {name:?}")))?;
                let edge_ip = cdn
                    .blocks
                    .first()
                    .map_or(Ipv4Addr::LOCALHOST, |b| b.host(id as u32 % 4));
                let label = host.replace('.', "-");
                let tld = self.tlds.first().map_or("sim", String::as_str);
                Some(CdnFront {
                    provider: cdn.id,
                    edge_name: format!("{label}.edge.{}.{tld}", cdn.slug),
                    ip: edge_ip,
                })
            }
            None => None,
        };
        let move_target = match &provider.on_notice {
            Action::MoveSite { to, .. } => self.provider_by_name(to).map(|p| {
                (
                    p.id,
                    p.blocks
                        .first()
                        .map_or(Ipv4Addr::LOCALHOST, |b| b.host(200 + id as u32 % 50)),
                )
            }),
            _ => None,
        };
        let aliases: Vec<String> = spec
            .aliases
            .iter()
            .map(|a| format!("{}.{host}", a.to_ascii_lowercase()))
            .collect();
        let mut rng = Rng::derive(seed, &format!("site:{host}"));
        let mut pages = self.build_pages(id, spec, &mut rng);
        let archives = crate::archive_sites::build(self, spec, seed, &host, &mut pages);
        let trap_media = crate::traps::build_pool(self, id, spec, seed);
        for (index, page) in pages.iter().enumerate() {
            self.pages.insert((id, page.path.clone()), index);
        }
        self.hosts.insert(host.clone(), id);
        for alias in &aliases {
            self.hosts.insert(alias.clone(), id);
        }
        self.sites.push(Site {
            id,
            host,
            kind: spec.kind,
            provider: provider.id,
            ip,
            cdn,
            robots: spec.robots,
            hostile: spec.hostile,
            https: spec.https,
            traps: spec.traps.clone(),
            trap_media,
            aliases,
            pages,
            archives,
            move_target,
        });
        Ok(())
    }

    pub(crate) fn new_item(
        &mut self,
        site: SiteId,
        path: String,
        source: usize,
        transform: Transform,
    ) -> ItemId {
        let id = self.items.len();
        let known = self.known.binary_search(&source).is_ok();
        self.item_paths.insert((site, path.clone()), id);
        self.items.push(MediaItem {
            id,
            site,
            path,
            source,
            transform,
            known,
        });
        id
    }

    /// Draws a corpus photo: known with probability `known_share`, else unknown.
    pub(crate) fn draw_source(&self, rng: &mut Rng, known_share: f64) -> usize {
        if !self.known.is_empty() && rng.chance(known_share) {
            return self
                .known
                .get(rng.below(self.known.len() as u64) as usize)
                .copied()
                .unwrap_or(0);
        }
        // Unknown: any corpus photo not in the known set (retry a few times, then accept).
        for _ in 0..8 {
            let candidate = rng.below(self.corpus.len() as u64) as usize;
            if self.known.binary_search(&candidate).is_err() {
                return candidate;
            }
        }
        0
    }

    fn build_pages(&mut self, site: SiteId, spec: &SiteSpec, rng: &mut Rng) -> Vec<Page> {
        let layout = Layout::for_kind(spec.kind);
        let content_pages = spec.pages.saturating_sub(1).max(1);
        let known_share = if spec.kind == SiteKind::Plain {
            0.0
        } else {
            spec.known_share
        };
        let mut pages = Vec::new();
        let mut section_firsts = Vec::new();
        let mut made = 0;
        let mut section = 0;
        while made < content_pages {
            let span = (rng.range(1, 3) as u32).min(content_pages - made);
            let slug = format!("{}-{}", crate::names::word(rng), rng.token(4));
            let section_pages: Vec<String> = (0..span)
                .map(|k| layout.page_path(section, &slug, k))
                .collect();
            section_firsts.push((
                section_pages.first().cloned().unwrap_or_default(),
                slug.clone(),
            ));
            for (k, path) in section_pages.iter().enumerate() {
                let mut items = Vec::new();
                for _ in 0..spec.images_per_page {
                    let source = self.draw_source(rng, known_share);
                    let transform = draw_transform(rng);
                    let ext = transform.ext().unwrap_or(self.corpus.ext(source));
                    let name = rng.token(10);
                    let full = layout.item_path(section, &slug, &name, ext);
                    items.push(self.new_item(site, full, source, transform));
                    if let Some(thumb) = layout.thumb_path(section, &slug, &name) {
                        items.push(self.new_item(
                            site,
                            thumb,
                            source,
                            Transform::Thumbnail { max_side: 256 },
                        ));
                    }
                }
                let mut links = vec!["/".to_owned()];
                if k > 0 {
                    links.extend(section_pages.get(k - 1).cloned());
                }
                links.extend(section_pages.get(k + 1).cloned());
                let title = format!("{} {} {}", layout.noun, slug, k + 1);
                pages.push(Page {
                    path: path.clone(),
                    title,
                    items,
                    links,
                });
            }
            made += span;
            section += 1;
        }
        let mut index_links: Vec<String> = section_firsts.iter().map(|(p, _)| p.clone()).collect();
        if spec.hostile {
            index_links.push("/quirks/".to_owned());
        }
        for trap in &spec.traps {
            index_links.push(match trap {
                Trap::Calendar => "/calendar/2026/01/".to_owned(),
                Trap::SessionId => format!("/shop/?sid={}", rng.token(16)),
                Trap::DeepPath => "/topics/".to_owned(),
            });
        }
        let index = Page {
            path: "/".to_owned(),
            title: spec.host.clone(),
            items: Vec::new(),
            links: index_links,
        };
        pages.insert(0, index);
        pages
    }
}

fn choose_known(
    scenario: &Scenario,
    seed: u64,
    corpus: &Corpus,
) -> Result<Vec<usize>, SimWebError> {
    let mut known = Vec::new();
    for name in &scenario.known_files {
        let index = corpus.index_of(name).ok_or_else(|| {
            SimWebError::Scenario(format!("known file {name:?} is not in the corpus"))
        })?;
        known.push(index);
    }
    let mut rng = Rng::derive(seed, "known");
    let wanted = scenario.known_images.min(corpus.len() / 2);
    let mut attempts = 0;
    while known.len() < wanted + scenario.known_files.len() && attempts < 100_000 {
        attempts += 1;
        let candidate = rng.below(corpus.len() as u64) as usize;
        if !known.contains(&candidate) {
            known.push(candidate);
        }
    }
    known.sort_unstable();
    known.dedup();
    Ok(known)
}

pub(crate) fn slug_of(name: &str) -> String {
    let slug: String = name
        .chars()
        .filter_map(|c| {
            if c.is_ascii_alphanumeric() {
                Some(c.to_ascii_lowercase())
            } else if c == ' ' || c == '-' {
                Some('-')
            } else {
                None
            }
        })
        .collect();
    if slug.is_empty() {
        "provider".to_owned()
    } else {
        slug
    }
}

fn provider_from_spec(
    id: ProviderId,
    spec: &ProviderSpec,
    tld: &str,
) -> Result<Provider, SimWebError> {
    let slug = slug_of(&spec.name);
    let blocks = spec
        .blocks
        .iter()
        .map(|b| Block::parse(b))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Provider {
        id,
        abuse_email: spec
            .abuse_email
            .clone()
            .unwrap_or_else(|| format!("abuse@{slug}.{tld}")),
        name: spec.name.clone(),
        slug,
        country: spec.country.clone(),
        asn: spec.asn,
        blocks,
        webhook: spec.webhook,
        cdn: spec.cdn,
        on_notice: spec.on_notice.clone(),
        serving: spec.serving.clone(),
    })
}
