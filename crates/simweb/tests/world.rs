//! The world over real sockets: determinism, DNS, pages linking images, the bank file.

mod common;

use std::time::Duration;

use aranea_simweb::world::Transform;
use aranea_simweb::{SimWeb, scenario};
use common::*;

/// Fetches every page and image of a few sites; returns (url, body) in a stable order.
fn crawl_sample(world: &aranea_simweb::RunningWorld) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for site in world.world().sites.iter().take(6) {
        for page in &site.pages {
            out.push((
                format!("{}{}", site.host, page.path),
                get(world, &site.host, &page.path).body,
            ));
        }
    }
    for image in world.images_at(Duration::ZERO).iter().step_by(3) {
        out.push((
            format!("{}{}", image.host, image.path),
            get_url(world, &image.url).body,
        ));
    }
    out
}

#[test]
fn same_seed_gives_a_byte_identical_world_and_another_seed_does_not() {
    let a = small(7);
    let b = small(7);
    let c = small(8);
    assert_ne!(a.http_port(), b.http_port());
    let sample_a = crawl_sample(&a);
    let sample_b = crawl_sample(&b);
    assert!(sample_a.len() > 40, "sample too small: {}", sample_a.len());
    for ((url_a, body_a), (url_b, body_b)) in sample_a.iter().zip(&sample_b) {
        assert_eq!(url_a, url_b);
        // Pages embed no port (links are absolute paths), so bodies compare byte for byte.
        assert!(body_a == body_b, "{url_a} differs between two starts");
    }
    assert_eq!(sample_a.len(), sample_b.len());
    let bank_a = std::fs::read(a.bank_path()).unwrap();
    assert_eq!(bank_a, std::fs::read(b.bank_path()).unwrap());
    assert_ne!(bank_a, std::fs::read(c.bank_path()).unwrap());
    assert_ne!(
        crawl_sample(&c)
            .iter()
            .map(|(u, _)| u.clone())
            .collect::<Vec<_>>(),
        sample_a.iter().map(|(u, _)| u.clone()).collect::<Vec<_>>()
    );
}

#[test]
fn dns_answers_a_cname_nxdomain_and_refuses_other_zones() {
    let world = small(1);
    let site = world
        .world()
        .site_by_host("sunny-gallery.sim")
        .unwrap()
        .clone();
    let (rcode, answers) = dns_query(world.dns_addr(), "sunny-gallery.sim", 1);
    assert_eq!(rcode, 0);
    assert_eq!(answers, vec![(1, site.ip.octets().to_vec())]);
    // Case-insensitive, alias answered with CNAME then A.
    let (rcode, answers) = dns_query(world.dns_addr(), "WWW.Sunny-Gallery.sim", 1);
    assert_eq!(rcode, 0);
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0].0, 5);
    assert_eq!(rdata_name(&answers[0].1), "sunny-gallery.sim");
    assert_eq!(answers[1], (1, site.ip.octets().to_vec()));
    // A CDN-fronted site resolves through the CDN's edge name to the CDN's address.
    let (_, answers) = dns_query(world.dns_addr(), "shielded-pics.sim", 1);
    let edge = world
        .world()
        .site_by_host("shielded-pics.sim")
        .unwrap()
        .cdn
        .clone()
        .unwrap();
    assert_eq!(
        answers.first().map(|a| rdata_name(&a.1)),
        Some(edge.edge_name.clone())
    );
    assert_eq!(
        answers.last().map(|a| a.1.clone()),
        Some(edge.ip.octets().to_vec())
    );
    assert!(world.world().provider_by_name("EdgeShield").unwrap().blocks[0].contains(edge.ip));
    // AAAA: the name exists, no IPv6 records.
    let (rcode, answers) = dns_query(world.dns_addr(), "sunny-gallery.sim", 28);
    assert_eq!((rcode, answers.len()), (0, 0));
    assert_eq!(dns_query(world.dns_addr(), "nope.sim", 1).0, 3);
    // Abuse-mail domains have an MX pointing at the world's SMTP server.
    let (rcode, answers) = dns_query(world.dns_addr(), "quickhost.sim", 15);
    assert_eq!((rcode, answers.len(), answers[0].0), (0, 1, 15));
    assert_eq!(rdata_name(&answers[0].1[2..]), "mx.simweb.sim");
    let (_, answers) = dns_query(world.dns_addr(), "harbor-networks.sim", 15);
    assert_eq!(rdata_name(&answers[0].1[2..]), "mx.simweb.sim");
    let smtp_ip = match world.smtp_addr().ip() {
        std::net::IpAddr::V4(ip) => ip,
        other => panic!("{other}"),
    };
    assert_eq!(resolve(&world, "mx.simweb.sim"), Some(smtp_ip));
    assert_eq!(dns_query(world.dns_addr(), "example.com", 1).0, 5);
}

