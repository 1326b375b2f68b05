//! Generated providers and sites for scenarios with a `[generate]` table: names, blocks,
//! countries, behaviours and site shapes drawn from the seed. Must not bind or serve anything.

use std::net::Ipv4Addr;

use crate::rng::Rng;
use crate::scenario::{
    Action, Block, Delay, GenerateSpec, RemoveScope, RobotsVariant, Serving, SiteKind, SiteSpec,
    Trap,
};
use crate::world::{Provider, slug_of};

pub fn generate_providers(providers: &mut Vec<Provider>, g: &GenerateSpec, seed: u64, tld: &str) {
    let explicit = providers.len();
    for i in 0..g.providers {
        let mut rng = Rng::derive(seed, &format!("provider:{i}"));
        let name = format!("{} {}", crate::names::company(&mut rng), i + 1);
        let slug = slug_of(&name);
        let block = Block {
            base: Ipv4Addr::new(127, 100 + (i / 200) as u8, (i % 200) as u8, 0),
            prefix: 24,
        };
        let country = g
            .countries
            .get(i as usize % g.countries.len())
            .cloned()
            .unwrap_or_default();
        let on_notice = draw_action(
            &mut rng,
            explicit,
            providers.len(),
            g.providers as usize + explicit,
            providers,
        );
        let serving = Serving {
            slow_ms: if rng.chance(0.1) {
                rng.range(50, 300)
            } else {
                0
            },
            rate_limit_per_second: if rng.chance(0.1) {
                rng.range(5, 20) as u32
            } else {
                0
            },
        };
        providers.push(Provider {
            id: providers.len(),
            abuse_email: format!("abuse@{slug}.{tld}"),
            name,
            slug,
            country,
            asn: 64600 + i,
            blocks: vec![block],
            webhook: rng.chance(0.3),
            cdn: false,
            on_notice,
            serving,
        });
    }
}

fn draw_action(
    rng: &mut Rng,
    first: usize,
    me: usize,
    total: usize,
    providers: &[Provider],
) -> Action {
    let hours = |rng: &mut Rng, lo: u64, hi: u64| Delay::Uniform {
        min: lo as f64,
        max: rng.range(lo + 1, hi) as f64,
    };
    match rng.below(100) {
        0..=39 => Action::Remove {
            delay_hours: hours(rng, 1, 72),
            scope: RemoveScope::Named,
        },
        40..=49 => Action::Remove {
            delay_hours: Delay::Exponential { mean: 24.0 },
            scope: RemoveScope::Site,
        },
        50..=64 => Action::Ignore,
        65..=74 => Action::Reupload {
            delay_hours: hours(rng, 1, 24),
            reupload_after_hours: hours(rng, 24, 96),
            reencode: rng.chance(0.5),
        },
        75..=84 if me > first => {
            // Move only to a provider generated before this one: names exist and no cycles.
            let target = first + rng.below((me - first) as u64) as usize;
            match providers.get(target) {
                Some(p) if target < total => Action::MoveSite {
                    delay_hours: hours(rng, 12, 96),
                    to: p.name.clone(),
                },
                _ => Action::Ignore,
            }
        }
        85..=94 => Action::Placeholder {
            delay_hours: hours(rng, 1, 48),
        },
        _ => Action::Remove {
            delay_hours: hours(rng, 100, 400),
            scope: RemoveScope::Named,
        },
    }
}

pub fn generate_site_specs(
    specs: &mut Vec<SiteSpec>,
    providers: &[Provider],
    g: &GenerateSpec,
    seed: u64,
    tlds: &[String],
) {
    let hosting: Vec<&Provider> = providers.iter().filter(|p| !p.cdn).collect();
    let cdns: Vec<&Provider> = providers.iter().filter(|p| p.cdn).collect();
    for i in 0..g.sites {
        let mut rng = Rng::derive(seed, &format!("generated-site:{i}"));
        let Some(provider) = rng.pick(&hosting) else {
            return;
        };
        let tld = rng.pick(tlds).cloned().unwrap_or_else(|| "sim".to_owned());
        let host = format!(
            "{}-{}{}.{tld}",
            crate::names::word(&mut rng),
            crate::names::word(&mut rng),
            i
        );
        let kind = match rng.below(100) {
            0..=24 => SiteKind::Gallery,
            25..=44 => SiteKind::Forum,
            45..=59 => SiteKind::Directory,
            60..=74 => SiteKind::Imageboard,
            _ => SiteKind::Plain,
        };
        let interesting = kind != SiteKind::Plain && rng.chance(g.interesting_share);
        let robots = match rng.below(100) {
            0..=59 => RobotsVariant::Allow,
            60..=74 => RobotsVariant::DisallowPrivate,
            75..=88 => RobotsVariant::CrawlDelay,
            89..=93 => RobotsVariant::Garbage,
            94..=97 => RobotsVariant::Missing,
            _ => RobotsVariant::DisallowAll,
        };
        let mut traps = Vec::new();
        if rng.chance(0.04) {
            traps.push(Trap::Calendar);
        }
        if rng.chance(0.04) {
            traps.push(Trap::SessionId);
        }
        let behind_cdn = if rng.chance(g.cdn_share) {
            rng.pick(&cdns).map(|c| c.name.clone())
        } else {
            None
        };
        specs.push(SiteSpec {
            host,
            provider: provider.name.clone(),
            kind,
            behind_cdn,
            pages: rng.range(
                u64::from(g.pages_per_site[0]),
                u64::from(g.pages_per_site[1]),
            ) as u32,
            images_per_page: rng.range(
                u64::from(g.images_per_page[0]),
                u64::from(g.images_per_page[1]),
            ) as u32,
            known_share: if interesting { g.known_share } else { 0.0 },
            robots,
            hostile: i < g.hostile_sites,
            https: rng.chance(g.https_share),
            traps,
            // Generated traps show no photos, so matching ends them (scenarios ask for more).
            trap_images: 0,
            aliases: if rng.chance(0.3) {
                vec!["www".to_owned()]
            } else {
                Vec::new()
            },
            archives: generated_archives(g, seed, i, kind),
        });
    }
}

/// Archives for generated site `i`, from a stream of their own so that worlds without archives
/// stay what they were.
fn generated_archives(g: &GenerateSpec, seed: u64, i: u32, kind: SiteKind) -> u32 {
    if g.archive_share <= 0.0 || kind == SiteKind::Plain {
        return 0;
    }
    let mut rng = Rng::derive(seed, &format!("generated-archives:{i}"));
    if rng.chance(g.archive_share) {
        rng.range(1, 2) as u32
    } else {
        0
    }
}
