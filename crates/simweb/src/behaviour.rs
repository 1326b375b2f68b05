//! What a provider does when a notice arrives: finds the URLs it names, checks that it hosts
//! them (or fronts them, for a CDN), and schedules its behaviour on the simulated clock:
//! removal, placeholder, re-upload elsewhere, site move, forwarding to the origin, or nothing.
//!
//! Notice formats are defined elsewhere (XARF JSON, readable email), so parsing is liberal:
//! every http(s) URL in the text counts, including inside base64 and quoted-printable parts.
//! Must not act on URLs the provider does not host.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::Shared;
use crate::rng::{Rng, fnv1a};
use crate::scenario::{Action, Delay, RemoveScope};
use crate::state::{Channel, ReceivedNotice, Removal, RemovalKind, Reupload, SiteMove, State};
use crate::world::{ItemId, MediaItem, ProviderId, SiteId, Transform, World};

/// What arrived, and through which door.
pub struct Arrival {
    pub channel: Channel,
    pub provider: ProviderId,
    pub from: String,
    pub to: Vec<String>,
    pub raw: String,
    /// The sender's idempotency key (Message-ID, Idempotency-Key header), if it gave one.
    pub key: Option<String>,
    /// Whether it came over TLS.
    pub tls: bool,
    /// The SMTP AUTH user the sender logged in as.
    pub authenticated: Option<String>,
}

/// Records a notice and lets the provider act on it; returns the notice's index. A notice
/// whose key the provider already received is recorded as a duplicate and not acted on, as
/// a receiver that deduplicates by Message-ID or Idempotency-Key would do.
pub fn receive(shared: &Shared, arrival: Arrival) -> usize {
    let Arrival {
        channel,
        provider,
        from,
        to,
        raw,
        key,
        tls,
        authenticated,
    } = arrival;
    let now = shared.clock.now();
    let world = &shared.world;
    let urls = extract_urls(&raw);
    let Ok(mut state) = shared.state.lock() else {
        return 0;
    };
    let index = state.notices.len();
    let mut outcome = Vec::new();
    let duplicate_of = key.as_ref().and_then(|key| {
        state
            .notices
            .iter()
            .find(|n| n.provider == provider && n.key.as_ref() == Some(key))
            .map(|n| n.index)
    });
    if let Some(first) = duplicate_of {
        outcome.push(format!(
            "duplicate of notice {first} (same key): not acted on"
        ));
        state.notices.push(ReceivedNotice {
            index,
            channel,
            provider,
            from,
            to,
            raw,
            urls,
            received_at: now,
            outcome,
            key,
            duplicate_of,
            tls,
            authenticated,
        });
        return index;
    }
    let mut targets: BTreeMap<SiteId, BTreeSet<ItemId>> = BTreeMap::new();
    for url in &urls {
        match resolve_target(world, &state, url) {
            Some((site, items)) => targets.entry(site).or_default().extend(items),
            None => outcome.push(format!("{url}: not a URL of the world")),
        }
    }
    let draw_label = fnv1a(raw.as_bytes());
    for (site, items) in targets {
        let Some(s) = world.sites.get(site) else {
            continue;
        };
        let origin = state.site_origin(world, site, now).map(|(p, _)| p);
        let fronting = s.cdn.as_ref().map(|c| c.provider);
        if origin != Some(provider) && fronting != Some(provider) {
            outcome.push(format!("{}: not hosted by this provider", s.host));
            continue;
        }
        let Some(p) = world.providers.get(provider) else {
            continue;
        };
        let mut rng = Rng::derive(
            world.seed,
            &format!("notice:{provider}:{site}:{draw_label}"),
        );
        let act = Act {
            world,
            provider,
            notice: index,
            site,
            items: &items,
            rng: &mut rng,
        };
        act.apply(&mut state, &p.on_notice, now, 0, &mut outcome);
    }
    state.notices.push(ReceivedNotice {
        index,
        channel,
        provider,
        from,
        to,
        raw,
        urls,
        received_at: now,
        outcome,
        key,
        duplicate_of: None,
        tls,
        authenticated,
    });
    index
}

struct Act<'a> {
    world: &'a World,
    provider: ProviderId,
    notice: usize,
    site: SiteId,
    items: &'a BTreeSet<ItemId>,
    rng: &'a mut Rng,
}

