//! Any bytes as an archive body: the walk must end (members or a typed error), never panic, and
//! keep every limit however the headers lie.
#![no_main]

use std::ops::ControlFlow;

use aranea_crawl::archive::{self, ArchiveError, ArchiveLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = ArchiveLimits {
        max_members: 64,
        max_total_bytes: 4 << 20,
        max_member_bytes: 1 << 20,
        max_depth: 3,
        max_ratio: 100,
        ratio_free_bytes: 64 << 10,
    };
    let kind = archive::sniff(data);
    let mut handed_out = 0u64;
    let mut count = 0u32;
    let result = archive::visit(data, &limits, |member| {
        assert!(member.bytes.len() as u64 <= limits.max_member_bytes);
        // Each layer's name is cut to MAX_PATH_BYTES (plus the ellipsis and the separator).
        assert!(member.path.len() <= 3 * (archive::MAX_PATH_BYTES + 8));
        handed_out += member.bytes.len() as u64;
        count += 1;
        ControlFlow::Continue(())
    });
    assert!(handed_out <= limits.max_total_bytes);
    assert!(count <= limits.max_members);
    match result {
        Ok(summary) => {
            assert!(kind.is_some());
            assert_eq!(summary.kind, kind.unwrap());
            assert_eq!(summary.members, count);
            assert!(summary.entries <= limits.max_members);
            assert!(summary.unpacked_bytes <= limits.max_total_bytes);
        }
        Err(ArchiveError::NotAnArchive) => assert!(kind.is_none()),
        Err(_) => assert!(kind.is_some()),
    }
});
