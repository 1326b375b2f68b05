//! Hostile archives: bombs (ratio, total, overlapping entries, nested), huge entry counts,
//! lying headers, absurd names, truncation at every length, and random corruption.

use aranea_simweb::archives::{self as write, ZipMethod};

use super::*;

/// Bytes that do not compress (xorshift), so sizes in tests are what they say.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Offsets of the central directory entries of a ZIP the simulated web wrote.
fn central_entries(zip: &[u8]) -> Vec<usize> {
    let end = zip.len() - 22;
    let start = u32::from_le_bytes(zip[end + 16..end + 20].try_into().unwrap()) as usize;
    let mut at = start;
    let mut out = Vec::new();
    while zip[at..at + 4] == *b"PK\x01\x02" {
        out.push(at);
        let n = u16::from_le_bytes([zip[at + 28], zip[at + 29]]) as usize;
        at += 46 + n;
    }
    out
}

fn put_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn walk_all(
    bytes: &[u8],
    limits: &ArchiveLimits,
) -> (Vec<ArchiveMember>, Result<ArchiveSummary, ArchiveError>) {
    let mut seen = Vec::new();
    let result = visit(bytes, limits, |m| {
        seen.push(m);
        ControlFlow::Continue(())
    });
    (seen, result)
}

#[test]
fn a_deflate_bomb_member_is_skipped_by_the_ratio_guard_and_the_rest_read() {
    let zeros = vec![0u8; 20 << 20];
    let zip = write::zip(&[
        ("bomb.bin", &zeros, ZipMethod::Deflated),
        ("fine.txt", b"fine", ZipMethod::Deflated),
    ]);
    assert!(zip.len() < 64 << 10);
    let (seen, result) = walk_all(&zip, &ArchiveLimits::default());
    let summary = result.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "fine.txt");
    assert_eq!(summary.skipped[0].reason, SkipReason::RatioExceeded);
    // Inflation stopped at the allowance (200 per compressed byte), far short of the 20 MiB.
    let allowance = 200 * zip.len() as u64 + 1;
    assert!(
        summary.unpacked_bytes <= allowance,
        "{}",
        summary.unpacked_bytes
    );
    assert!(summary.unpacked_bytes < 20 << 20);
}

#[test]
fn members_over_the_size_limit_are_skipped_whether_stored_or_deflated() {
    let big = noise(2 << 20, 1);
    let zip = write::zip(&[
        ("stored.bin", &big, ZipMethod::Stored),
        ("deflated.bin", &big, ZipMethod::Deflated),
        ("small.bin", &big[..100], ZipMethod::Stored),
    ]);
    let tar = write::tar(&[("big.bin", &big), ("small.bin", &big[..100])]);
    let limits = ArchiveLimits {
        max_member_bytes: 1 << 20,
        ..ArchiveLimits::default()
    };
    for bytes in [zip, tar] {
        let (seen, result) = walk_all(&bytes, &limits);
        let summary = result.unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, "small.bin");
        assert!(
            summary
                .skipped
                .iter()
                .all(|s| s.reason == SkipReason::TooLarge)
        );
        assert!(!summary.skipped.is_empty());
    }
}

#[test]
fn the_total_unpacked_limit_stops_the_walk_after_what_fits() {
    let parts: Vec<Vec<u8>> = (0..5).map(|i| noise(1 << 20, i + 1)).collect();
    let names: Vec<String> = (0..5).map(|i| format!("{i}.bin")).collect();
    let zip_members: Vec<_> = names
        .iter()
        .zip(&parts)
        .map(|(n, p)| (n.as_str(), p.as_slice(), ZipMethod::Stored))
        .collect();
    let tar_members: Vec<_> = names
        .iter()
        .zip(&parts)
        .map(|(n, p)| (n.as_str(), p.as_slice()))
        .collect();
    let limits = ArchiveLimits {
        max_total_bytes: 3 << 20,
        ..ArchiveLimits::default()
    };
    for bytes in [write::zip(&zip_members), write::tar_gz(&tar_members)] {
        let (seen, result) = walk_all(&bytes, &limits);
        assert_eq!(result, Err(ArchiveError::TooManyBytes { limit: 3 << 20 }));
        assert!((2..=3).contains(&seen.len()), "{}", seen.len());
        assert_eq!(seen[0].bytes, parts[0]);
    }
}

