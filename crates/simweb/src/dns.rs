//! An authoritative DNS server (UDP, RFC 1035) for the simulated zones: A, AAAA (always
//! empty: the simulated web is IPv4), CNAME chains for aliases and CDN edges, NXDOMAIN for
//! unknown names, REFUSED outside the zones.
//!
//! Parsing is strict and bounded: any malformed packet gets FORMERR or is dropped. Must not
//! panic or answer for names outside the simulated TLDs.

use std::net::Ipv4Addr;
use std::sync::Arc;

use tokio::net::UdpSocket;

use crate::Shared;

/// Seconds: short, so moved sites show up quickly in real time.
const TTL: u32 = 5;
const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_SOA: u16 = 6;
const TYPE_MX: u16 = 15;
const TYPE_AAAA: u16 = 28;
const TYPE_ANY: u16 = 255;
const RCODE_FORMERR: u8 = 1;
const RCODE_NXDOMAIN: u8 = 3;
const RCODE_NOTIMP: u8 = 4;
const RCODE_REFUSED: u8 = 5;

pub async fn serve(socket: std::net::UdpSocket, shared: Arc<Shared>) {
    let Ok(socket) = UdpSocket::from_std(socket) else {
        return;
    };
    let mut buffer = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buffer).await else {
            continue;
        };
        let Some(packet) = buffer.get(..n) else {
            continue;
        };
        if let Some(reply) = answer(&shared, packet) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

struct Question {
    id: u16,
    flags: u16,
    name: String,
    /// The question section as received, echoed in the reply.
    raw: Vec<u8>,
    qtype: u16,
}

/// Records answering one name, in order: CNAME chain then A.
enum Lookup {
    Found {
        cnames: Vec<(String, String)>,
        a: Option<(String, Ipv4Addr)>,
        /// The mail exchanger, for providers' abuse-mail domains.
        mx: Option<String>,
    },
    NoSuchName,
    NotOurs,
}

pub fn answer(shared: &Shared, packet: &[u8]) -> Option<Vec<u8>> {
    let id = u16::from_be_bytes([*packet.first()?, *packet.get(1)?]);
    let flags = u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]);
    if packet.len() < 12 || flags & 0x8000 != 0 {
        return None; // Too short to answer, or a response: never reply to replies.
    }
    let opcode = (flags >> 11) & 0xF;
    if opcode != 0 {
        return Some(error_reply(id, flags, RCODE_NOTIMP));
    }
    let Some(question) = parse_question(packet, id, flags) else {
        return Some(error_reply(id, flags, RCODE_FORMERR));
    };
    let lookup = lookup(shared, &question.name);
    Some(build_reply(&question, lookup))
}

fn parse_question(packet: &[u8], id: u16, flags: u16) -> Option<Question> {
    let qdcount = u16::from_be_bytes([*packet.get(4)?, *packet.get(5)?]);
    if qdcount != 1 {
        return None;
    }
    let mut pos = 12;
    let mut labels = Vec::new();
    let mut total = 0usize;
    loop {
        let len = usize::from(*packet.get(pos)?);
        pos += 1;
        if len == 0 {
            break;
        }
        // Compression pointers and reserved label types have no place in a query name.
        if len > 63 {
            return None;
        }
        let label = packet.get(pos..pos + len)?;
        total += len + 1;
        if total > 255 || !label.iter().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*packet.get(pos)?, *packet.get(pos + 1)?]);
    let _qclass = u16::from_be_bytes([*packet.get(pos + 2)?, *packet.get(pos + 3)?]);
    let raw = packet.get(12..pos + 4)?.to_vec();
    Some(Question {
        id,
        flags,
        name: labels.join("."),
        raw,
        qtype,
    })
}

fn lookup(shared: &Shared, name: &str) -> Lookup {
    let world = &shared.world;
    let in_zone = world
        .tlds
        .iter()
        .any(|t| name == t || name.ends_with(&format!(".{t}")));
    if !in_zone {
        return Lookup::NotOurs;
    }
    let now = shared.clock.now();
    if let Some(site) = world.site_by_host(name) {
        let mut cnames = Vec::new();
        if name != site.host {
            cnames.push((name.to_owned(), site.host.clone()));
        }
        let a = match &site.cdn {
            Some(cdn) => {
                cnames.push((site.host.clone(), cdn.edge_name.clone()));
                (cdn.edge_name.clone(), cdn.ip)
            }
            None => {
                let ip = shared
                    .state
                    .lock()
                    .ok()
                    .and_then(|s| s.site_address(world, site.id, now))
                    .unwrap_or(site.ip);
                (site.host.clone(), ip)
            }
        };
        return Lookup::Found {
            cnames,
            a: Some(a),
            mx: None,
        };
    }
    if let Some(cdn) = world
        .sites
        .iter()
        .filter_map(|s| s.cdn.as_ref())
        .find(|c| c.edge_name == name)
    {
        return Lookup::Found {
            cnames: Vec::new(),
            a: Some((cdn.edge_name.clone(), cdn.ip)),
            mx: None,
        };
    }
    let mail_host = mail_exchanger(world);
    if name == mail_host {
        return Lookup::Found {
            cnames: Vec::new(),
            a: Some((mail_host, shared.infra_ip)),
            mx: None,
        };
    }
    let is_mail_domain = world.providers.iter().any(|p| {
        p.abuse_email
            .rsplit_once('@')
            .is_some_and(|(_, d)| d.eq_ignore_ascii_case(name))
    });
    if is_mail_domain {
        return Lookup::Found {
            cnames: Vec::new(),
            a: None,
            mx: Some(mail_host),
        };
    }
    if world.tlds.iter().any(|t| t == name) {
        return Lookup::Found {
            cnames: Vec::new(),
            a: None,
            mx: None,
        };
    }
    Lookup::NoSuchName
}

