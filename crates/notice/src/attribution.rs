//! Who hosts a URL and how to reach them: DNS → IP addresses → ASN and prefix (iptoasn
//! table) → RDAP abuse contact of the IP network → provider, with operator overrides, CDN
//! detection and routing to the hotline responsible for the hosting country.
//!
//! The result records how it was found (`method`) and how sure it is (`confidence_pct`),
//! so an analyst can tell an RDAP abuse desk from a guess. Must not send anything: it only
//! looks up.

use std::net::IpAddr;
use std::sync::Arc;

use aranea_crawl::ssrf::{AddressPolicy, GuardConfig, GuardedResolver};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::asn::AsnDb;
use crate::clock::UnixMillis;
use crate::config::NoticeConfig;
use crate::rdap::{RdapClient, plausible_email};

/// One way to reach a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// `smtp` or `webhook`.
    pub channel: String,
    /// An email address or a webhook URL.
    pub address: String,
    /// Where it came from (`abuse`, `technical`, `override`, `cdn`, …).
    pub role: String,
}

/// The outcome of attribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribution {
    pub host: String,
    pub ips: Vec<IpAddr>,
    pub provider_key: String,
    pub provider_name: String,
    pub asn: Option<u32>,
    pub prefix: Option<String>,
    pub country: Option<String>,
    /// Hotline id ([`crate::config::OWN_HOTLINE`]: the platform's own).
    pub hotline: String,
    pub via_cdn: Option<String>,
    pub method: String,
    pub confidence_pct: u8,
    pub contacts: Vec<Contact>,
    pub upstream_contact: Option<String>,
}

/// Why a URL could not be attributed (retried on a later pass).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributionError {
    #[error("URL {url:?} has no host")]
    NoHost { url: String },
    #[error("resolving {host}: {message}")]
    Dns { host: String, message: String },
}

/// Attribution with its data sources.
pub struct Attributor {
    config: Arc<NoticeConfig>,
    /// Rebuilt by [`Attributor::refresh`] every pass: a cached answer from a day ago must
    /// not keep a moved site attributed to its old host.
    resolver: std::sync::RwLock<GuardedResolver>,
    guard: GuardConfig,
    policy: Arc<AddressPolicy>,
    asn: Option<Arc<AsnDb>>,
    rdap: RdapClient,
    cdn_ranges: Vec<(String, IpNet)>,
}

impl Attributor {
    pub fn new(
        config: Arc<NoticeConfig>,
        guard: GuardConfig,
        policy: Arc<AddressPolicy>,
        resolver: GuardedResolver,
        asn: Option<Arc<AsnDb>>,
        rdap: RdapClient,
    ) -> Attributor {
        let cdn_ranges = config
            .cdns
            .iter()
            .flat_map(|cdn| {
                cdn.ranges
                    .iter()
                    .filter_map(|r| r.parse::<IpNet>().ok())
                    .map(|net| (cdn.name.clone(), net))
                    .collect::<Vec<_>>()
            })
            .collect();
        Attributor {
            config,
            resolver: std::sync::RwLock::new(resolver),
            guard,
            policy,
            asn,
            rdap,
            cdn_ranges,
        }
    }

    /// A fresh resolver (empty DNS cache) for the next pass.
    pub fn refresh(&self) {
        if let Ok(fresh) = GuardedResolver::new(&self.guard, self.policy.clone())
            && let Ok(mut resolver) = self.resolver.write()
        {
            *resolver = fresh;
        }
    }

    /// Re-reads the ASN table and the RDAP bootstrap files if they changed (a bad
    /// replacement keeps the data in use; see [`crate::reload`]).
    pub fn reload_data(&self) -> [crate::reload::Reload; 2] {
        let asn = match &self.asn {
            Some(db) => db.reload(),
            None => crate::reload::Reload::Unchanged,
        };
        [asn, self.rdap.reload_bootstrap()]
    }

    /// Why a replaced data file (ASN table, RDAP bootstrap) was refused, while the data
    /// loaded before it stays in use; empty when all are current.
    pub fn data_errors(&self) -> Vec<String> {
        let asn = self
            .asn
            .as_ref()
            .and_then(|db| db.last_error())
            .map(|e| e.to_string());
        asn.into_iter().chain(self.rdap.bootstrap_error()).collect()
    }