#[test]
fn pages_link_images_that_decode_and_known_originals_are_in_the_bank() {
    let world = small(3);
    let index = get(&world, "sunny-gallery.sim", "/");
    assert_eq!(index.status, 200);
    assert!(
        index
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let album = links(&index.text())
        .into_iter()
        .find(|l| l.starts_with("/album/"))
        .unwrap();
    let page = get(&world, "sunny-gallery.sim", &album);
    assert_eq!(page.status, 200);
    let srcs: Vec<String> = links(&page.text())
        .into_iter()
        .filter(|l| l.starts_with("/images/") || l.starts_with("/thumbs/"))
        .collect();
    assert!(!srcs.is_empty());
    for src in &srcs {
        let image = get(&world, "sunny-gallery.sim", src);
        assert_eq!(image.status, 200, "{src}");
        assert!(image.header("content-type").unwrap().starts_with("image/"));
        aranea_hash::hash_media(&image.body, &aranea_hash::Limits::default()).unwrap();
    }
    // Every known original that is served unchanged has its SHA-256 and PDQ in the bank.
    let bank = std::fs::read_to_string(world.bank_path()).unwrap();
    assert!(bank.starts_with("signal_type,signal_value\n"));
    assert_eq!(
        bank.lines().filter(|l| l.starts_with("pdq,")).count(),
        world.world().known.len()
    );
    let known_original = world
        .images_at(Duration::ZERO)
        .into_iter()
        .find(|i| i.known && i.transform == Transform::Original && i.cdn.is_none())
        .expect("a known original is served somewhere");
    let bytes = get_url(&world, &known_original.url).body;
    let hashes = aranea_hash::hash_media(&bytes, &aranea_hash::Limits::default()).unwrap();
    assert!(bank.contains(&format!("sha256,{}", hashes.sha256_hex())));
    assert!(bank.contains(&format!("md5,{}", hashes.md5_hex())));
    assert!(bank.contains(&format!("pdq,{}", hashes.pdq.unwrap().hash.to_hex())));
    // Transformed copies of known photos are not byte-identical but stay close in PDQ.
    let known_pdqs: Vec<aranea_hash::PdqHash> = bank
        .lines()
        .filter_map(|l| l.strip_prefix("pdq,"))
        .map(|h| aranea_hash::PdqHash::from_hex(h).unwrap())
        .collect();
    let mut checked = 0;
    for copy in world
        .images_at(Duration::ZERO)
        .into_iter()
        .filter(|i| i.known && i.transform != Transform::Original)
    {
        let hashes = aranea_hash::hash_media(
            &get_url(&world, &copy.url).body,
            &aranea_hash::Limits::default(),
        )
        .unwrap();
        assert!(
            !bank.contains(&hashes.sha256_hex()),
            "a transformed copy has the original's bytes"
        );
        let pdq = hashes.pdq.unwrap().hash;
        let nearest = known_pdqs
            .iter()
            .map(|k| k.hamming_distance(&pdq))
            .min()
            .unwrap();
        assert_eq!(world.pdq_distance_to_bank(&copy.url), Some(nearest));
        // Re-encoding, resizing and format changes keep PDQ close; crops, watermarks and
        // thumbnails are the hard cases and may drift past the threshold.
        if matches!(
            copy.transform,
            Transform::Reencode { .. } | Transform::Resize { .. } | Transform::ConvertPng
        ) {
            assert!(
                nearest <= 31,
                "{:?} copy {} is {nearest} bits from the nearest known hash",
                copy.transform,
                copy.url
            );
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} transformed known copies");
}

#[test]
fn ip_to_asn_table_covers_every_provider_block() {
    let world = small(1);
    let table = std::fs::read_to_string(world.ip_to_asn_path()).unwrap();
    let blocks: usize = world.world().providers.iter().map(|p| p.blocks.len()).sum();
    assert_eq!(table.lines().count(), blocks);
    let line = table.lines().find(|l| l.contains("64501")).unwrap();
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(
        fields,
        vec!["127.10.1.0", "127.10.1.255", "64501", "NL", "QUICKHOST"]
    );
}

#[test]
fn demo_scenario_meets_its_size_promises() {
    let started = std::time::Instant::now();
    let world = SimWeb::new(scenario::load("demo").unwrap())
        .seed(1)
        .start()
        .unwrap();
    eprintln!("demo world started in {:?}", started.elapsed());
    let w = world.world();
    let countries: std::collections::BTreeSet<&str> =
        w.providers.iter().map(|p| p.country.as_str()).collect();
    let pages: usize = w.sites.iter().map(|s| s.pages.len()).sum();
    assert!(w.providers.len() >= 30, "{} providers", w.providers.len());
    assert!(countries.len() >= 10, "{} countries", countries.len());
    assert!(w.sites.len() >= 200, "{} sites", w.sites.len());
    assert!(pages >= 5000, "{pages} pages");
    assert!(w.items.len() >= 5000, "{} images", w.items.len());
    assert!(w.items.iter().any(|i| i.known));
    // A generated site answers over the network like a small one does.
    let site = w.sites.iter().find(|s| s.cdn.is_none()).unwrap();
    assert_eq!(get(&world, &site.host, "/").status, 200);
}

#[test]
fn prerendered_media_are_served_as_if_rendered_on_request() {
    let on_request = small(7);
    let prerendered = small(7);
    let items = prerendered.world().items.len();
    assert!(items > 40, "world too small: {items} items");
    assert_eq!(prerendered.prerender_media().unwrap(), items);
    let cold = on_request.images_at(Duration::ZERO);
    let warm = prerendered.images_at(Duration::ZERO);
    assert_eq!(cold.len(), warm.len());
    for (a, b) in cold.iter().zip(&warm).step_by(4) {
        assert_eq!(a.path, b.path);
        let (cold_body, warm_body) = (
            get_url(&on_request, &a.url).body,
            get_url(&prerendered, &b.url).body,
        );
        assert!(!warm_body.is_empty());
        assert_eq!(cold_body, warm_body, "{}", b.url);
    }
}
