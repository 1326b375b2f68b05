//! Notices over real SMTP and webhooks, and what providers do with them on the fast clock.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use aranea_simweb::{Channel, ItemStatus, RemovalKind, RunningWorld};
use common::*;

/// Known image URLs of a site, live at time zero.
fn known_images(world: &RunningWorld, host: &str) -> Vec<String> {
    world
        .images_at(Duration::ZERO)
        .into_iter()
        .filter(|i| i.host == host && i.known)
        .map(|i| i.url)
        .collect()
}

fn notice_body(urls: &[String]) -> String {
    let mut body =
        String::from("Subject: Notice of child sexual abuse material\r\n\r\nPlease remove:\r\n");
    for u in urls {
        body.push_str(&format!("  - {u}\r\n"));
    }
    body.push_str(".leading dot line\r\n");
    body
}

#[test]
fn an_emailed_notice_gets_the_named_urls_removed_on_the_fast_clock() {
    let world = small_fast(11);
    let urls = known_images(&world, "sunny-gallery.sim");
    assert!(urls.len() >= 2);
    let (named, spared) = urls.split_at(1);
    for u in &urls {
        assert_eq!(get_url(&world, u).status, 200);
    }
    let mut smtp = Smtp::connect(world.smtp_addr());
    assert!(smtp.send("EHLO crawler.test").contains("250 "));
    let reply = smtp.mail(
        "hotline@aranea.test",
        "abuse@quickhost.sim",
        &notice_body(named),
    );
    assert!(reply.starts_with("250"), "{reply}");
    assert!(smtp.send("QUIT").starts_with("221"));

    let notices = world.notices();
    assert_eq!(notices.len(), 1);
    let notice = &notices[0];
    assert_eq!(notice.channel, Channel::Smtp);
    assert_eq!(notice.urls, named.to_vec());
    assert!(
        notice.raw.contains("\r\n.leading dot line\r\n"),
        "dot-unstuffed: {:?}",
        notice.raw
    );
    let removals = world.removals();
    assert_eq!(removals.len(), 1);
    assert_eq!(removals[0].url, named[0]);
    assert_eq!(removals[0].provider, "Quickhost");
    // Quickhost removes within 1–6 simulated hours.
    let delay = removals[0].at - notice.received_at;
    assert!(
        delay >= Duration::from_secs(3600) && delay <= Duration::from_secs(6 * 3600),
        "{delay:?}"
    );
    wait_sim(
        &world,
        removals[0].at.saturating_sub(world.sim_now()) + Duration::from_secs(60),
    );
    assert_eq!(get_url(&world, &named[0]).status, 404);
    assert_eq!(
        world.image_at(&named[0], world.sim_now()).unwrap().status,
        ItemStatus::Gone
    );
    assert_eq!(
        world.image_at(&named[0], Duration::ZERO).unwrap().status,
        ItemStatus::Live
    );
    for u in spared {
        assert_eq!(get_url(&world, u).status, 200, "{u} was not named");
    }
}