#[test]
fn overlapping_directory_entries_cannot_multiply_one_member() {
    // One 1 MiB member, listed 300 times by the central directory (the "better zip bomb").
    let zeros = vec![0u8; 1 << 20];
    let single = write::zip(&[("z", &zeros, ZipMethod::Deflated)]);
    let entry_at = central_entries(&single)[0];
    let entry = single[entry_at..single.len() - 22].to_vec();
    let mut bomb = single[..entry_at].to_vec();
    let directory_at = bomb.len() as u32;
    for _ in 0..300 {
        bomb.extend_from_slice(&entry);
    }
    let directory_len = bomb.len() as u32 - directory_at;
    bomb.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    bomb.extend_from_slice(&300u16.to_le_bytes());
    bomb.extend_from_slice(&300u16.to_le_bytes());
    bomb.extend_from_slice(&directory_len.to_le_bytes());
    bomb.extend_from_slice(&directory_at.to_le_bytes());
    bomb.extend_from_slice(&[0, 0]);
    let limits = ArchiveLimits {
        max_total_bytes: 32 << 20,
        ..ArchiveLimits::default()
    };
    let (seen, result) = walk_all(&bomb, &limits);
    assert_eq!(seen.len(), 1, "the member is read once");
    let summary = result.unwrap();
    assert_eq!((summary.entries, summary.members), (300, 1));
    assert_eq!(summary.skipped.len(), 299);
    assert!(
        summary
            .skipped
            .iter()
            .all(|s| s.path == "z" && s.reason == SkipReason::Repeated)
    );
}

#[test]
fn nested_bombs_hit_the_shared_total_and_deep_nesting_stops_at_the_depth() {
    let zeros = vec![0u8; 1 << 20];
    let leaf: Vec<(String, &[u8], ZipMethod)> = (0..10)
        .map(|i| (format!("{i}"), zeros.as_slice(), ZipMethod::Deflated))
        .collect();
    let leaf: Vec<_> = leaf.iter().map(|(n, b, m)| (n.as_str(), *b, *m)).collect();
    let inner = write::zip(&leaf);
    let outer_members: Vec<(String, &[u8], ZipMethod)> = (0..10)
        .map(|i| (format!("{i}.zip"), inner.as_slice(), ZipMethod::Deflated))
        .collect();
    let outer_members: Vec<_> = outer_members
        .iter()
        .map(|(n, b, m)| (n.as_str(), *b, *m))
        .collect();
    let outer = write::zip(&outer_members);
    assert!(outer.len() < 200 << 10);
    let limits = ArchiveLimits {
        max_total_bytes: 20 << 20,
        ..ArchiveLimits::default()
    };
    let (seen, result) = walk_all(&outer, &limits);
    assert_eq!(result, Err(ArchiveError::TooManyBytes { limit: 20 << 20 }));
    assert!(seen.len() < 20);

    let mut deep = write::zip(&[("core.txt", b"core", ZipMethod::Stored)]);
    for level in 0..12 {
        deep = write::zip(&[(&format!("level{level}.zip"), &deep, ZipMethod::Deflated)]);
    }
    let (seen, result) = walk_all(&deep, &ArchiveLimits::default());
    assert!(seen.is_empty());
    let summary = result.unwrap();
    assert_eq!(summary.skipped.len(), 1);
    assert_eq!(summary.skipped[0].reason, SkipReason::TooDeep);
    assert_eq!(
        summary.skipped[0].path,
        "level11.zip!/level10.zip!/level9.zip"
    );
}

#[test]
fn a_gzip_bomb_around_a_tar_hits_the_ratio_guard() {
    let zeros = vec![0u8; 30 << 20];
    let bomb = write::tar_gz(&[("first.txt", b"first"), ("zeros.bin", &zeros)]);
    assert!(bomb.len() < 64 << 10);
    let (seen, result) = walk_all(&bomb, &ArchiveLimits::default());
    assert_eq!(result, Err(ArchiveError::RatioExceeded { limit: 200 }));
    assert_eq!(seen.len(), 1);
}