impl Act<'_> {
    fn apply(
        mut self,
        state: &mut State,
        action: &Action,
        t0: Duration,
        depth: u8,
        outcome: &mut Vec<String>,
    ) {
        let host = self
            .world
            .sites
            .get(self.site)
            .map_or("", |s| s.host.as_str())
            .to_owned();
        match action {
            Action::Ignore => outcome.push(format!("{host}: ignored")),
            Action::Remove { delay_hours, scope } => {
                let at = t0 + draw(self.rng, *delay_hours);
                let ids: Vec<ItemId> = match scope {
                    RemoveScope::Named => self.items.iter().copied().collect(),
                    RemoveScope::Site => site_items(self.world, state, self.site),
                };
                self.take_down(state, &ids, at, RemovalKind::Gone);
                outcome.push(format!(
                    "{host}: {} item(s) removed at {}s",
                    ids.len(),
                    at.as_secs()
                ));
            }
            Action::Placeholder { delay_hours } => {
                let at = t0 + draw(self.rng, *delay_hours);
                let ids: Vec<ItemId> = self.items.iter().copied().collect();
                self.take_down(state, &ids, at, RemovalKind::Placeholder);
                outcome.push(format!(
                    "{host}: {} item(s) replaced by a placeholder at {}s",
                    ids.len(),
                    at.as_secs()
                ));
            }
            Action::Reupload {
                delay_hours,
                reupload_after_hours,
                reencode,
            } => {
                let at = t0 + draw(self.rng, *delay_hours);
                for &item in self.items {
                    self.take_down(state, &[item], at, RemovalKind::Gone);
                    let appears_at = at + draw(self.rng, *reupload_after_hours);
                    if let Some(url) = self.reupload(state, item, appears_at, *reencode) {
                        outcome.push(format!(
                            "{host}: removed at {}s, re-uploaded as {url} at {}s",
                            at.as_secs(),
                            appears_at.as_secs()
                        ));
                    }
                }
            }
            Action::MoveSite { delay_hours, to } => {
                let at = t0 + draw(self.rng, *delay_hours);
                if let Some(ip) = self.move_site(state, to, at) {
                    outcome.push(format!("{host}: moves to {to} ({ip}) at {}s", at.as_secs()));
                }
            }
            Action::Forward { delay_hours } => {
                let at = t0 + draw(self.rng, *delay_hours);
                let origin = state.site_origin(self.world, self.site, at).map(|(p, _)| p);
                let origin_action = origin
                    .and_then(|o| self.world.providers.get(o))
                    .map(|p| p.on_notice.clone());
                match (origin, origin_action) {
                    // One hop only: a CDN in front of a CDN would otherwise forward forever.
                    (Some(origin), Some(action))
                        if depth == 0 && !matches!(action, Action::Forward { .. }) =>
                    {
                        outcome.push(format!(
                            "{host}: forwarded to the origin at {}s",
                            at.as_secs()
                        ));
                        let next = Act {
                            provider: origin,
                            ..self
                        };
                        next.apply(state, &action, at, depth + 1, outcome);
                    }
                    _ => outcome.push(format!("{host}: forwarding went nowhere")),
                }
            }
        }
    }

    fn take_down(&self, state: &mut State, items: &[ItemId], at: Duration, kind: RemovalKind) {
        for &item in items {
            state.remove(Removal {
                item,
                provider: self.provider,
                at,
                kind,
                notice: self.notice,
            });
        }
    }

    /// Schedules the site's move to the provider named `to`; the new address, if it moves.
    fn move_site(&self, state: &mut State, to: &str, at: Duration) -> Option<std::net::Ipv4Addr> {
        let target = self.world.provider_by_name(to)?;
        let site = self.world.sites.get(self.site)?;
        let ip = site
            .move_target
            .filter(|(p, _)| *p == target.id)
            .map(|(_, ip)| ip)?;
        if state.moves.contains_key(&self.site) {
            return None;
        }
        state.moves.insert(
            self.site,
            SiteMove {
                site: self.site,
                at,
                to_provider: target.id,
                ip,
            },
        );
        Some(ip)
    }

    /// Puts a copy of an item on another site of the same provider (or the same site).
    fn reupload(
        &mut self,
        state: &mut State,
        item: ItemId,
        appears_at: Duration,
        reencode: bool,
    ) -> Option<String> {
        let original = state.item(self.world, item)?.clone();
        let candidates: Vec<SiteId> = self
            .world
            .sites
            .iter()
            .filter(|s| {
                s.provider == self.provider
                    && s.id != original.site
                    && !s.pages.iter().all(|p| p.items.is_empty())
            })
            .map(|s| s.id)
            .collect();
        let site_id = self.rng.pick(&candidates).copied().unwrap_or(original.site);
        let site = self.world.sites.get(site_id)?;
        let page = site
            .pages
            .get(1)
            .or_else(|| site.pages.first())?
            .path
            .clone();
        let transform = if reencode {
            Transform::Reencode { quality: 62 }
        } else {
            original.transform
        };
        let ext = transform
            .ext()
            .unwrap_or(self.world.corpus.ext(original.source));
        let path = format!("/uploads/{}.{ext}", self.rng.token(12));
        let id = self.world.items.len() + state.reuploads.len();
        let copy = MediaItem {
            id,
            site: site_id,
            path: path.clone(),
            source: original.source,
            transform,
            known: original.known,
        };
        state.add_reupload(Reupload {
            item: copy,
            copy_of: item,
            page,
            appears_at,
        });
        Some(format!("{}{path}", site.host))
    }
}

