//! Figures for the per-URL pieces: extraction throughput, fetch rate against the simulated
//! web, and how long hostile endpoints take to end in their typed errors.
//!
//! `cargo bench -p aranea-crawl --bench fetch_extract`

use std::time::{Duration, Instant};

use aranea_crawl::extract::{ExtractConfig, extract};
use aranea_crawl::fetch::{FetchConfig, Fetcher, TlsConfig};
use aranea_crawl::ssrf::{GuardConfig, NameServers};
use aranea_simweb::{RunningWorld, SimWeb, scenario};
use url::Url;

fn synthetic_page(links: usize) -> String {
    let mut html = String::from("<!doctype html><html><head><title>t</title></head><body>");
    for i in 0..links {
        html.push_str(&format!(
            "<div class=\"item\"><a href=\"/page/{i}\">item {i}</a><img src=\"/img/{i}.jpg\" srcset=\"/img/{i}@2x.jpg 2x\" alt=\"x\"><p>Some text about the item, long enough to look like a page.</p></div>\n"
        ));
    }
    html.push_str("</body></html>");
    html
}

fn bench_extract() {
    let base = Url::parse("http://example.com/").unwrap();
    for links in [100, 2_000] {
        let html = synthetic_page(links);
        let runs = 20;
        let started = Instant::now();
        let mut found = 0;
        for _ in 0..runs {
            let out = extract(
                html.as_bytes(),
                &base,
                Some("text/html"),
                &ExtractConfig::default(),
            );
            found = out.page_links.len() + out.media_links.len();
        }
        let secs = started.elapsed().as_secs_f64();
        let mb = (html.len() * runs) as f64 / 1e6;
        println!(
            "extract: {:>7} bytes, {found:>5} links/page: {:.1} MB/s, {:.0} pages/s",
            html.len(),
            mb / secs,
            runs as f64 / secs
        );
    }
}

fn config(world: &RunningWorld) -> FetchConfig {
    FetchConfig {
        guard: GuardConfig {
            allow_cidrs: vec!["127.10.0.0/16".parse().unwrap()],
            name_servers: NameServers::Servers(vec![world.dns_addr()]),
            ..GuardConfig::default()
        },
        tls: TlsConfig {
            system_roots: false,
            extra_roots_pem: world.ca_cert_pem().map(str::to_owned).into_iter().collect(),
            accept_invalid_certs_for: Vec::new(),
        },
        ..FetchConfig::default()
    }
}

async fn bench_fetch(world: &RunningWorld) {
    let fetcher = Fetcher::new(config(world)).unwrap();
    // Images of providers without rate limits or artificial slowness.
    let urls: Vec<Url> = world
        .images_at(world.sim_now())
        .into_iter()
        .filter(|i| i.origin_provider == "Quickhost" || i.origin_provider == "Bouncer Cloud")
        .filter_map(|i| Url::parse(&i.url).ok())
        .collect();
    // Warm-up: simweb renders transformed copies on first request; measure the client, not that.
    for url in &urls {
        let _ = fetcher.fetch(url).await;
    }
    for concurrency in [1usize, 8] {
        let started = Instant::now();
        let mut bytes = 0usize;
        let mut ok = 0usize;
        for chunk in urls.chunks(concurrency) {
            let fetches = chunk.iter().map(|u| fetcher.fetch(u));
            for fetch in futures_util::future::join_all(fetches).await {
                if let Ok(response) = fetch.outcome {
                    bytes += response.body.len();
                    ok += 1;
                }
            }
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "fetch: {ok}/{} images, concurrency {concurrency}: {:.0} fetches/s, {:.1} MB/s",
            urls.len(),
            ok as f64 / secs,
            bytes as f64 / 1e6 / secs
        );
    }
}

async fn bench_hostile(world: &RunningWorld) {
    let mut config = config(world);
    config.total_timeout = Duration::from_secs(2);
    let fetcher = Fetcher::new(config).unwrap();
    for path in [
        "gzip-bomb.html",
        "endless.html",
        "drip.html",
        "redirect/loop-a",
    ] {
        let url = Url::parse(&world.url("odd-corner.sim", &format!("/quirks/{path}"))).unwrap();
        let started = Instant::now();
        let fetch = fetcher.fetch(&url).await;
        println!(
            "hostile: {path:<16} ended in {:>6.0} ms: {}",
            started.elapsed().as_secs_f64() * 1000.0,
            fetch
                .outcome
                .err()
                .map_or("ok".to_owned(), |e| e.to_string())
        );
    }
}

fn main() {
    bench_extract();
    let world = SimWeb::start_with(scenario::load("small").unwrap(), 7).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench_fetch(&world));
    runtime.block_on(bench_hostile(&world));
}
