//! Startup time of the shipped scenarios and request throughput of one simulated host,
//! printed as figures (run: `cargo bench -p aranea-simweb --bench startup`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use aranea_simweb::{SimWeb, scenario};

fn main() {
    for name in ["small", "demo"] {
        let mut times = Vec::new();
        for seed in 0..3 {
            let started = Instant::now();
            let world = SimWeb::new(scenario::load(name).unwrap())
                .seed(seed)
                .start()
                .unwrap();
            times.push(started.elapsed());
            if seed == 0 {
                let w = world.world();
                let pages: usize = w.sites.iter().map(|s| s.pages.len()).sum();
                println!(
                    "{name}: {} providers, {} sites, {pages} pages, {} image URLs, {} known photos",
                    w.providers.len(),
                    w.sites.len(),
                    w.items.len(),
                    w.known.len()
                );
                throughput(&world);
            }
            world.shutdown();
        }
        times.sort();
        println!(
            "{name}: startup median {:?} (min {:?}, max {:?}, 3 seeds)",
            times[1], times[0], times[2]
        );
    }
}

/// Keep-alive GETs of one page and one image on one connection.
fn throughput(world: &aranea_simweb::RunningWorld) {
    let w = world.world();
    let plain_serving =
        |s: &aranea_simweb::world::Site| w.providers[s.provider].serving == Default::default();
    let site = w
        .sites
        .iter()
        .find(|s| !s.https && s.cdn.is_none() && s.pages.len() > 1 && plain_serving(s))
        .unwrap();
    let image = world
        .images_at(Duration::ZERO)
        .into_iter()
        .find(|i| i.host == site.host)
        .unwrap();
    let addr = SocketAddr::from((site.ip, world.http_port()));
    for (what, path) in [
        ("page", site.pages[1].path.clone()),
        ("image", image.path.clone()),
    ] {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", site.host);
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let count = 2000;
        let started = Instant::now();
        let mut bytes = 0;
        let mut statuses = std::collections::BTreeMap::new();
        for _ in 0..count {
            stream.write_all(request.as_bytes()).unwrap();
            let mut length = 0;
            let mut status_line = String::new();
            reader.read_line(&mut status_line).unwrap();
            *statuses
                .entry(status_line.split(' ').nth(1).unwrap_or("?").to_owned())
                .or_insert(0) += 1;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.strip_prefix("Content-Length: ") {
                    length = v.trim().parse::<usize>().unwrap();
                }
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
            bytes += length;
        }
        let elapsed = started.elapsed();
        println!(
            "  {what} {statuses:?}: {count} keep-alive GETs in {elapsed:?} = {:.0} req/s, {:.1} MB/s",
            count as f64 / elapsed.as_secs_f64(),
            bytes as f64 / elapsed.as_secs_f64() / 1e6
        );
    }
}