fn site_items(world: &World, state: &State, site: SiteId) -> Vec<ItemId> {
    let generated = world.items.iter().filter(|i| i.site == site).map(|i| i.id);
    let reuploaded = state
        .reuploads
        .iter()
        .filter(|r| r.item.site == site)
        .map(|r| r.item.id);
    generated.chain(reuploaded).collect()
}

/// Draws from a delay distribution (simulated hours) into a duration.
fn draw(rng: &mut Rng, delay: Delay) -> Duration {
    let hours = match delay {
        Delay::Fixed(h) => h,
        Delay::Uniform { min, max } => min + (max - min).max(0.0) * rng.unit(),
        Delay::Exponential { mean } => -mean * (1.0 - rng.unit()).ln(),
    };
    let seconds = hours * 3600.0;
    if seconds.is_finite() && seconds > 0.0 {
        Duration::from_secs_f64(seconds.min(1e12))
    } else {
        Duration::ZERO
    }
}

/// The site and items a URL names: an image URL names itself, a page URL every image on it.
fn resolve_target(world: &World, state: &State, url: &str) -> Option<(SiteId, Vec<ItemId>)> {
    let (host, path) = split_url(url)?;
    let site = world.site_by_host(&host)?;
    if let Some(item) = state.item_at(world, site.id, &path) {
        return Some((site.id, vec![item.id]));
    }
    let page = world
        .page(site.id, &path)
        .or_else(|| world.page(site.id, path.split('?').next()?))?;
    let mut items = page.items.clone();
    items.extend(
        state
            .reuploads
            .iter()
            .filter(|r| r.item.site == site.id && r.page == page.path)
            .map(|r| r.item.id),
    );
    Some((site.id, items))
}

/// Host (lowercase, no port or credentials) and path with query of an http(s) URL.
pub fn split_url(url: &str) -> Option<(String, String)> {
    let lower = url
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rest = if lower.starts_with("https://") {
        url.get(8..)?
    } else if lower.starts_with("http://") {
        url.get(7..)?
    } else {
        return None;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end)?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
    let mut path = rest
        .get(end..)
        .unwrap_or("")
        .split('#')
        .next()
        .unwrap_or("")
        .to_owned();
    if path.is_empty() || path.starts_with('?') {
        path.insert(0, '/');
    }
    if host.is_empty() {
        return None;
    }
    Some((host.trim_end_matches('.').to_ascii_lowercase(), path))
}

/// Every http(s) URL in a message: plain text, JSON (with `\/` escapes), quoted-printable and
/// base64 MIME parts.
pub fn extract_urls(raw: &str) -> Vec<String> {
    let mut texts = vec![raw.replace("\\/", "/"), quoted_printable_decoded(raw)];
    texts.extend(base64_runs(raw));
    let mut urls = Vec::new();
    for text in &texts {
        scan_urls(text, &mut urls);
    }
    let mut seen = BTreeSet::new();
    urls.retain(|u| seen.insert(u.clone()));
    urls
}

