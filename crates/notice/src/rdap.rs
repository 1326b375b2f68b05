//! A thin RDAP (RFC 9083) client for IP networks: who registered the network holding an
//! address and how to reach its abuse desk.
//!
//! Every request goes through the crawler's guarded fetcher (RDAP servers are outside input
//! too): bounded size and time, no private addresses unless allowlisted. Answers are
//! untrusted: entities are walked with depth and count limits, referral links are followed
//! at most `max_referrals` times and never twice, and anything malformed is an error value,
//! never a panic. Must not cache failures for long (a registry outage is not an answer).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use aranea_crawl::fetch::Fetcher;
use serde_json::Value;
use url::Url;

use crate::clock::UnixMillis;
use crate::rdap_bootstrap::Bootstrap;
use crate::reload::{Reload, Reloading};

/// Entities nested deeper than this are ignored.
const MAX_DEPTH: usize = 6;
/// Entities looked at per answer.
const MAX_ENTITIES: usize = 200;
/// Failures are remembered this long (ms), so a dead registry is not asked on every item.
const FAILURE_TTL_MS: i64 = 5 * 60 * 1000;

/// What RDAP says about the network holding an address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RdapNetwork {
    /// The URL that answered.
    pub source: String,
    pub handle: Option<String>,
    pub name: Option<String>,
    pub country: Option<String>,
    /// The registrant organisation's name, if given.
    pub organisation: Option<String>,
    /// Contacts in order of preference, with the role they came from.
    pub contacts: Vec<(String, String)>,
}

impl RdapNetwork {
    /// The role of the best contact (`abuse`, `technical`, `registrant`, …).
    pub fn best_role(&self) -> Option<&str> {
        self.contacts.first().map(|(role, _)| role.as_str())
    }
}

/// Why an RDAP lookup gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RdapError {
    #[error("no RDAP server knows {ip}")]
    NotFound { ip: IpAddr },
    #[error("RDAP request to {url} failed: {message}")]
    Fetch { url: String, message: String },
    #[error("RDAP answer from {url} is not RDAP JSON: {message}")]
    Malformed { url: String, message: String },
    #[error("RDAP referrals from {url} exceeded {limit}")]
    TooManyReferrals { url: String, limit: usize },
}

/// An answer (or failure) and when it expires.
type CachedAnswer = (UnixMillis, Result<RdapNetwork, RdapError>);

/// Where the bootstrap comes from: given once, or files watched for changes.
enum BootstrapSource {
    Fixed(Arc<Bootstrap>),
    Files(Reloading<Bootstrap>),
}

/// The client with its cache.
pub struct RdapClient {
    fetcher: Fetcher,
    base_urls: Vec<String>,
    ttl_ms: i64,
    max_referrals: usize,
    max_bytes: u64,
    /// RFC 9224 prefixes → registry base URLs; consulted before `base_urls`.
    bootstrap: BootstrapSource,
    cache: Mutex<HashMap<IpAddr, CachedAnswer>>,
}

