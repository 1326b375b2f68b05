//! Photo archives on simulated sites: linked from a page, served over HTTP, deterministic,
//! described by the ground truth, and absent from scenarios that do not ask for them.

mod common;

use std::io::Read;

use aranea_simweb::archive_sites::ArchiveFormat;
use aranea_simweb::{RunningWorld, SimWeb, scenario};
use common::*;

const GENERATED: &str = r#"
name = "archives"
known_images = 20
[generate]
providers = 3
countries = ["NL"]
sites = 12
pages_per_site = [3, 5]
images_per_page = [1, 2]
interesting_share = 1.0
known_share = 0.5
archive_share = ARCHIVE_SHARE
"#;

fn generated(share: f64, seed: u64) -> RunningWorld {
    let text = GENERATED.replace("ARCHIVE_SHARE", &share.to_string());
    SimWeb::new(scenario::parse(&text).unwrap())
        .seed(seed)
        .start()
        .unwrap()
}

fn small_with_archives(seed: u64) -> RunningWorld {
    let mut s = scenario::load("small").unwrap();
    for site in &mut s.sites {
        site.archives = 2;
    }
    SimWeb::new(s).seed(seed).start().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn archives_are_served_linked_and_hold_the_photos_the_truth_lists() {
    let world = small_with_archives(3);
    let archives = world.archives();
    assert!(archives.len() >= 8, "{} archives", archives.len());
    assert!(archives.iter().any(|a| a.format == ArchiveFormat::Zip));
    assert!(archives.iter().any(|a| a.format == ArchiveFormat::TarGz));
    assert!(archives.iter().flat_map(|a| &a.members).any(|m| m.known));
    for archive in &archives {
        assert!((3..=6).contains(&archive.members.len()));
        let site = world
            .world()
            .sites
            .iter()
            .find(|s| s.host == archive.host)
            .unwrap();
        let linking = site
            .pages
            .iter()
            .find(|p| p.links.contains(&archive.path))
            .unwrap_or_else(|| panic!("{} is linked from no page", archive.url));
        if !site.https {
            let page = get(&world, &archive.host, &linking.path);
            assert!(
                links(&page.text()).contains(&archive.path),
                "{}",
                archive.url
            );
        } else {
            continue;
        }
        let response = get_url(&world, &archive.url);
        assert_eq!(response.status, 200, "{}", archive.url);
        let body = response.body;
        match archive.format {
            ArchiveFormat::Zip => {
                assert!(body.starts_with(b"PK\x03\x04"));
                let end = &body[body.len() - 22..];
                assert_eq!(&end[..4], b"PK\x05\x06");
                let entries = u16::from_le_bytes([end[10], end[11]]) as usize;
                assert_eq!(entries, archive.members.len() + 1, "photos and a README");
                for member in &archive.members {
                    let name = member.member_path.as_bytes();
                    assert!(body.windows(name.len()).any(|w| w == name));
                }
            }
            ArchiveFormat::TarGz => {
                assert!(body.starts_with(&[0x1F, 0x8B]));
                let tar = gunzip(&body);
                for member in &archive.members {
                    let name = member.member_path.as_bytes();
                    assert!(tar.windows(name.len()).any(|w| w == name));
                    // TAR stores members verbatim: the original photo is in there byte for byte.
                    if member.transform == aranea_simweb::world::Transform::Original {
                        let photo = std::fs::read(format!(
                            "{}/../../../shared/corpus/{}",
                            env!("CARGO_MANIFEST_DIR"),
                            member.source_file
                        ))
                        .unwrap();
                        assert!(tar.windows(photo.len()).any(|w| w == photo.as_slice()));
                    }
                }
            }
        }
    }
}

#[test]
fn archives_are_deterministic_by_seed() {
    let a = small_with_archives(5);
    let b = small_with_archives(5);
    let (first_a, first_b) = (&a.archives()[0], &b.archives()[0]);
    assert_eq!(
        first_a.url.replace(&a.http_port().to_string(), ""),
        first_b.url.replace(&b.http_port().to_string(), "")
    );
    assert_eq!(
        get_url(&a, &first_a.url).body,
        get_url(&b, &first_b.url).body
    );
    let c = small_with_archives(6);
    assert_ne!(a.archives()[0].path, c.archives()[0].path);
}

#[test]
fn scenarios_without_archives_serve_none_and_keep_their_world() {
    assert!(small(3).archives().is_empty());
    let without = generated(0.0, 9);
    let with = generated(1.0, 9);
    assert!(without.archives().is_empty());
    assert!(!with.archives().is_empty());
    // Archives draw from their own stream: sites, pages and images are otherwise the same.
    let (w0, w1) = (without.world(), with.world());
    assert_eq!(w0.items.len(), w1.items.len());
    for (s0, s1) in w0.sites.iter().zip(&w1.sites) {
        assert_eq!(s0.host, s1.host);
        for (p0, p1) in s0.pages.iter().zip(&s1.pages) {
            assert_eq!(p0.items, p1.items);
            let extra: Vec<_> = p1.links.iter().filter(|l| !p0.links.contains(l)).collect();
            assert!(
                extra.iter().all(|l| l.starts_with("/downloads/")),
                "{extra:?}"
            );
        }
    }
}