#[test]
fn huge_entry_counts_stop_at_the_member_limit() {
    let names: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
    let zip: Vec<_> = names
        .iter()
        .map(|n| (n.as_str(), &b"x"[..], ZipMethod::Stored))
        .collect();
    let tar: Vec<_> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let limits = ArchiveLimits {
        max_members: 10,
        ..ArchiveLimits::default()
    };
    for bytes in [write::zip(&zip), write::tar(&tar)] {
        let (seen, result) = walk_all(&bytes, &limits);
        assert_eq!(result, Err(ArchiveError::TooManyMembers { limit: 10 }));
        assert_eq!(seen.len(), 10);
    }
    // An end record claiming 65,535 entries over a directory of two reads the two.
    let mut two = write::zip(&[
        ("a", b"1", ZipMethod::Stored),
        ("b", b"2", ZipMethod::Stored),
    ]);
    let end = two.len() - 22;
    put_u16(&mut two, end + 8, u16::MAX);
    put_u16(&mut two, end + 10, u16::MAX);
    assert_eq!(members(&two, &limits).unwrap().len(), 2);
}

#[test]
fn sizes_written_in_headers_are_not_trusted() {
    let text = b"the real member is longer than its header says".repeat(20);
    let mut zip = write::zip(&[
        ("small-claim", &text, ZipMethod::Deflated),
        ("huge-claim", &text, ZipMethod::Stored),
        ("beyond", &text, ZipMethod::Stored),
        ("last", b"last", ZipMethod::Stored),
    ]);
    let entries = central_entries(&zip);
    put_u32(&mut zip, entries[0] + 24, 5); // uncompressed: 5
    put_u32(&mut zip, entries[1] + 24, u32::MAX - 1); // uncompressed: ~4 GiB
    put_u32(&mut zip, entries[2] + 20, 1 << 30); // compressed: past the end
    let (seen, result) = walk_all(&zip, &ArchiveLimits::default());
    let summary = result.unwrap();
    assert_eq!(paths(&seen), ["small-claim", "huge-claim", "last"]);
    assert_eq!(seen[0].bytes, text);
    assert_eq!(seen[1].bytes, text);
    assert_eq!(summary.skipped[0].reason, SkipReason::Corrupt);

    // A TAR header claiming more data than follows: what came before stands.
    let mut tar = write::tar(&[("a", b"aaaa"), ("b", b"bbbb")]);
    let mut header = write::ustar_header("b", 1 << 40);
    write::set_checksum(&mut header);
    tar[1024..1536].copy_from_slice(&header);
    let (seen, result) = walk_all(&tar, &ArchiveLimits::default());
    assert_eq!(paths(&seen), ["a"]);
    assert_eq!(
        result,
        Err(ArchiveError::Truncated {
            kind: ArchiveKind::Tar
        })
    );

    // GNU base-256 sizes, absurd and negative.
    for first in [0x80u8, 0xFF] {
        let mut tar = write::tar(&[("a", b"aaaa"), ("b", b"bbbb")]);
        tar[1024 + 124] = first;
        tar[1024 + 125..1024 + 136].fill(0x7F);
        let mut header: [u8; 512] = tar[1024..1536].try_into().unwrap();
        write::set_checksum(&mut header);
        tar[1024..1536].copy_from_slice(&header);
        let (seen, result) = walk_all(&tar, &ArchiveLimits::default());
        assert_eq!(paths(&seen), ["a"]);
        assert!(result.is_err());
    }
}

#[test]
fn an_end_record_with_a_lying_offset_still_leads_to_every_member() {
    let mut zip = write::zip(&[
        ("a", b"first", ZipMethod::Deflated),
        ("b", b"second", ZipMethod::Stored),
    ]);
    let end = zip.len() - 22;
    let directory = central_entries(&zip)[0];
    for lie in [7, u32::MAX - 3] {
        put_u32(&mut zip, end + 16, lie);
        let found = members(&zip, &ArchiveLimits::default()).unwrap();
        assert_eq!(paths(&found), ["a", "b"]);
        assert_eq!(found[1].bytes, b"second");
    }
    // With the directory itself unreadable, the local headers still lead from member to member.
    zip[directory] = b'X';
    let (seen, result) = walk_all(&zip, &ArchiveLimits::default());
    assert_eq!(paths(&seen), ["a", "b"]);
    assert_eq!(
        result,
        Err(ArchiveError::Truncated {
            kind: ArchiveKind::Zip
        })
    );
}

