//! Tiny real-socket clients for the tests: HTTP/1.1, DNS over UDP, SMTP. Written by hand so
//! the tests depend on nothing the simulated internet itself uses.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use aranea_simweb::{RunningWorld, SimWeb, scenario};

pub fn small(seed: u64) -> RunningWorld {
    SimWeb::new(scenario::load("small").unwrap())
        .seed(seed)
        .start()
        .unwrap()
}

/// The small world with a fast clock: a simulated day passes in about a second.
pub fn small_fast(seed: u64) -> RunningWorld {
    let mut s = scenario::load("small").unwrap();
    s.time_scale = 86_400.0;
    SimWeb::new(s).seed(seed).start().unwrap()
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Resolves `host` through the world's DNS server, then connects to the answer.
pub fn resolve(world: &RunningWorld, host: &str) -> Option<Ipv4Addr> {
    let (rcode, answers) = dns_query(world.dns_addr(), host, 1);
    assert_eq!(rcode, 0, "rcode for {host}");
    answers.into_iter().find_map(|(t, data)| {
        (t == 1 && data.len() == 4).then(|| Ipv4Addr::new(data[0], data[1], data[2], data[3]))
    })
}

pub fn get(world: &RunningWorld, host: &str, path: &str) -> HttpResponse {
    let ip = resolve(world, host).unwrap_or_else(|| panic!("{host} does not resolve"));
    raw_request(
        SocketAddr::from((ip, world.http_port())),
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
}

pub fn get_url(world: &RunningWorld, url: &str) -> HttpResponse {
    if let Some(rest) = url.strip_prefix("https://") {
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host = authority.split(':').next().unwrap();
        return get_tls(world, host, if path.is_empty() { "/" } else { path });
    }
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.split(':').next().unwrap();
    get(world, host, if path.is_empty() { "/" } else { path })
}

/// Sends raw bytes, reads the response head and as much body as Content-Length says (or to EOF).
pub fn raw_request(addr: SocketAddr, request: &str) -> HttpResponse {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    read_response(&mut stream)
}

pub fn read_response(stream: &mut TcpStream) -> HttpResponse {
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.push((k.to_owned(), v.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse::<usize>().unwrap());
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body).unwrap();
        }
        None => {
            reader.read_to_end(&mut body).unwrap();
        }
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// A DNS query by hand: returns the rcode and (type, rdata) of each answer.
pub fn dns_query(server: SocketAddr, name: &str, qtype: u16) -> (u8, Vec<(u16, Vec<u8>)>) {
    let mut packet = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.extend_from_slice(&[0, (qtype >> 8) as u8, qtype as u8, 0, 1]);
    let reply = dns_exchange(server, &packet).expect("no DNS reply");
    assert_eq!(&reply[..2], &[0x12, 0x34]);
    assert!(reply[2] & 0x80 != 0, "QR bit");
    let rcode = reply[3] & 0x0F;
    let ancount = u16::from_be_bytes([reply[6], reply[7]]);
    let nscount = u16::from_be_bytes([reply[8], reply[9]]);
    let mut pos = 12;
    pos = skip_name(&reply, pos) + 4;
    let mut answers = Vec::new();
    for _ in 0..ancount {
        pos = skip_name(&reply, pos);
        let rtype = u16::from_be_bytes([reply[pos], reply[pos + 1]]);
        let rdlen = u16::from_be_bytes([reply[pos + 8], reply[pos + 9]]) as usize;
        pos += 10;
        answers.push((rtype, reply[pos..pos + rdlen].to_vec()));
        pos += rdlen;
    }
    // Negative answers (NXDOMAIN, or no data) must carry the zone's SOA in the authority section.
    if ancount == 0 && (rcode == 0 || rcode == 3) {
        assert_eq!(nscount, 1, "negative answer without SOA");
        pos = skip_name(&reply, pos);
        assert_eq!(
            u16::from_be_bytes([reply[pos], reply[pos + 1]]),
            6,
            "authority record is not an SOA"
        );
    }
    (rcode, answers)
}

pub fn dns_exchange(server: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    dns_exchange_within(server, packet, Duration::from_millis(500))
}

pub fn dns_exchange_within(server: SocketAddr, packet: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    socket.send_to(packet, server).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

fn skip_name(packet: &[u8], mut pos: usize) -> usize {
    loop {
        let len = packet[pos] as usize;
        if len == 0 {
            return pos + 1;
        }
        if len & 0xC0 == 0xC0 {
            return pos + 2;
        }
        pos += len + 1;
    }
}

/// Decodes a DNS name in rdata (no compression expected there).
pub fn rdata_name(data: &[u8]) -> String {
    let mut labels = Vec::new();
    let mut pos = 0;
    while pos < data.len() && data[pos] != 0 {
        let len = data[pos] as usize;
        labels.push(String::from_utf8_lossy(&data[pos + 1..pos + 1 + len]).into_owned());
        pos += len + 1;
    }
    labels.join(".")
}

/// Every `src="…"`/`href="…"` value in a page.
pub fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            if let Some(end) = rest.find('"') {
                out.push(rest[..end].to_owned());
            }
        }
    }
    out
}

/// An SMTP conversation: sends each line, returns every reply line.
pub struct Smtp {
    reader: BufReader<TcpStream>,
}

impl Smtp {
    pub fn connect(addr: SocketAddr) -> Smtp {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut smtp = Smtp {
            reader: BufReader::new(stream),
        };
        assert!(smtp.reply().starts_with("220"));
        smtp
    }

    /// Reads one (possibly multi-line) reply.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    pub fn send(&mut self, line: &str) -> String {
        self.reader.get_mut().write_all(line.as_bytes()).unwrap();
        self.reader.get_mut().write_all(b"\r\n").unwrap();
        self.reply()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// A whole transaction; returns the reply to the end of DATA.
    pub fn mail(&mut self, from: &str, to: &str, body: &str) -> String {
        assert!(self.send(&format!("MAIL FROM:<{from}>")).starts_with("250"));
        let rcpt = self.send(&format!("RCPT TO:<{to}>"));
        assert!(rcpt.starts_with("250"), "{rcpt}");
        assert!(self.send("DATA").starts_with("354"));
        let mut data = String::new();
        for line in body.lines() {
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
            data.push_str("\r\n");
        }
        data.push('.');
        self.send(&data)
    }
}

/// Waits (real time) until `sim` has passed in the world.
pub fn wait_sim(world: &RunningWorld, sim: Duration) {
    let target = world.sim_now() + sim;
    while world.sim_now() < target {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TLS client that trusts only the world's CA, offering the given ALPN protocols.
pub fn tls_config(world: &RunningWorld, alpn: &[&[u8]]) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(world.ca_cert_pem().unwrap().as_bytes()).unwrap())
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    std::sync::Arc::new(config)
}

/// GET over TLS with HTTP/1.1, the certificate checked against the world's CA.
pub fn get_tls(world: &RunningWorld, host: &str, path: &str) -> HttpResponse {
    let ip = resolve(world, host).unwrap();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap();
    let connection =
        rustls::ClientConnection::new(tls_config(world, &[b"http/1.1"]), name).unwrap();
    let addr = SocketAddr::from((ip, world.https_port().unwrap()));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(connection, stream);
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}