#[test]
fn a_webhook_notice_in_json_reaches_the_provider() {
    let world = small_fast(12);
    let urls = known_images(&world, "sunny-gallery.sim");
    let hook = world.webhook_url("Quickhost").unwrap();
    assert!(world.webhook_url("Slowpoke Hosting").is_none());
    let body =
        serde_json::json!({"Category": "content", "Type": "csam", "Source": {"Url": urls[0]}})
            .to_string();
    let rest = hook.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let response = raw_request(
        authority.parse().unwrap(),
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(response.status, 202, "{}", response.text());
    let notices = world.notices();
    assert_eq!(notices[0].channel, Channel::Webhook);
    assert_eq!(notices[0].urls, vec![urls[0].clone()]);
    assert_eq!(world.removals()[0].url, urls[0]);
}

#[test]
fn an_ignoring_provider_keeps_serving_and_a_wrong_provider_does_nothing() {
    let world = small_fast(13);
    let forum = known_images(&world, "oak-forum.sim");
    let gallery = known_images(&world, "sunny-gallery.sim");
    let mut smtp = Smtp::connect(world.smtp_addr());
    smtp.send("HELO x");
    smtp.mail(
        "h@aranea.test",
        "abuse@slowpoke-hosting.sim",
        &notice_body(&[forum[0].clone(), gallery[0].clone()]),
    );
    let notice = &world.notices()[0];
    assert!(
        notice.outcome.iter().any(|o| o.contains("ignored")),
        "{:?}",
        notice.outcome
    );
    assert!(
        notice
            .outcome
            .iter()
            .any(|o| o.contains("not hosted by this provider")),
        "{:?}",
        notice.outcome
    );
    assert!(world.removals().is_empty());
    wait_sim(&world, Duration::from_secs(48 * 3600));
    assert_eq!(get_url(&world, &forum[0]).status, 200);
}

#[test]
fn a_reuploading_provider_removes_then_puts_a_reencoded_copy_elsewhere() {
    let world = small_fast(14);
    let urls = known_images(&world, "bounce-board.test");
    let mut smtp = Smtp::connect(world.smtp_addr());
    smtp.send("EHLO x");
    smtp.mail(
        "h@aranea.test",
        "abuse@bouncer-cloud.sim",
        &notice_body(&urls[..1]),
    );
    let copy = world
        .images_at(Duration::from_secs(400 * 3600))
        .into_iter()
        .find(|i| i.reupload_of.is_some())
        .unwrap();
    assert_eq!(copy.reupload_of.as_deref(), Some(urls[0].as_str()));
    assert!(copy.known);
    assert_eq!(copy.host, "spare-board.test");
    assert!(matches!(
        copy.transform,
        aranea_simweb::world::Transform::Reencode { .. }
    ));
    assert_eq!(
        world.image_at(&copy.url, world.sim_now()).unwrap().status,
        ItemStatus::NotYetUp
    );
    assert_eq!(get_url(&world, &copy.url).status, 404, "not up yet");
    // Removal within 2–4 h, the copy 12–24 h after that.
    wait_sim(&world, Duration::from_secs(29 * 3600));
    assert_eq!(get_url(&world, &urls[0]).status, 404);
    let served = get_url(&world, &copy.url);
    assert_eq!(served.status, 200);
    assert_ne!(served.body, get_url(&world, &urls[0]).body);
    // The copy is linked from a page of the other site, so a crawler finds it.
    let page = world
        .world()
        .site_by_host("spare-board.test")
        .unwrap()
        .pages[1]
        .path
        .clone();
    assert!(
        get(&world, "spare-board.test", &page)
            .text()
            .contains(&copy.path)
    );
}

#[test]
fn a_moving_provider_changes_dns_to_another_provider_and_content_stays_up() {
    let world = small_fast(15);
    let urls = known_images(&world, "nomad-files.sim");
    let before = resolve(&world, "nomad-files.sim").unwrap();
    assert!(
        world
            .world()
            .provider_by_name("Nomad Hosting")
            .unwrap()
            .blocks[0]
            .contains(before)
    );
    let mut smtp = Smtp::connect(world.smtp_addr());
    smtp.send("EHLO x");
    smtp.mail(
        "h@aranea.test",
        "abuse@nomad-hosting.sim",
        &notice_body(&urls[..1]),
    );
    let moves = world.site_moves();
    assert_eq!(moves.len(), 1);
    assert_eq!(moves[0].to_provider, "Harbor Networks");
    wait_sim(&world, Duration::from_secs(7 * 3600));
    let after = resolve(&world, "nomad-files.sim").unwrap();
    assert_eq!(after, moves[0].new_ip);
    assert!(
        world
            .world()
            .provider_by_name("Harbor Networks")
            .unwrap()
            .blocks[0]
            .contains(after)
    );
    assert_eq!(
        get_url(&world, &urls[0]).status,
        200,
        "content moved, not removed"
    );
    // The old address no longer hosts it.
    let old = raw_request(
        (before, world.http_port()).into(),
        "GET / HTTP/1.1\r\nHost: nomad-files.sim\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(old.status, 404);
    assert_eq!(
        world
            .image_at(&urls[0], world.sim_now())
            .unwrap()
            .origin_provider,
        "Harbor Networks"
    );
}

#[test]
fn a_placeholder_provider_answers_200_with_another_image() {
    let world = small_fast(16);
    let urls = known_images(&world, "harbor-pics.sim");
    let original = get_url(&world, &urls[0]).body;
    let mut smtp = Smtp::connect(world.smtp_addr());
    smtp.send("EHLO x");
    smtp.mail(
        "h@aranea.test",
        "noc@harbor-networks.sim",
        &notice_body(&urls[..1]),
    );
    assert_eq!(world.removals()[0].kind, RemovalKind::Placeholder);
    wait_sim(&world, Duration::from_secs(4 * 3600));
    let now = get_url(&world, &urls[0]);
    assert_eq!(now.status, 200);
    assert_eq!(now.header("content-type"), Some("image/png"));
    assert_ne!(now.body, original);
    assert_eq!(
        world.image_at(&urls[0], world.sim_now()).unwrap().status,
        ItemStatus::Placeholder
    );
}

#[test]
fn a_cdn_forwards_to_the_origin_which_then_removes() {
    let world = small_fast(17);
    let urls = known_images(&world, "shielded-pics.sim");
    let image = world.image_at(&urls[0], Duration::ZERO).unwrap();
    assert_eq!(image.cdn.as_deref(), Some("EdgeShield"));
    assert_eq!(image.origin_provider, "Quickhost");
    let mut smtp = Smtp::connect(world.smtp_addr());
    smtp.send("EHLO x");
    smtp.mail(
        "h@aranea.test",
        "abuse@edgeshield.sim",
        &notice_body(&urls[..1]),
    );
    let removal = &world.removals()[0];
    assert_eq!(removal.provider, "Quickhost");
    // Forwarded after 2 h, then Quickhost's 1–6 h.
    let delay = removal.at - world.notices()[0].received_at;
    assert!(
        delay >= Duration::from_secs(3 * 3600) && delay <= Duration::from_secs(8 * 3600),
        "{delay:?}"
    );
    wait_sim(
        &world,
        removal.at.saturating_sub(world.sim_now()) + Duration::from_secs(60),
    );
    assert_eq!(get_url(&world, &urls[0]).status, 404);
}

#[test]
fn rdap_answers_ip_domain_and_autnum_with_abuse_contacts() {
    let world = small(18);
    let base = world.rdap_base_url();
    let fetch = |path: &str| {
        let url = format!("{base}{path}");
        let rest = url.strip_prefix("http://").unwrap();
        let (authority, p) = rest.split_at(rest.find('/').unwrap());
        raw_request(
            authority.parse().unwrap(),
            &format!("GET {p} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"),
        )
    };
    let ip = resolve(&world, "sunny-gallery.sim").unwrap();
    let response = fetch(&format!("ip/{ip}"));
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("application/rdap+json")
    );
    let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(json["objectClassName"], "ip network");
    assert_eq!(json["startAddress"], "127.10.1.0");
    assert_eq!(json["country"], "NL");
    assert_eq!(abuse_emails(&json), vec!["abuse@quickhost.sim".to_owned()]);
    // The other provider style puts the abuse entity at the top level.
    let harbor: serde_json::Value = serde_json::from_slice(&fetch("ip/127.10.6.9").body).unwrap();
    assert_eq!(
        abuse_emails(&harbor),
        vec!["noc@harbor-networks.sim".to_owned()]
    );
    let domain: serde_json::Value =
        serde_json::from_slice(&fetch("domain/sunny-gallery.sim").body).unwrap();
    assert_eq!(domain["ldhName"], "sunny-gallery.sim");
    assert_eq!(
        abuse_emails(&domain),
        vec!["abuse@registrar.sim".to_owned()]
    );
    let asn: serde_json::Value = serde_json::from_slice(&fetch("autnum/64505").body).unwrap();
    assert_eq!(asn["handle"], "AS64505");
    assert_eq!(fetch("ip/10.0.0.1").status, 404);
    assert_eq!(fetch("ip/not-an-ip").status, 404);
    assert_eq!(fetch("domain/unknown.sim").status, 404);
}

/// Emails of every entity with the abuse role, found by walking entities recursively.
fn abuse_emails(json: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for entity in json["entities"].as_array().into_iter().flatten() {
        if entity["roles"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r == "abuse"))
        {
            for prop in entity["vcardArray"][1].as_array().into_iter().flatten() {
                if prop[0] == "email" {
                    out.push(prop[3].as_str().unwrap().to_owned());
                }
            }
        }
        out.extend(abuse_emails(entity));
    }
    out
}

