//! The infrastructure web server: RDAP (RFC 9083 JSON) for IP networks, domains and
//! autonomous systems, and the providers' notice webhooks.
//!
//! RDAP answers the way registries do: some put the abuse contact at the top level (RIPE
//! style), others nest it under the registrant (ARIN style), so clients must walk entities.
//! Must not reveal ground truth a real registry would not know (e.g. the origin behind a CDN).

use std::net::Ipv4Addr;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::Shared;
use crate::behaviour;
use crate::http::{Request, Response, Service};
use crate::state::Channel;
use crate::world::Provider;

const RDAP_TYPE: &str = "application/rdap+json";

pub struct InfraService {
    pub shared: Arc<Shared>,
}

impl Service for InfraService {
    async fn call(&self, request: Request) -> Response {
        let path = request.path().to_owned();
        if let Some(slug) = path.strip_prefix("/webhook/") {
            return self.webhook(slug, &request);
        }
        if request.method != "GET" && request.method != "HEAD" {
            return Response::text(405, "method not allowed");
        }
        let Some(query) = path.strip_prefix("/rdap/") else {
            return Response::text(404, "not found");
        };
        let world = &self.shared.world;
        let found = if let Some(addr) = query.strip_prefix("ip/") {
            addr.parse::<Ipv4Addr>()
                .ok()
                .and_then(|ip| self.ip_network(ip))
        } else if let Some(name) = query.strip_prefix("domain/") {
            self.domain(name)
        } else if let Some(asn) = query.strip_prefix("autnum/") {
            asn.parse::<u32>()
                .ok()
                .and_then(|asn| world.providers.iter().find(|p| p.asn == asn))
                .map(autnum)
        } else {
            None
        };
        match found {
            Some(body) => rdap(200, &body),
            None => rdap(
                404,
                &json!({"errorCode": 404, "title": "Not Found", "description": ["No matching object."]}),
            ),
        }
    }
}

fn rdap(status: u16, body: &Value) -> Response {
    Response::new(status, Some(RDAP_TYPE), body.to_string().into_bytes())
}

impl InfraService {
    fn webhook(&self, slug: &str, request: &Request) -> Response {
        if request.method != "POST" {
            return Response::text(405, "POST notices here").with_header("Allow", "POST");
        }
        let Some(provider) = self
            .shared
            .world
            .providers
            .iter()
            .find(|p| p.webhook && p.slug == slug)
        else {
            return Response::new(
                404,
                Some("application/json"),
                br#"{"error":"no such webhook"}"#.to_vec(),
            );
        };
        let raw = String::from_utf8_lossy(&request.body).into_owned();
        let key = request
            .header("idempotency-key")
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 256)
            .map(str::to_owned);
        let index = behaviour::receive(
            &self.shared,
            behaviour::Arrival {
                channel: Channel::Webhook,
                provider: provider.id,
                from: String::new(),
                to: vec![request.target.clone()],
                raw,
                key,
                tls: request.tls,
                authenticated: None,
            },
        );
        Response::new(
            202,
            Some("application/json"),
            json!({"status": "received", "ticket": format!("SIM-{index:06}")})
                .to_string()
                .into_bytes(),
        )
    }

    fn ip_network(&self, ip: Ipv4Addr) -> Option<Value> {
        let (provider, block) = self.shared.world.provider_of_ip(ip)?;
        let handle = format!(
            "NET-{}-{}",
            block.base.to_string().replace('.', "-"),
            block.prefix
        );
        let mut body = json!({
            "rdapConformance": ["rdap_level_0", "nro_rdap_profile_0"],
            "objectClassName": "ip network",
            "handle": handle,
            "startAddress": block.base.to_string(),
            "endAddress": block.last().to_string(),
            "ipVersion": "v4",
            "name": format!("{}-NET", provider.slug.to_uppercase()),
            "type": "ALLOCATED PA",
            "country": provider.country,
            "status": ["active"],
            "notices": [{"title": "Terms of Use", "description": ["Simulated registry data for testing."]}],
        });
        if let Some(map) = body.as_object_mut() {
            map.insert("entities".to_owned(), provider_entities(provider));
        }
        Some(body)
    }

    fn domain(&self, name: &str) -> Option<Value> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let site = self.shared.world.site_by_host(&name)?;
        Some(json!({
            "rdapConformance": ["rdap_level_0", "icann_rdap_response_profile_0"],
            "objectClassName": "domain",
            "handle": format!("D{}-SIM", site.id + 1000),
            "ldhName": site.host,
            "status": ["client transfer prohibited"],
            "nameservers": [
                {"objectClassName": "nameserver", "ldhName": "ns1.simweb-dns.sim"},
                {"objectClassName": "nameserver", "ldhName": "ns2.simweb-dns.sim"},
            ],
            "events": [{"eventAction": "registration", "eventDate": "2024-03-01T00:00:00Z"}],
            "entities": [{
                "objectClassName": "entity",
                "handle": "9999",
                "roles": ["registrar"],
                "vcardArray": vcard("Simulated Registrar Inc.", "org", None),
                "entities": [{
                    "objectClassName": "entity",
                    "roles": ["abuse"],
                    "vcardArray": vcard("Registrar Abuse Desk", "group", Some("abuse@registrar.sim")),
                }],
            }],
        }))
    }
}

fn autnum(provider: &Provider) -> Value {
    json!({
        "rdapConformance": ["rdap_level_0"],
        "objectClassName": "autnum",
        "handle": format!("AS{}", provider.asn),
        "startAutnum": provider.asn,
        "endAutnum": provider.asn,
        "name": provider.slug.to_uppercase(),
        "country": provider.country,
        "entities": provider_entities(provider),
    })
}

/// Registrant plus abuse contact; even provider ids nest the abuse entity (ARIN style).
fn provider_entities(provider: &Provider) -> Value {
    let abuse = json!({
        "objectClassName": "entity",
        "handle": format!("{}-ABUSE", provider.slug.to_uppercase()),
        "roles": ["abuse"],
        "vcardArray": vcard(&format!("{} Abuse", provider.name), "group", Some(&provider.abuse_email)),
    });
    let mut registrant = json!({
        "objectClassName": "entity",
        "handle": format!("ORG-{}", provider.slug.to_uppercase()),
        "roles": ["registrant"],
        "vcardArray": vcard(&provider.name, "org", None),
    });
    if provider.id.is_multiple_of(2) {
        if let Some(map) = registrant.as_object_mut() {
            map.insert("entities".to_owned(), json!([abuse]));
        }
        json!([registrant])
    } else {
        json!([registrant, abuse])
    }
}

/// A jCard (RFC 7095) as RDAP carries it.
fn vcard(full_name: &str, kind: &str, email: Option<&str>) -> Value {
    let mut props = vec![
        json!(["version", {}, "text", "4.0"]),
        json!(["fn", {}, "text", full_name]),
        json!(["kind", {}, "text", kind]),
    ];
    if let Some(email) = email {
        props.push(json!(["email", {"type": "work"}, "text", email]));
    }
    json!(["vcard", props])
}
