//! Every trap and misbehaviour, observed over real TCP connections, and hostile input to the
//! HTTP and DNS servers.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use aranea_simweb::{GZIP_BOMB_INFLATED, LENGTH_LIE_ACTUAL};
use common::*;

const ODD: &str = "odd-corner.sim";

fn addr(world: &aranea_simweb::RunningWorld, host: &str) -> SocketAddr {
    SocketAddr::from((resolve(world, host).unwrap(), world.http_port()))
}

/// Sends a GET and returns the raw bytes received until EOF or `limit`.
fn raw_get(world: &aranea_simweb::RunningWorld, host: &str, path: &str, limit: usize) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr(world, host)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while out.len() < limit {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

fn head_and_body(raw: &[u8]) -> (String, &[u8]) {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8_lossy(&raw[..end]).into_owned(),
        &raw[end + 4..],
    )
}

#[test]
fn robots_variants_are_served_as_declared() {
    let world = small(21);
    assert_eq!(
        get(&world, "sunny-gallery.sim", "/robots.txt").text(),
        "User-agent: *\nDisallow:\n"
    );
    assert!(
        get(&world, "oak-forum.sim", "/robots.txt")
            .text()
            .contains("Crawl-delay: 2")
    );
    assert!(
        get(&world, "harbor-pics.sim", "/robots.txt")
            .text()
            .contains("Disallow: /private/")
    );
    assert_eq!(
        get(&world, "members-only.test", "/robots.txt").text(),
        "User-agent: *\nDisallow: /\n"
    );
    let garbage = get(&world, "garden-notes.sim", "/robots.txt");
    assert_eq!(garbage.status, 200);
    assert!(
        garbage
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(get(&world, ODD, "/robots.txt").status, 404);
}

#[test]
fn redirects_chain_loop_and_point_at_private_and_other_hosts() {
    let world = small(22);
    let mut path = "/quirks/redirect/chain/5".to_owned();
    let mut hops = 0;
    loop {
        let r = get(&world, ODD, &path);
        if r.status == 200 {
            break;
        }
        assert!([301, 302, 307].contains(&r.status));
        path = r.header("location").unwrap().to_owned();
        hops += 1;
        assert!(hops < 10);
    }
    assert_eq!((hops, path.as_str()), (6, "/"));
    let a = get(&world, ODD, "/quirks/redirect/loop-a");
    let b = get(&world, ODD, a.header("location").unwrap());
    assert_eq!(b.header("location"), Some("/quirks/redirect/loop-a"));
    assert_eq!(
        get(&world, ODD, "/quirks/redirect/private").header("location"),
        Some("http://10.0.0.1/admin")
    );
    assert!(
        get(&world, ODD, "/quirks/redirect/metadata")
            .header("location")
            .unwrap()
            .starts_with("http://169.254.169.254/")
    );
    assert_eq!(
        get(&world, ODD, "/quirks/redirect/loopback").header("location"),
        Some("http://127.0.0.1/")
    );
    let other = get(&world, ODD, "/quirks/redirect/other-host");
    let target = other.header("location").unwrap();
    assert!(!target.contains(ODD) && target.ends_with(&format!(":{}/", world.http_port())));
    assert_eq!(get_url(&world, target).status, 200);
}

#[test]
fn bodies_lie_drip_and_never_end() {
    let world = small(23);
    // A body far larger than its Content-Length.
    let raw = raw_get(&world, ODD, "/quirks/length-lie.jpg", usize::MAX);
    let (head, body) = head_and_body(&raw);
    assert!(head.contains("Content-Length: 1024"));
    assert_eq!(body.len(), LENGTH_LIE_ACTUAL);
    // A body shorter than its Content-Length, then the connection closes.
    let raw = raw_get(&world, ODD, "/quirks/short-body.jpg", usize::MAX);
    let (head, body) = head_and_body(&raw);
    assert!(head.contains("Content-Length: 100000"));
    assert_eq!(body.len(), 1000);
    // An endless body: no length, and more bytes than any page has.
    let raw = raw_get(&world, ODD, "/quirks/endless.html", 32 * 1024 * 1024);
    let (head, _) = head_and_body(&raw);
    assert!(!head.to_ascii_lowercase().contains("content-length"));
    assert!(raw.len() >= 32 * 1024 * 1024);
    // A slow drip: after half a second only a few hundred of the declared 4096 bytes arrived.
    let mut stream = TcpStream::connect(addr(&world, ODD)).unwrap();
    stream
        .write_all(format!("GET /quirks/drip.html HTTP/1.1\r\nHost: {ODD}\r\n\r\n").as_bytes())
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_millis(500) {
        if let Ok(n) = stream.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    let (head, body) = head_and_body(&got);
    assert!(head.contains("Content-Length: 4096"));
    assert!(
        !body.is_empty() && body.len() < 200,
        "{} bytes after 500 ms",
        body.len()
    );
}

#[test]
fn the_gzip_bomb_inflates_a_thousandfold() {
    let world = small(24);
    let bomb = get(&world, ODD, "/quirks/gzip-bomb.html");
    assert_eq!(bomb.header("content-encoding"), Some("gzip"));
    let mut decoder = flate2::read::GzDecoder::new(&bomb.body[..]);
    let inflated = std::io::copy(&mut decoder, &mut std::io::sink()).unwrap();
    assert_eq!(inflated, GZIP_BOMB_INFLATED);
    assert!(
        inflated / bomb.body.len() as u64 > 500,
        "ratio {}",
        inflated / bomb.body.len() as u64
    );
}

#[test]
fn content_types_lie_and_broken_html_still_links() {
    let world = small(25);
    let no_type = get(&world, ODD, "/quirks/no-type.jpg");
    assert_eq!(no_type.status, 200);
    assert!(no_type.header("content-type").is_none());
    aranea_hash::hash_media(&no_type.body, &aranea_hash::Limits::default()).unwrap();
    let wrong = get(&world, ODD, "/quirks/wrong-type.html");
    assert!(
        wrong
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(wrong.body, no_type.body, "a known photo labelled as HTML");
    let html_as_image = get(&world, ODD, "/quirks/html-as-image.jpg");
    assert_eq!(html_as_image.header("content-type"), Some("image/jpeg"));
    assert!(html_as_image.text().starts_with("<html>"));
    let broken = get(&world, ODD, "/quirks/broken.html").text();
    assert!(broken.contains("<a href=/quirks/>") && !broken.contains("</html>"));
}

#[test]
fn the_calendar_and_session_traps_never_run_out_of_new_urls() {
    let world = small(26);
    let mut path = "/calendar/2026/01/".to_owned();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let page = get(&world, ODD, &path);
        assert_eq!(page.status, 200, "{path}");
        assert!(seen.insert(path.clone()));
        path = links(&page.text())
            .into_iter()
            .find(|l| l.starts_with("/calendar/") && !seen.contains(l) && !l.contains("day="))
            .unwrap();
    }
    // Walking "previous" links: 29 months back, and there is always one more.
    assert!(seen.contains("/calendar/2023/08/"), "{seen:?}");
    let index_links = links(&get(&world, ODD, "/").text());
    let mut shop = index_links
        .into_iter()
        .find(|l| l.starts_with("/shop/"))
        .unwrap();
    let mut urls = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let page = get(&world, ODD, &shop);
        assert_eq!(page.status, 200);
        assert!(urls.insert(shop.clone()));
        shop = links(&page.text())
            .into_iter()
            .find(|l| l.contains("sid="))
            .unwrap();
    }
    assert_eq!(urls.len(), 20);
}

#[test]
fn every_request_is_logged_per_host_with_real_and_simulated_time() {
    let world = small(27);
    get(&world, "sunny-gallery.sim", "/");
    get(&world, "sunny-gallery.sim", "/nope");
    get(&world, "oak-forum.sim", "/");
    let log = world.requests_for("sunny-gallery.sim");
    assert_eq!(log.len(), 2);
    assert_eq!((log[0].target.as_str(), log[0].status), ("/", 200));
    assert_eq!((log[1].target.as_str(), log[1].status), ("/nope", 404));
    assert!(log[0].unix_millis <= log[1].unix_millis && log[0].sim_at <= log[1].sim_at);
    assert_eq!(
        log[0].local.ip(),
        std::net::IpAddr::V4(resolve(&world, "sunny-gallery.sim").unwrap())
    );
}

#[test]
fn a_rate_limited_provider_answers_429_with_retry_after() {
    let world = small(28);
    let target = addr(&world, "harbor-pics.sim");
    let mut stream = TcpStream::connect(target).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut statuses = Vec::new();
    // 150 requests span at most a few one-second windows, so one window exceeds 40.
    for _ in 0..150 {
        stream
            .write_all(b"GET /robots.txt HTTP/1.1\r\nHost: harbor-pics.sim\r\n\r\n")
            .unwrap();
        let r = read_response(&mut stream);
        if r.status == 429 {
            assert_eq!(r.header("retry-after"), Some("2"));
        }
        statuses.push(r.status);
    }
    assert!(
        statuses.contains(&200) && statuses.contains(&429),
        "{statuses:?}"
    );
}

#[test]
fn hostile_http_requests_get_errors_and_the_server_keeps_serving() {
    let world = small(29);
    let target = addr(&world, "sunny-gallery.sim");
    let hostile: Vec<Vec<u8>> = vec![
        b"\r\n\r\n".to_vec(),
        b"GARBAGE\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: sunny-gallery.sim\r\nContent-Length: 99999999999\r\n\r\n"
            .to_vec(),
        b"GET / HTTP/1.1\r\nHost: sunny-gallery.sim\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
        format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(40_000)).into_bytes(),
        b"GET / HTTP/1.1\r\n\xff\xfe\xfd: \x00\r\n\r\n".to_vec(),
        (0..200)
            .flat_map(|i| format!("X-{i}: y\r\n").into_bytes())
            .collect(),
        b"POST / HTTP/1.1\r\nHost: sunny-gallery.sim\r\nContent-Length: 5\r\n\r\nabc".to_vec(),
        vec![0u8; 70_000],
    ];
    for bytes in &hostile {
        let mut stream = TcpStream::connect(target).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let _ = stream.write_all(bytes);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        if !reply.is_empty() {
            let status = String::from_utf8_lossy(&reply[..12.min(reply.len())]).into_owned();
            assert!(
                status.starts_with("HTTP/1.1 4"),
                "{status:?} for {:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
            );
        }
    }
    // Unknown Host and wrong method are answered, not dropped.
    let unknown = raw_request(
        target,
        "GET / HTTP/1.1\r\nHost: nowhere.sim\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(unknown.status, 404);
    let post = raw_request(
        target,
        "DELETE / HTTP/1.1\r\nHost: sunny-gallery.sim\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    assert_eq!(get(&world, "sunny-gallery.sim", "/").status, 200);
}

#[test]
fn hostile_dns_packets_never_stop_the_resolver() {
    let world = small(30);
    let dns = world.dns_addr();
    let mut packets: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x12],
        vec![0x12, 0x34, 0x01, 0x00],
        vec![
            0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1,
        ], // a response
        vec![
            0x12, 0x34, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1,
        ], // two questions
        vec![
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1,
        ], // pointer loop
        vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 63], // truncated label
        vec![
            0x12, 0x34, 0x29, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1,
        ], // opcode 5
    ];
    let mut long_name = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for _ in 0..10 {
        long_name.push(63);
        long_name.extend(std::iter::repeat_n(b'a', 63));
    }
    long_name.extend_from_slice(&[0, 0, 1, 0, 1]);
    packets.push(long_name);
    let mut seed = 0x1234_5678u64;
    for _ in 0..150 {
        let len = (seed % 100) as usize;
        let mut p = Vec::with_capacity(len);
        for _ in 0..len {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            p.push((seed >> 56) as u8);
        }
        if p.len() > 2 {
            p[2] &= 0x7F; // a query, so a reply is allowed
        }
        packets.push(p);
    }
    for p in &packets {
        if let Some(reply) = dns_exchange_within(dns, p, Duration::from_millis(30)) {
            assert!(reply.len() >= 12);
            assert!(reply[2] & 0x80 != 0);
        }
    }
    assert_eq!(dns_query(dns, "sunny-gallery.sim", 1).0, 0);
}