#[test]
fn a_zip_behind_other_data_is_found_and_a_polyglot_member_is_kept_and_opened() {
    let photo = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus/img-0003.jpg"
    ))
    .unwrap();
    let zip = write::zip(&[
        ("hidden/a.txt", b"behind the photo", ZipMethod::Deflated),
        ("b.txt", b"second", ZipMethod::Stored),
    ]);
    let polyglot = [photo.as_slice(), zip.as_slice()].concat();
    assert!(aranea_hash::sniff(&polyglot).is_some(), "still a JPEG");
    assert_eq!(sniff(&polyglot), Some(ArchiveKind::Zip));
    assert_eq!(sniff(&photo), None);
    let found = members(&polyglot, &ArchiveLimits::default()).unwrap();
    assert_eq!(paths(&found), ["hidden/a.txt", "b.txt"]);
    assert_eq!(found[0].bytes, b"behind the photo");

    // Inside an archive, such a member is a photo to hash and an archive to open.
    let outer = write::tar(&[("cover.jpg", &polyglot)]);
    let found = members(&outer, &ArchiveLimits::default()).unwrap();
    assert_eq!(
        paths(&found),
        ["cover.jpg!/hidden/a.txt", "cover.jpg!/b.txt", "cover.jpg"]
    );
    assert_eq!(found[2].bytes, polyglot);
}

