//! Archives written by other implementations (Python's `zipfile`/`tarfile`, fixtures in
//! `tests/data/archives`), by the simulated web, and served by it over a socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use aranea_simweb::archives::{self as write, ZipMethod};

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/archives/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn corpus_photo(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../../shared/corpus/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn paths(members: &[ArchiveMember]) -> Vec<&str> {
    members.iter().map(|m| m.path.as_str()).collect()
}

/// The long path of the Python TAR fixtures (see `make_fixtures.py`).
fn python_long_path() -> String {
    format!("deep/{}/фото {}.txt", "x".repeat(120), "y".repeat(40))
}

#[test]
fn garbage_and_empty_bodies_are_not_archives() {
    let limits = ArchiveLimits::default();
    assert_eq!(sniff(b""), None);
    assert_eq!(members(b"", &limits), Err(ArchiveError::NotAnArchive));
    assert_eq!(
        members(b"<html>hello</html>", &limits),
        Err(ArchiveError::NotAnArchive)
    );
    let jpeg = corpus_photo("img-0001.jpg");
    assert_eq!(sniff(&jpeg), None);
    // A gzip stream of something other than a TAR is not opened.
    assert_eq!(sniff(&write::gzip(b"just some text, not a tar")), None);
    // All-zero blocks (an empty TAR) carry no header to recognise.
    assert_eq!(sniff(&[0u8; 1024]), None);
}

#[test]
fn kinds_are_told_by_magic_bytes() {
    let zip = write::zip(&[("a", b"x", ZipMethod::Stored)]);
    let tar = write::tar(&[("a", b"x")]);
    assert_eq!(sniff(&zip), Some(ArchiveKind::Zip));
    assert_eq!(sniff(&tar), Some(ArchiveKind::Tar));
    assert_eq!(sniff(&write::gzip(&tar)), Some(ArchiveKind::TarGz));
    assert_eq!(
        sniff(&fixture("python_gnu.tar.gz")),
        Some(ArchiveKind::TarGz)
    );
    // An empty ZIP is just its end record.
    let empty = write::zip(&[]);
    assert_eq!(sniff(&empty), Some(ArchiveKind::Zip));
    let summary = visit(&empty, &ArchiveLimits::default(), |_| {
        ControlFlow::Continue(())
    });
    assert_eq!(summary.map(|s| s.members), Ok(0));
}

#[test]
fn python_zip_with_data_descriptors_is_read_whole() {
    let bytes = fixture("python_descriptors.zip");
    let found = members(&bytes, &ArchiveLimits::default()).unwrap();
    assert_eq!(
        paths(&found),
        ["docs/alpha.txt", "beta.bin", "gamma/été.txt"]
    );
    assert_eq!(found[0].bytes, b"alpha ".repeat(200));
    let ramp: Vec<u8> = (0..=255u8).collect();
    assert_eq!(found[1].bytes, ramp.repeat(4));
    assert_eq!(found[2].bytes, b"summer");
}

#[test]
fn python_zip_cut_before_its_directory_yields_its_first_members() {
    let bytes = fixture("python_descriptors.zip");
    let directory = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    let mut seen = Vec::new();
    let result = visit(&bytes[..directory + 10], &ArchiveLimits::default(), |m| {
        seen.push(m);
        ControlFlow::Continue(())
    });
    assert_eq!(
        result,
        Err(ArchiveError::Truncated {
            kind: ArchiveKind::Zip
        })
    );
    assert_eq!(
        paths(&seen),
        ["docs/alpha.txt", "beta.bin", "gamma/été.txt"]
    );
    assert_eq!(seen[1].bytes.len(), 1024);
}

#[test]
fn python_zip64_records_are_understood() {
    let found = members(&fixture("python_zip64.zip"), &ArchiveLimits::default()).unwrap();
    assert_eq!(paths(&found), ["big/one.txt", "two.txt"]);
    assert_eq!(found[0].bytes, b"zip64 member ".repeat(100));
}

#[test]
fn python_pax_and_gnu_tars_give_long_names_and_skip_links_and_directories() {
    for name in ["python_pax.tar", "python_gnu.tar.gz"] {
        let found = members(&fixture(name), &ArchiveLimits::default()).unwrap();
        assert_eq!(
            paths(&found),
            ["short.txt", python_long_path().as_str()],
            "{name}"
        );
        assert_eq!(found[1].bytes, b"long one ".repeat(100), "{name}");
    }
}

#[test]
fn simweb_archives_of_corpus_photos_round_trip() {
    let a = corpus_photo("img-0001.jpg");
    let b = corpus_photo("img-0002.jpg");
    let zip = write::zip(&[
        ("one/a.jpg", &a, ZipMethod::Deflated),
        ("b.jpg", &b, ZipMethod::Stored),
    ]);
    let tar = write::tar(&[("one/a.jpg", &a), ("b.jpg", &b)]);
    for bytes in [zip, write::gzip(&tar), tar] {
        let summary = visit(&bytes, &ArchiveLimits::default(), |m| {
            let expected = if m.path == "one/a.jpg" { &a } else { &b };
            assert_eq!(&m.bytes, expected, "{}", m.path);
            assert!(aranea_hash::sniff(&m.bytes).is_some());
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(summary.members, 2);
        assert_eq!(summary.checksum_mismatches, 0);
        assert!(summary.skipped.is_empty());
    }
}

#[test]
fn archives_nested_within_the_depth_limit_are_opened_in_place() {
    let inner = write::zip(&[("a.txt", b"inner text", ZipMethod::Deflated)]);
    let middle = write::tar_gz(&[("in/inner.zip", &inner), ("m.txt", b"middle")]);
    let outer = write::zip(&[
        ("middle.tgz", &middle, ZipMethod::Stored),
        ("o.txt", b"outer", ZipMethod::Stored),
    ]);
    let limits = ArchiveLimits::default();
    let found = members(&outer, &limits).unwrap();
    assert_eq!(
        paths(&found),
        [
            "middle.tgz!/in/inner.zip!/a.txt",
            "middle.tgz!/m.txt",
            "o.txt"
        ]
    );
    let shallow = ArchiveLimits {
        max_depth: 2,
        ..limits
    };
    let summary = visit(&outer, &shallow, |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(summary.members, 2);
    assert_eq!(
        summary.skipped,
        [SkippedMember {
            path: "middle.tgz!/in/inner.zip".to_owned(),
            reason: SkipReason::TooDeep
        }]
    );
}

#[test]
fn the_visitor_can_stop_the_walk() {
    let zip = write::zip(&[
        ("a", b"1", ZipMethod::Stored),
        ("b", b"2", ZipMethod::Stored),
    ]);
    let mut seen = 0;
    let result = visit(&zip, &ArchiveLimits::default(), |_| {
        seen += 1;
        ControlFlow::Break(())
    });
    assert_eq!(result, Err(ArchiveError::Stopped));
    assert_eq!(seen, 1);
}

/// GET over a plain socket (the test needs nothing from the crawler's fetcher).
fn http_get(addr: std::net::SocketAddr, host: &str, path: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(response.starts_with(b"HTTP/1.1 200"), "{host}{path}");
    response.split_off(split + 4)
}

#[test]
fn every_photo_the_simulated_web_archives_is_found_under_its_member_path() {
    let mut scenario = aranea_simweb::scenario::load("small").unwrap();
    for site in &mut scenario.sites {
        site.archives = 2;
    }
    let world = aranea_simweb::SimWeb::new(scenario)
        .seed(11)
        .start()
        .unwrap();
    let mut checked = 0;
    for archive in world.archives() {
        let site = world.world().site_by_host(&archive.host).unwrap();
        if site.https || site.cdn.is_some() {
            continue;
        }
        let addr = std::net::SocketAddr::from((site.ip, world.http_port()));
        let body = http_get(addr, &archive.host, &archive.path);
        let mut found = std::collections::BTreeMap::new();
        let summary = visit(&body, &ArchiveLimits::default(), |m| {
            found.insert(m.path, m.bytes);
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(
            summary.members as usize,
            archive.members.len() + 1,
            "and a README"
        );
        for member in &archive.members {
            let bytes = found
                .get(&member.member_path)
                .unwrap_or_else(|| panic!("{} lacks {}", archive.url, member.member_path));
            assert!(aranea_hash::sniff(bytes).is_some());
            if member.transform == aranea_simweb::world::Transform::Original {
                assert_eq!(bytes, &corpus_photo(&member.source_file));
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} members checked");
}