fn header(id: u16, query_flags: u16, rcode: u8, qd: u16, an: u16, ns: u16) -> Vec<u8> {
    // QR=1, AA=1, RD copied from the query, RA=0.
    let flags: u16 = 0x8000 | 0x0400 | (query_flags & 0x0100) | u16::from(rcode & 0xF);
    let mut out = Vec::with_capacity(512);
    for word in [id, flags, qd, an, ns, 0] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out
}

fn error_reply(id: u16, flags: u16, rcode: u8) -> Vec<u8> {
    header(id, flags, rcode, 0, 0, 0)
}

fn build_reply(q: &Question, lookup: Lookup) -> Vec<u8> {
    let (rcode, records) = match lookup {
        Lookup::NotOurs => (RCODE_REFUSED, Vec::new()),
        Lookup::NoSuchName => (RCODE_NXDOMAIN, Vec::new()),
        Lookup::Found { cnames, a, mx } => {
            let mut records: Vec<(String, u16, Vec<u8>)> = Vec::new();
            let wants_cname = matches!(q.qtype, TYPE_A | TYPE_AAAA | TYPE_CNAME | TYPE_ANY);
            let mut cname_chain = cnames.into_iter();
            // A CNAME query gets only the first link; address queries get the whole chain.
            if q.qtype == TYPE_CNAME {
                if let Some((owner, target)) = cname_chain.next() {
                    records.push((owner, TYPE_CNAME, encode_name(&target)));
                }
            } else if wants_cname {
                for (owner, target) in cname_chain {
                    records.push((owner, TYPE_CNAME, encode_name(&target)));
                }
                if matches!(q.qtype, TYPE_A | TYPE_ANY)
                    && let Some((owner, ip)) = a
                {
                    records.push((owner, TYPE_A, ip.octets().to_vec()));
                }
            }
            if matches!(q.qtype, TYPE_MX | TYPE_ANY)
                && let Some(exchanger) = mx
            {
                let mut data = 10u16.to_be_bytes().to_vec();
                data.extend_from_slice(&encode_name(&exchanger));
                records.push((q.name.clone(), TYPE_MX, data));
            }
            (0, records)
        }
    };
    // Negative answers carry the zone's SOA (RFC 2308), so resolvers can cache them.
    let negative = records.is_empty() && rcode != RCODE_REFUSED;
    let mut out = header(
        q.id,
        q.flags,
        rcode,
        1,
        records.len() as u16,
        u16::from(negative),
    );
    out.extend_from_slice(&q.raw);
    let zone = q.name.rsplit('.').next().unwrap_or("").to_owned();
    let authority = negative.then(|| (zone, TYPE_SOA, soa_rdata()));
    for (owner, rtype, data) in records.into_iter().chain(authority) {
        if owner == q.name {
            out.extend_from_slice(&[0xC0, 0x0C]); // pointer to the question name
        } else {
            out.extend_from_slice(&encode_name(&owner));
        }
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes()); // class IN
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&data);
    }
    out
}

/// The host that receives every provider's abuse mail (the world's SMTP server).
pub fn mail_exchanger(world: &crate::world::World) -> String {
    format!(
        "mx.simweb.{}",
        world.tlds.first().map_or("sim", String::as_str)
    )
}

fn soa_rdata() -> Vec<u8> {
    let mut data = encode_name("ns1.simweb-dns.sim");
    data.extend_from_slice(&encode_name("hostmaster.simweb-dns.sim"));
    for value in [1u32, 3600, 600, 86_400, TTL] {
        data.extend_from_slice(&value.to_be_bytes());
    }
    data
}

fn encode_name(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let bytes = label.as_bytes();
        let len = bytes.len().min(63);
        out.push(len as u8);
        out.extend_from_slice(bytes.get(..len).unwrap_or_default());
    }
    out.push(0);
    out
}