#[test]
fn zip64_sizes_near_the_top_of_the_range_end_in_an_error_not_an_overflow() {
    let mut local = b"PK\x03\x04".to_vec();
    local.extend_from_slice(&[45, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version .. crc
    local.extend_from_slice(&u32::MAX.to_le_bytes()); // compressed: see ZIP64
    local.extend_from_slice(&u32::MAX.to_le_bytes()); // uncompressed: see ZIP64
    local.extend_from_slice(&1u16.to_le_bytes()); // name length
    local.extend_from_slice(&20u16.to_le_bytes()); // extra length
    local.push(b'n');
    local.extend_from_slice(&1u16.to_le_bytes());
    local.extend_from_slice(&16u16.to_le_bytes());
    local.extend_from_slice(&u64::MAX.to_le_bytes());
    local.extend_from_slice(&(u64::MAX - 8).to_le_bytes());
    local.extend_from_slice(b"data");
    assert_eq!(sniff(&local), Some(ArchiveKind::Zip));
    assert_eq!(
        members(&local, &ArchiveLimits::default()),
        Err(ArchiveError::Truncated {
            kind: ArchiveKind::Zip
        })
    );
}

fn paths(members: &[ArchiveMember]) -> Vec<&str> {
    members.iter().map(|m| m.path.as_str()).collect()
}

#[test]
fn absurd_names_are_kept_as_text_never_interpreted() {
    let long = "a".repeat(5000);
    let mut zip = write::zip(&[
        ("../../etc/passwd", b"1", ZipMethod::Stored),
        ("/absolute.jpg", b"2", ZipMethod::Stored),
        ("C:\\windows\\x.jpg", b"3", ZipMethod::Stored),
        ("new\nline\0nul.jpg", b"4", ZipMethod::Stored),
        (&long, b"5", ZipMethod::Stored),
        ("bad-ZZ.jpg", b"6", ZipMethod::Stored),
        ("", b"7", ZipMethod::Stored),
    ]);
    // Invalid UTF-8 in the name, in the local header and the directory alike.
    while let Some(at) = zip.windows(2).position(|w| w == b"ZZ") {
        zip[at..at + 2].copy_from_slice(&[0xFF, 0xFE]);
    }
    let found = members(&zip, &ArchiveLimits::default()).unwrap();
    let names = paths(&found);
    assert_eq!(names[0], "../../etc/passwd");
    assert_eq!(names[1], "/absolute.jpg");
    assert_eq!(names[2], "C:\\windows\\x.jpg");
    assert_eq!(names[3], "new\u{FFFD}line\u{FFFD}nul.jpg");
    assert_eq!(names[4], format!("{}…", "a".repeat(MAX_PATH_BYTES)));
    assert_eq!(names[5], "bad-\u{FFFD}\u{FFFD}.jpg");
    assert_eq!(names[6], "");
}

#[test]
fn encrypted_and_unknown_methods_are_skipped_by_name() {
    let mut zip = write::zip(&[
        ("secret.jpg", b"cipher", ZipMethod::Stored),
        ("bzip.jpg", b"bzip2", ZipMethod::Stored),
        ("plain.jpg", b"plain", ZipMethod::Stored),
    ]);
    let entries = central_entries(&zip);
    put_u16(&mut zip, entries[0] + 8, 1);
    put_u16(&mut zip, entries[1] + 10, 12);
    let (seen, result) = walk_all(&zip, &ArchiveLimits::default());
    assert_eq!(paths(&seen), ["plain.jpg"]);
    let skipped = result.unwrap().skipped;
    assert_eq!(skipped[0].reason, SkipReason::Encrypted);
    assert_eq!(skipped[1].reason, SkipReason::UnsupportedMethod(12));
}

#[test]
fn a_broken_tar_header_ends_the_walk_as_malformed_after_what_came_before() {
    let mut tar = write::tar(&[("a", b"aaaa"), ("b", b"bbbb")]);
    tar[1024 + 10] ^= 0x55;
    let (seen, result) = walk_all(&tar, &ArchiveLimits::default());
    assert_eq!(paths(&seen), ["a"]);
    assert!(matches!(result, Err(ArchiveError::Malformed { .. })));
    // An oversized GNU long name is refused before it is read.
    let mut long = write::tar(&[("x", &[b'n'; 10])]);
    long[156] = b'L';
    long[124..136].copy_from_slice(b"77777777777\0");
    let mut header: [u8; 512] = long[..512].try_into().unwrap();
    write::set_checksum(&mut header);
    long[..512].copy_from_slice(&header);
    assert!(matches!(
        members(&long, &ArchiveLimits::default()),
        Err(ArchiveError::Malformed { .. })
    ));
}

/// Every cut of every format: no panic, only whole members with their true bytes.
#[test]
fn truncation_at_any_length_yields_a_prefix_of_whole_members() {
    let a = noise(3000, 7);
    let b = b"second member ".repeat(300);
    let zip = write::zip(&[("a", &a, ZipMethod::Stored), ("b", &b, ZipMethod::Deflated)]);
    let tar = write::tar(&[("a", &a), ("b", &b)]);
    let tgz = write::gzip(&tar);
    for full in [zip, tar, tgz] {
        for cut in (0..full.len()).step_by(7) {
            let (seen, _result) = walk_all(&full[..cut], &ArchiveLimits::default());
            for member in &seen {
                let expected: &[u8] = if member.path == "a" { &a } else { &b };
                assert_eq!(member.bytes, expected, "cut at {cut}");
            }
        }
    }
}

/// Random byte corruption: no panic, and every limit holds.
#[test]
fn corrupted_archives_never_break_the_limits() {
    let photo = noise(20_000, 3);
    let text = b"text ".repeat(2000);
    let inner = write::zip(&[("t", &text, ZipMethod::Deflated)]);
    let zip = write::zip(&[
        ("p", &photo, ZipMethod::Deflated),
        ("t", &text, ZipMethod::Deflated),
        ("i.zip", &inner, ZipMethod::Stored),
    ]);
    let tgz = write::tar_gz(&[("p", &photo), ("t", &text), ("i.zip", &inner)]);
    let limits = ArchiveLimits {
        max_members: 50,
        max_total_bytes: 200_000,
        max_member_bytes: 30_000,
        ..ArchiveLimits::default()
    };
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for original in [zip, tgz] {
        for _ in 0..1500 {
            let mut bytes = original.clone();
            for _ in 0..1 + next() % 6 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            let mut total = 0usize;
            let result = visit(&bytes, &limits, |m| {
                assert!(m.bytes.len() <= 30_000);
                total += m.bytes.len();
                ControlFlow::Continue(())
            });
            assert!(total <= 200_000);
            if let Ok(summary) = result {
                assert!(summary.entries <= 50);
                assert!(summary.unpacked_bytes <= 200_000);
            }
        }
    }
}