#[test]
fn hostile_smtp_input_is_answered_and_the_server_keeps_serving() {
    let world = small(19);
    let mut smtp = Smtp::connect(world.smtp_addr());
    assert!(
        smtp.send("RCPT TO:<abuse@quickhost.sim>")
            .starts_with("503")
    );
    assert!(smtp.send("DATA").starts_with("503"));
    assert!(smtp.send("MAIL FROM:garbage").starts_with("501"));
    assert!(smtp.send("MAIL FROM:<a@b>").starts_with("250"));
    assert!(smtp.send("MAIL FROM:<a@b>").starts_with("503"));
    assert!(
        smtp.send("RCPT TO:<someone@elsewhere.example>")
            .starts_with("550")
    );
    assert!(smtp.send(&"X".repeat(100_000)).starts_with("500"));
    assert!(smtp.send("\u{0}\u{1}\u{ff}").starts_with("500"));
    assert!(smtp.send("RSET").starts_with("250"));
    // Only the world's relay login is accepted; garbage and unknown mechanisms are refused.
    assert!(
        smtp.send("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
            .starts_with("535")
    );
    assert!(smtp.send("AUTH LOGIN").starts_with("334"));
    assert!(smtp.send("YXJhbmVh").starts_with("334"));
    assert!(smtp.send("c2VjcmV0").starts_with("535"));
    assert!(smtp.send("AUTH PLAIN").starts_with("334"));
    assert!(smtp.send("*").starts_with("501"));
    assert!(smtp.send("AUTH PLAIN !!not-base64!!").starts_with("501"));
    assert!(smtp.send("AUTH CRAM-MD5").starts_with("504"));
    assert!(smtp.send("AUTH LOGIN").starts_with("334"));
    assert!(smtp.send("YXJhbmVh").starts_with("334"));
    assert!(smtp.send("c2ltd2ViLXJlbGF5").starts_with("235"));
    assert!(
        smtp.send("AUTH PLAIN AGFyYW5lYQBzaW13ZWItcmVsYXk=")
            .starts_with("503")
    );
    // STARTTLS with bytes already queued behind it is refused (no plaintext injection).
    {
        let mut raw = TcpStream::connect(world.smtp_addr()).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        raw.write_all(b"EHLO x\r\nSTARTTLS\r\nRSET\r\n").unwrap();
        let mut seen = String::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = raw.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert!(seen.contains("250-STARTTLS"), "{seen}");
        assert!(
            seen.contains("501 5.5.4 Pipelining after STARTTLS"),
            "{seen}"
        );
    }
    // An oversized message is refused whole.
    assert!(smtp.send("MAIL FROM:<a@b>").starts_with("250"));
    assert!(
        smtp.send("RCPT TO:<abuse@quickhost.sim>")
            .starts_with("250")
    );
    assert!(smtp.send("DATA").starts_with("354"));
    let line = format!("{}\r\n", "y".repeat(1000));
    for _ in 0..11_000 {
        smtp.send_raw(line.as_bytes());
    }
    assert!(smtp.send(".").starts_with("552"));
    assert!(world.notices().is_empty());
    // A connection cut mid-DATA leaves nothing behind and the server still answers.
    {
        let mut raw = TcpStream::connect(world.smtp_addr()).unwrap();
        raw.write_all(
            b"HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<abuse@quickhost.sim>\r\nDATA\r\nhalf a message",
        )
        .unwrap();
        let mut buf = [0u8; 256];
        let _ = raw.read(&mut buf);
    }
    let mut again = Smtp::connect(world.smtp_addr());
    again.send("EHLO x");
    assert!(
        again
            .mail("a@b", "abuse@quickhost.sim", "hello")
            .starts_with("250")
    );
    assert_eq!(world.notices().len(), 1);
}

#[test]
fn a_site_wide_remover_takes_down_every_image_of_the_site_named() {
    let mut scenario = aranea_simweb::scenario::load("small").unwrap();
    scenario.time_scale = 86_400.0;
    let quickhost = scenario
        .providers
        .iter_mut()
        .find(|p| p.name == "Quickhost")
        .unwrap();
    quickhost.on_notice = aranea_simweb::scenario::Action::Remove {
        delay_hours: aranea_simweb::scenario::Delay::Fixed(2.0),
        scope: aranea_simweb::scenario::RemoveScope::Site,
    };
    let world = aranea_simweb::SimWeb::new(scenario)
        .seed(20)
        .start()
        .unwrap();
    let all: Vec<String> = world
        .images_at(Duration::ZERO)
        .into_iter()
        .filter(|i| i.host == "sunny-gallery.sim")
        .map(|i| i.url)
        .collect();
    let mut smtp = Smtp::connect(world.smtp_addr());
    smtp.send("EHLO x");
    smtp.mail(
        "h@aranea.test",
        "abuse@quickhost.sim",
        &notice_body(&all[..1]),
    );
    assert_eq!(world.removals().len(), all.len());
    wait_sim(&world, Duration::from_secs(3 * 3600));
    for url in &all {
        assert_eq!(get_url(&world, url).status, 404, "{url}");
    }
    // Other sites of the same provider are untouched.
    let other = world
        .images_at(Duration::ZERO)
        .into_iter()
        .find(|i| i.host == "members-only.test")
        .unwrap();
    assert_eq!(get_url(&world, &other.url).status, 200);
}

#[test]
fn webhooks_refuse_wrong_methods_and_unknown_providers() {
    let world = small(21);
    let hook = world.webhook_url("Quickhost").unwrap();
    let rest = hook.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let addr = authority.parse().unwrap();
    let get = raw_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(get.status, 405);
    let unknown = raw_request(
        addr,
        &format!(
            "POST /webhook/nobody HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        ),
    );
    assert_eq!(unknown.status, 404);
    // Slowpoke has no webhook: its slug is not an endpoint either.
    let no_hook = raw_request(
        addr,
        &format!(
            "POST /webhook/slowpoke-hosting HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        ),
    );
    assert_eq!(no_hook.status, 404);
    assert!(world.notices().is_empty());
}

#[test]
fn advancing_the_clock_plays_out_a_week_of_takedowns_at_once() {
    let world = small(22);
    assert_eq!(world.time_scale(), 3600.0);
    let urls = known_images(&world, "sunny-gallery.sim");
    let mut smtp = Smtp::connect(world.smtp_addr());
    smtp.send("EHLO x");
    smtp.mail(
        "h@aranea.test",
        "abuse@quickhost.sim",
        &notice_body(&urls[..1]),
    );
    assert_eq!(get_url(&world, &urls[0]).status, 200);
    let before = world.sim_now();
    world.advance(Duration::from_secs(7 * 24 * 3600));
    assert!(world.sim_now() >= before + Duration::from_secs(7 * 24 * 3600));
    assert_eq!(get_url(&world, &urls[0]).status, 404);
    let log = world.requests_for("sunny-gallery.sim");
    assert!(log.last().unwrap().sim_at >= Duration::from_secs(7 * 24 * 3600));
}

#[test]
fn a_resent_notice_with_the_same_key_is_recorded_as_a_duplicate_and_not_acted_on_twice() {
    let world = small_fast(14);
    let urls = known_images(&world, "sunny-gallery.sim");
    assert!(urls.len() >= 3);
    let body = |id: &str, url: &String| {
        format!(
            "Message-ID: <{id}@hotline.test>\r\n{}",
            notice_body(std::slice::from_ref(url))
        )
    };
    let mut smtp = Smtp::connect(world.smtp_addr());
    smtp.send("EHLO crawler.test");
    for (id, url) in [
        ("notice-1", &urls[0]),
        ("notice-1", &urls[0]),
        ("notice-2", &urls[1]),
    ] {
        let reply = smtp.mail("hotline@aranea.test", "abuse@quickhost.sim", &body(id, url));
        assert!(reply.starts_with("250"), "{reply}");
    }
    // The same key by webhook: a receiver deduplicates per key, whatever the door.
    let hook = world.webhook_url("Quickhost").unwrap();
    let rest = hook.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let json = serde_json::json!({"urls": [urls[2]]}).to_string();
    for _ in 0..2 {
        let response = raw_request(
            authority.parse().unwrap(),
            &format!(
                "POST {path} HTTP/1.1\r\nHost: {authority}\r\nIdempotency-Key: hook-7\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                json.len()
            ),
        );
        assert_eq!(response.status, 202);
    }
    let notices = world.notices();
    let keys: Vec<Option<&str>> = notices.iter().map(|n| n.key.as_deref()).collect();
    assert_eq!(
        keys,
        [
            Some("<notice-1@hotline.test>"),
            Some("<notice-1@hotline.test>"),
            Some("<notice-2@hotline.test>"),
            Some("hook-7"),
            Some("hook-7")
        ]
    );
    let duplicates: Vec<Option<usize>> = notices.iter().map(|n| n.duplicate_of).collect();
    assert_eq!(duplicates, [None, Some(0), None, None, Some(3)]);
    // Only the distinct keys reached the provider's behaviour.
    for notice in &notices {
        let acted = notice.outcome.iter().any(|o| o.contains("removed"));
        let duplicate = notice.outcome.iter().any(|o| o.contains("duplicate"));
        assert_eq!(acted, notice.duplicate_of.is_none(), "{:?}", notice.outcome);
        assert_eq!(
            duplicate,
            notice.duplicate_of.is_some(),
            "{:?}",
            notice.outcome
        );
    }
    assert_eq!(world.removals().len(), 3, "{:?}", world.removals());
}