fn scan_urls(text: &str, out: &mut Vec<String>) {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower.get(from..).and_then(|rest| rest.find("http")) {
        let start = from + found;
        from = start + 4;
        let tail = lower.get(start..).unwrap_or("");
        if !(tail.starts_with("http://") || tail.starts_with("https://")) {
            continue;
        }
        let candidate = text.get(start..).unwrap_or("");
        let end = candidate
            .find(|c: char| {
                c.is_whitespace()
                    || matches!(c, '"' | '\'' | '<' | '>' | '\\' | ')' | ']' | '}' | ',')
            })
            .unwrap_or(candidate.len());
        let url = candidate
            .get(..end)
            .unwrap_or("")
            .trim_end_matches(['.', ';', ':', '!']);
        if url.len() > "http://".len() + 1 {
            out.push(url.to_owned());
        }
        from = start + end.max(4);
    }
}

fn quoted_printable_decoded(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'=', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes runs of base64-looking lines (MIME parts), keeping those that decode to text.
fn base64_runs(raw: &str) -> Vec<String> {
    let is_b64_line = |l: &str| {
        l.len() >= 16
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    };
    let mut runs = Vec::new();
    let mut current = String::new();
    for line in raw.lines().map(str::trim_end) {
        if is_b64_line(line) {
            current.push_str(line);
        } else if !current.is_empty() {
            runs.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs.into_iter()
        .filter_map(|r| decode_base64(&r))
        .filter_map(|b| String::from_utf8(b).ok())
        .collect()
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let clean: Vec<u8> = text.bytes().filter(|&b| b != b'=').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut acc = 0u32;
        for (k, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * k as u32);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(bytes.get(1..chunk.len()).unwrap_or_default());
    }
    Some(out)
}

/// The `Message-ID` of an RFC 5322 message (header names are case-insensitive; folded
/// continuation lines are joined), or `None` when it has none.
pub fn message_id(raw: &str) -> Option<String> {
    let head = raw.split("\r\n\r\n").next().unwrap_or(raw);
    let mut value: Option<String> = None;
    for line in head.split("\r\n") {
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((name, rest)) = line.split_once(':')
            && name.eq_ignore_ascii_case("message-id")
        {
            value = Some(rest.trim().to_owned());
        }
    }
    value.filter(|v| !v.is_empty() && v.len() <= 998)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_found_in_text_json_qp_and_base64() {
        let text = "See http://a.sim:8080/images/x.jpg, and (https://b.test/p?q=1).\n\
                    {\"url\":\"http:\\/\\/c.sim\\/y.png\"}\n\
                    soft http://d.sim/long=\r\npath.jpg\n\
                    aHR0cDovL2Uuc2ltL2Jhc2U2NC5qcGcgaXMgaGVyZQ==\n";
        let urls = extract_urls(text);
        for want in [
            "http://a.sim:8080/images/x.jpg",
            "https://b.test/p?q=1",
            "http://c.sim/y.png",
            "http://d.sim/longpath.jpg",
            "http://e.sim/base64.jpg",
        ] {
            assert!(urls.iter().any(|u| u == want), "{want} not in {urls:?}");
        }
    }

    #[test]
    fn hostile_notice_text_yields_no_panic() {
        for text in [
            "",
            "http://",
            "https://",
            "http",
            "=",
            "====\n",
            "http://\u{0}",
            "\u{fffd}http://x",
            "AAAA AAAA",
        ] {
            let _ = extract_urls(text);
        }
        assert_eq!(
            split_url("http://User@A.Sim:80/x#frag"),
            Some(("a.sim".to_owned(), "/x".to_owned()))
        );
        assert_eq!(
            split_url("http://a.sim?x"),
            Some(("a.sim".to_owned(), "/?x".to_owned()))
        );
        assert_eq!(split_url("ftp://a.sim/"), None);
    }

    #[test]
    fn message_id_is_read_from_the_header_only_case_insensitively_and_unfolded() {
        assert_eq!(
            message_id("From: a\r\nmessage-id:  <k@h>\r\n\r\nMessage-ID: <body@h>\r\n"),
            Some("<k@h>".to_owned())
        );
        assert_eq!(
            message_id("Message-ID:\r\n <folded@h>\r\nTo: b\r\n\r\nx"),
            Some("<folded@h>".to_owned())
        );
        assert_eq!(message_id("From: a\r\n\r\nMessage-ID: <body@h>"), None);
        assert_eq!(message_id("Message-ID: \r\n\r\n"), None);
        assert_eq!(
            message_id(&format!("Message-ID: <{}>\r\n", "x".repeat(5000))),
            None
        );
        assert_eq!(message_id(""), None);
    }
}