    /// Attributes the host of `url`.
    pub async fn attribute(
        &self,
        url: &str,
        now: UnixMillis,
    ) -> Result<Attribution, AttributionError> {
        let parsed = url::Url::parse(url).map_err(|_| AttributionError::NoHost {
            url: url.to_owned(),
        })?;
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => {
                return Err(AttributionError::NoHost {
                    url: url.to_owned(),
                });
            }
        };
        let ips =
            match host.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => {
                    let resolver = self.resolver.read().map(|r| r.clone()).map_err(|_| {
                        AttributionError::Dns {
                            host: host.clone(),
                            message: "resolver unavailable".to_owned(),
                        }
                    })?;
                    resolver
                        .resolve_checked(&host)
                        .await
                        .map_err(|e| AttributionError::Dns {
                            host: host.clone(),
                            message: e.to_string(),
                        })?
                }
            };
        let mut found = self.by_network(&host, &ips, now).await;
        self.apply_overrides(&mut found);
        let (hotline, _) = self.config.hotline_for(found.country.as_deref());
        found.hotline = hotline;
        if let Some(hook) = self.config.webhooks.get(&found.provider_name)
            && found.via_cdn.is_none()
        {
            found.contacts.insert(
                0,
                Contact {
                    channel: "webhook".to_owned(),
                    address: hook.url.clone(),
                    role: "webhook".to_owned(),
                },
            );
        }
        Ok(found)
    }

    async fn by_network(&self, host: &str, ips: &[IpAddr], now: UnixMillis) -> Attribution {
        let ip = ips.first().copied();
        let range = ip.and_then(|ip| {
            self.asn
                .as_ref()
                .and_then(|db| db.table().lookup(ip).cloned())
        });
        let asn = range.as_ref().map(|r| r.asn);
        let cdn = ip.and_then(|ip| self.cdn_of(ip, asn));
        let mut found = Attribution {
            host: host.to_owned(),
            ips: ips.to_vec(),
            provider_key: asn.map_or_else(|| format!("host:{host}"), |a| format!("asn:{a}")),
            provider_name: range
                .as_ref()
                .map_or_else(|| host.to_owned(), |r| r.description.clone()),
            asn,
            prefix: range.as_ref().map(|r| r.prefix()),
            country: range.as_ref().and_then(|r| r.country.clone()),
            hotline: String::new(),
            via_cdn: None,
            method: if asn.is_some() { "asn" } else { "dns" }.to_owned(),
            confidence_pct: if asn.is_some() { 30 } else { 10 },
            contacts: Vec::new(),
            upstream_contact: asn.and_then(|a| self.config.upstreams.get(&a.to_string()).cloned()),
        };
        let network = match ip {
            Some(ip) => Some(self.rdap.network(ip, now).await),
            None => None,
        };
        if let Some(Ok(network)) = &network {
            if let Some(name) = network.organisation.clone().or(network.name.clone()) {
                found.provider_name = name;
            }
            if found.country.is_none() {
                found.country = network.country.clone();
            }
            if found.asn.is_none()
                && let Some(handle) = &network.handle
            {
                found.provider_key = format!("rdap:{handle}");
            }
            found.contacts = network
                .contacts
                .iter()
                .map(|(role, email)| Contact {
                    channel: "smtp".to_owned(),
                    address: email.clone(),
                    role: role.clone(),
                })
                .collect();
            let abuse = network.best_role() == Some("abuse");
            found.method = if abuse { "rdap_abuse" } else { "rdap_fallback" }.to_owned();
            found.confidence_pct = match (abuse, found.contacts.is_empty()) {
                (true, _) => 90,
                (false, false) => 60,
                (false, true) => 30,
            };
        }
        if let Some(cdn) = cdn {
            found.provider_key = format!("cdn:{}", cdn.name);
            found.provider_name = cdn.name.clone();
            found.via_cdn = Some(cdn.name.clone());
            found.method = "cdn".to_owned();
            if let Some(email) = &cdn.email {
                found.contacts = vec![Contact {
                    channel: "smtp".to_owned(),
                    address: email.clone(),
                    role: "cdn".to_owned(),
                }];
            }
            if let Some(hook) = self.config.webhooks.get(&cdn.name) {
                found.contacts.insert(
                    0,
                    Contact {
                        channel: "webhook".to_owned(),
                        address: hook.url.clone(),
                        role: "webhook".to_owned(),
                    },
                );
            }
        }
        found
    }

    fn cdn_of(&self, ip: IpAddr, asn: Option<u32>) -> Option<&crate::config::CdnConfig> {
        let by_range = self
            .cdn_ranges
            .iter()
            .find(|(_, net)| net.contains(&ip))
            .map(|(name, _)| name.clone());
        self.config.cdns.iter().find(|cdn| {
            by_range.as_deref() == Some(cdn.name.as_str())
                || asn.is_some_and(|a| cdn.asns.contains(&a))
        })
    }

    /// Operator overrides win over what the network says: domain (and its parents), then
    /// ASN, then provider name.
    fn apply_overrides(&self, found: &mut Attribution) {
        let mut keys: Vec<(String, &str)> = Vec::new();
        let mut domain = found.host.as_str();
        loop {
            keys.push((format!("domain:{domain}"), "override:domain"));
            match domain.split_once('.') {
                Some((_, parent)) if parent.contains('.') => domain = parent,
                _ => break,
            }
        }
        if let Some(asn) = found.asn {
            keys.push((format!("asn:{asn}"), "override:asn"));
        }
        keys.push((
            format!("provider:{}", found.provider_name),
            "override:provider",
        ));
        let Some((ov, method)) = keys
            .iter()
            .find_map(|(key, method)| self.config.overrides.get(key).map(|o| (o, *method)))
        else {
            return;
        };
        if let Some(name) = &ov.provider {
            found.provider_name = name.clone();
            found.provider_key = format!("provider:{name}");
        }
        let mut contacts: Vec<Contact> = ov
            .webhook
            .iter()
            .map(|url| Contact {
                channel: "webhook".to_owned(),
                address: url.clone(),
                role: "override".to_owned(),
            })
            .collect();
        contacts.extend(
            ov.emails
                .iter()
                .filter(|e| plausible_email(e))
                .map(|email| Contact {
                    channel: "smtp".to_owned(),
                    address: email.clone(),
                    role: "override".to_owned(),
                }),
        );
        if !contacts.is_empty() {
            found.contacts = contacts;
        }
        found.method = method.to_owned();
        found.confidence_pct = 100;
    }
}
