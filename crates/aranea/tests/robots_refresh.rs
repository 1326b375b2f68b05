//! `aranea crawl` reads a host's robots.txt again when its answer expires
//! (`[crawl] robots_ttl_ms`), also while it holds the host the whole time: a large site at a
//! long Crawl-delay stays leased for days, and a robots.txt changed meanwhile must be obeyed.

mod common;

use std::process::Command;

use aranea_simweb::{SimWeb, scenario};

#[test]
fn a_host_held_longer_than_the_robots_ttl_has_its_robots_txt_fetched_again() {
    let world = SimWeb::start_with(scenario::load("small").unwrap(), 7).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    aranea_index::BankStore::open(&data.join("banks")).unwrap();
    const TTL_MS: u64 = 400;
    let config = format!(
        "{}robots_ttl_ms = {TTL_MS}\ntotal_timeout_ms = 900\nread_timeout_ms = 800\n\
         connect_timeout_ms = 800\nlease_ms = 20000\nclaim_interval_ms = 100\n\
         [crawl.politeness]\nmin_delay_ms = 100\nmax_delay_ms = 200\ncrawl_delay_cap_ms = 100\n",
        common::simweb_crawl_table(&world)
    );
    std::fs::write(data.join("aranea.toml"), config).unwrap();
    // Every page of one gallery seeded: the host has work for a few seconds without a pause.
    let host = "sunny-gallery.sim";
    let site = world.world().sites.iter().find(|s| s.host == host).unwrap();
    let seeds: Vec<String> = site
        .pages
        .iter()
        .map(|p| world.url(host, &p.path))
        .collect();
    std::fs::write(data.join("seeds.txt"), seeds.join("\n")).unwrap();
    let db = format!("sqlite://{}", data.join("aranea.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_aranea"))
        .args(["--data", data.to_str().unwrap(), "--db", &db])
        .args(["--config", data.join("aranea.toml").to_str().unwrap()])
        .args(["crawl", "--until-idle", "--format", "json", "--seeds"])
        .arg(data.join("seeds.txt"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let requests = world.requests_for(host);
    let first = requests.first().unwrap().unix_millis;
    let last = requests.last().unwrap().unix_millis;
    let robots: Vec<u64> = requests
        .iter()
        .filter(|r| r.target == "/robots.txt")
        .map(|r| r.unix_millis)
        .collect();
    eprintln!(
        "{} requests over {} ms, robots.txt at {:?}",
        requests.len(),
        last - first,
        robots.iter().map(|t| t - first).collect::<Vec<_>>()
    );
    let slack = 1_500;
    assert!(
        last - first > TTL_MS + slack + 1_000,
        "the crawl of the host lasted {} ms, too short to show anything",
        last - first
    );
    // No request to the host more than a TTL (plus a step's slack) after robots.txt was
    // last read.
    for r in &requests {
        let read = robots.iter().filter(|t| **t <= r.unix_millis).max();
        let read = read.unwrap_or_else(|| panic!("{} requested before robots.txt", r.target));
        assert!(
            r.unix_millis - read <= TTL_MS + slack,
            "{} requested {} ms after robots.txt was last read (robots.txt at {:?})",
            r.target,
            r.unix_millis - read,
            robots.iter().map(|t| t - first).collect::<Vec<_>>()
        );
    }
}