impl RdapClient {
    pub fn new(
        fetcher: Fetcher,
        base_urls: Vec<String>,
        ttl_secs: u64,
        max_referrals: usize,
        max_bytes: u64,
    ) -> RdapClient {
        RdapClient {
            fetcher,
            base_urls,
            ttl_ms: i64::try_from(ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            max_referrals,
            max_bytes,
            bootstrap: BootstrapSource::Fixed(Arc::new(Bootstrap::default())),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Asks the registry the bootstrap names for an address (longest prefix) and only it;
    /// addresses no bootstrap entry covers go to the configured base URLs in order.
    pub fn with_bootstrap(mut self, bootstrap: Bootstrap) -> RdapClient {
        self.bootstrap = BootstrapSource::Fixed(Arc::new(bootstrap));
        self
    }

    /// The same, from bootstrap files re-read when they change ([`RdapClient::reload_bootstrap`]).
    pub fn with_bootstrap_files(mut self, files: Reloading<Bootstrap>) -> RdapClient {
        self.bootstrap = BootstrapSource::Files(files);
        self
    }

    /// Re-reads the bootstrap files if they changed; a bad replacement keeps those in use.
    pub fn reload_bootstrap(&self) -> Reload {
        match &self.bootstrap {
            BootstrapSource::Fixed(_) => Reload::Unchanged,
            BootstrapSource::Files(files) => files.reload(),
        }
    }

    /// Why the bootstrap files' newest version was refused, while the older one is in use.
    pub fn bootstrap_error(&self) -> Option<String> {
        match &self.bootstrap {
            BootstrapSource::Fixed(_) => None,
            BootstrapSource::Files(files) => files.last_error(),
        }
    }

    /// The network holding `ip`, from the cache when fresh at `now`.
    pub async fn network(&self, ip: IpAddr, now: UnixMillis) -> Result<RdapNetwork, RdapError> {
        if let Some((expires, answer)) = self.cache.lock().ok().and_then(|c| c.get(&ip).cloned())
            && expires > now
        {
            return answer;
        }
        let answer = self.ask(ip).await;
        let ttl = if answer.is_ok() {
            self.ttl_ms
        } else {
            FAILURE_TTL_MS
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(ip, (now.saturating_add(ttl), answer.clone()));
        }
        answer
    }

    async fn ask(&self, ip: IpAddr) -> Result<RdapNetwork, RdapError> {
        let mut last = RdapError::NotFound { ip };
        let bootstrap = match &self.bootstrap {
            BootstrapSource::Fixed(b) => b.clone(),
            BootstrapSource::Files(files) => files.current(),
        };
        let bootstrapped = bootstrap.base_urls(ip);
        let bases = if bootstrapped.is_empty() {
            self.base_urls.as_slice()
        } else {
            bootstrapped
        };
        for base in bases {
            let url = format!("{}ip/{ip}", with_slash(base));
            match self.follow(&url).await {
                Ok(Some(network)) => return Ok(network),
                Ok(None) => {}
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Fetches `start` and follows referral links while no contact is found.
    async fn follow(&self, start: &str) -> Result<Option<RdapNetwork>, RdapError> {
        let mut visited = HashSet::new();
        let mut next = Some(start.to_owned());
        let mut best: Option<RdapNetwork> = None;
        while let Some(url) = next.take() {
            if !visited.insert(url.clone()) {
                break;
            }
            if visited.len() > self.max_referrals + 1 {
                return match best {
                    Some(b) => Ok(Some(b)),
                    None => Err(RdapError::TooManyReferrals {
                        url,
                        limit: self.max_referrals,
                    }),
                };
            }
            let Some(body) = self.get(&url).await? else {
                return Ok(best);
            };
            let network = parse_network(&url, &body)?;
            next = referral(&url, &body).filter(|r| !visited.contains(r));
            let found = !network.contacts.is_empty();
            if best.as_ref().is_none_or(|b| b.contacts.is_empty()) {
                best = Some(network);
            }
            if found {
                break;
            }
        }
        Ok(best)
    }

    /// The body of a 200 answer; `None` for 404.
    async fn get(&self, url: &str) -> Result<Option<Value>, RdapError> {
        let fetch_error = |message: String| RdapError::Fetch {
            url: url.to_owned(),
            message,
        };
        let parsed = Url::parse(url).map_err(|e| fetch_error(e.to_string()))?;
        let fetched = self.fetcher.fetch_prefix(&parsed, self.max_bytes).await;
        let response = fetched.outcome.map_err(|e| fetch_error(e.to_string()))?;
        if response.status == 404 {
            return Ok(None);
        }
        if response.status != 200 {
            return Err(fetch_error(format!("HTTP {}", response.status)));
        }
        if response.truncated {
            return Err(RdapError::Malformed {
                url: url.to_owned(),
                message: format!("body larger than {} bytes", self.max_bytes),
            });
        }
        serde_json::from_slice(&response.body)
            .map(Some)
            .map_err(|e| RdapError::Malformed {
                url: url.to_owned(),
                message: e.to_string(),
            })
    }
}

fn with_slash(base: &str) -> String {
    if base.ends_with('/') {
        base.to_owned()
    } else {
        format!("{base}/")
    }
}

/// Reads an `ip network` object.
pub fn parse_network(url: &str, body: &Value) -> Result<RdapNetwork, RdapError> {
    let Some(object) = body.as_object() else {
        return Err(RdapError::Malformed {
            url: url.to_owned(),
            message: "not a JSON object".to_owned(),
        });
    };
    if let Some(class) = object.get("objectClassName").and_then(Value::as_str)
        && class != "ip network"
    {
        return Err(RdapError::Malformed {
            url: url.to_owned(),
            message: format!("objectClassName is {class:?}, not \"ip network\""),
        });
    }
    let text = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_str)
            .map(|s| s.chars().take(200).collect::<String>())
    };
    let mut found = Vec::new();
    let mut seen = 0;
    if let Some(entities) = object.get("entities") {
        walk(entities, 0, &mut seen, &mut found);
    }
    let organisation = found
        .iter()
        .find(|(role, _, _)| role == "registrant")
        .and_then(|(_, name, _)| name.clone());
    let mut contacts: Vec<(String, String)> = Vec::new();
    for wanted in ["abuse", "technical", "administrative", "registrant", "noc"] {
        for (role, _, email) in &found {
            if role == wanted
                && let Some(email) = email
                && !contacts.iter().any(|(_, e)| e == email)
            {
                contacts.push((role.clone(), email.clone()));
            }
        }
    }
    Ok(RdapNetwork {
        source: url.to_owned(),
        handle: text("handle"),
        name: text("name"),
        country: text("country").filter(|c| c.len() == 2),
        organisation,
        contacts,
    })
}

/// Collects (role, full name, email) of every entity, depth-first.
fn walk(
    entities: &Value,
    depth: usize,
    seen: &mut usize,
    found: &mut Vec<(String, Option<String>, Option<String>)>,
) {
    let Some(list) = entities.as_array() else {
        return;
    };
    if depth > MAX_DEPTH {
        return;
    }
    for entity in list {
        *seen += 1;
        if *seen > MAX_ENTITIES {
            return;
        }
        let (name, email) = vcard(entity.get("vcardArray"));
        if let Some(roles) = entity.get("roles").and_then(Value::as_array) {
            for role in roles.iter().filter_map(Value::as_str).take(10) {
                found.push((role.to_ascii_lowercase(), name.clone(), email.clone()));
            }
        }
        if let Some(nested) = entity.get("entities") {
            walk(nested, depth + 1, seen, found);
        }
    }
}

/// The `fn` and first plausible `email` of a jCard.
fn vcard(card: Option<&Value>) -> (Option<String>, Option<String>) {
    let properties = card
        .and_then(Value::as_array)
        .and_then(|c| c.get(1))
        .and_then(Value::as_array);
    let mut name = None;
    let mut email = None;
    for property in properties.into_iter().flatten().take(100) {
        let Some(fields) = property.as_array() else {
            continue;
        };
        let key = fields.first().and_then(Value::as_str);
        let value = fields.get(3).and_then(Value::as_str);
        match (key, value) {
            (Some("fn"), Some(v)) if name.is_none() => {
                name = Some(v.chars().take(200).collect());
            }
            (Some("email"), Some(v)) if email.is_none() && plausible_email(v) => {
                email = Some(v.trim().to_ascii_lowercase());
            }
            _ => {}
        }
    }
    (name, email)
}

/// An address lettre and a mail server can take: one `@`, no spaces or controls, bounded.
pub fn plausible_email(text: &str) -> bool {
    let text = text.trim();
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.contains('@')
        && text.len() <= 254
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | ',' | ';'))
}

/// A `links` entry pointing to another RDAP object (`related`/`up` with an RDAP type).
fn referral(base: &str, body: &Value) -> Option<String> {
    let links = body.get("links")?.as_array()?;
    links.iter().take(20).find_map(|link| {
        let rel = link.get("rel")?.as_str()?;
        let kind = link.get("type").and_then(Value::as_str).unwrap_or("");
        if !matches!(rel, "related" | "up") || !kind.contains("rdap") {
            return None;
        }
        let href = link.get("href")?.as_str()?;
        Url::parse(base).ok()?.join(href).ok().map(String::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn abuse_contact_is_found_nested_and_preferred() {
        let body = json!({
            "objectClassName": "ip network", "handle": "NET-1", "country": "NL",
            "entities": [{
                "roles": ["registrant"],
                "vcardArray": ["vcard", [["fn", {}, "text", "Example BV"],
                                         ["email", {}, "text", "noc@example.nl"]]],
                "entities": [{"roles": ["abuse"],
                              "vcardArray": ["vcard", [["email", {}, "text", "Abuse@Example.nl"]]]}]
            }]
        });
        let network = parse_network("u", &body).unwrap();
        assert_eq!(
            network.contacts,
            vec![
                ("abuse".to_owned(), "abuse@example.nl".to_owned()),
                ("registrant".to_owned(), "noc@example.nl".to_owned())
            ]
        );
        assert_eq!(network.organisation.as_deref(), Some("Example BV"));
    }

    #[test]
    fn hostile_answers_are_errors_or_empty_never_panics() {
        assert!(parse_network("u", &json!([1, 2])).is_err());
        assert!(parse_network("u", &json!({"objectClassName": "domain"})).is_err());
        let weird = json!({"entities": [1, "x", {"roles": 5, "vcardArray": "no"},
            {"roles": ["abuse"], "vcardArray": ["vcard", [["email"], ["email", {}, "text", "not an address"]]]}]});
        assert!(parse_network("u", &weird).unwrap().contacts.is_empty());
        let mut deep = json!({"roles": ["abuse"], "vcardArray": ["vcard", [["email", {}, "text", "deep@x.org"]]]});
        for _ in 0..50 {
            deep = json!({"roles": ["registrant"], "entities": [deep]});
        }
        let network = parse_network("u", &json!({"entities": [deep]})).unwrap();
        assert!(network.contacts.is_empty(), "too deep to be trusted");
        let wide: Vec<Value> = (0..10_000)
            .map(|i| json!({"roles": ["abuse"], "vcardArray": ["vcard", [["email", {}, "text", format!("a{i}@x.org")]]]}))
            .collect();
        let network = parse_network("u", &json!({"entities": wide})).unwrap();
        assert_eq!(network.contacts.len(), MAX_ENTITIES);
    }

    #[test]
    fn referral_resolves_relative_links_and_ignores_others() {
        let body = json!({"links": [{"rel": "self", "href": "x", "type": "application/rdap+json"},
            {"rel": "related", "href": "../other/ip/1.2.3.4", "type": "application/rdap+json"}]});
        assert_eq!(
            referral("http://r.example/rdap/ip/1.2.3.4", &body).as_deref(),
            Some("http://r.example/rdap/other/ip/1.2.3.4")
        );
        assert_eq!(referral("http://r.example/", &json!({"links": "x"})), None);
    }
}
