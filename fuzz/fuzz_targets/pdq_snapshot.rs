//! Any bytes as a bare PDQ index snapshot (`read_pdq_index`), which must not trust what it
//! reads: the reader must give an index or a `BadSnapshot` error, never panic or allocate past
//! the file. The file's last four bytes are replaced by the right CRC-32 of the rest before
//! reading, so mutations reach the index decoding and its checks instead of only failing the
//! checksum (which the reader verifies after decoding). An index the reader accepts must be
//! usable: its codes all reachable, a search of any query returns exactly the codes within the
//! radius (the reader refuses substring tables that are not the ones the codes build, which
//! would hide codes from searches), it writes and reads back equal, and the same bytes with a
//! wrong checksum are refused.
#![no_main]

use std::cell::RefCell;
use std::path::PathBuf;

use aranea_index::error::StoreError;
use aranea_index::pdq_index::{CodeHit, MAX_CODES, SearchScratch, hamming};
use aranea_index::snapshot::{read_pdq_index, write_pdq_index};
use libfuzzer_sys::fuzz_target;

/// A file per fuzzing process in memory-backed /dev/shm where there is one (the reader only
/// takes a path), rewritten for every input.
struct Scratch {
    file: PathBuf,
    rewritten: PathBuf,
    search: SearchScratch,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new({
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let name = format!("aranea-fuzz-pdq-snapshot-{}", std::process::id());
        Scratch {
            file: dir.join(format!("{name}.idx")),
            rewritten: dir.join(format!("{name}-rewritten.idx")),
            search: SearchScratch::default(),
        }
    });
}

fuzz_target!(|data: &[u8]| {
    SCRATCH.with_borrow_mut(|scratch| check(data, scratch));
});

fn check(data: &[u8], scratch: &mut Scratch) {
    let body = &data[..data.len().saturating_sub(4)];
    let crc = crc32fast::hash(body);
    let mut file = body.to_vec();
    file.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(&scratch.file, &file).unwrap();
    let index = match read_pdq_index(&scratch.file) {
        Ok(index) => index,
        Err(StoreError::BadSnapshot { .. }) => return,
        Err(other) => panic!("not a BadSnapshot error: {other}"),
    };

    // The checksum guards every byte: the same body with a wrong CRC is refused.
    let wrong = (crc ^ 1).to_le_bytes();
    let at = file.len() - 4;
    file[at..].copy_from_slice(&wrong);
    std::fs::write(&scratch.file, &file).unwrap();
    assert!(matches!(
        read_pdq_index(&scratch.file),
        Err(StoreError::BadSnapshot { .. })
    ));

    assert!(index.len() <= MAX_CODES);
    assert!(index.len() * 32 <= body.len());
    let count = u32::try_from(index.len()).unwrap();
    assert!(index.code(count).is_none());
    let codes: Vec<[u64; 4]> = (0..count).map(|id| *index.code(id).unwrap()).collect();

    // Queries: a few stored codes, one a few bits away from a stored code, and all zeros.
    let mut queries: Vec<[u64; 4]> = codes.iter().take(4).copied().collect();
    if let Some(first) = codes.first() {
        queries.push([first[0] ^ 0b1011, first[1], first[2] ^ (1 << 63), first[3]]);
    }
    queries.push([0; 4]);
    let radius = u32::from(data.last().copied().unwrap_or(0));
    for radius in [0, radius % 64, radius] {
        let mut batch = Vec::new();
        index.search_batch(&queries, radius, &mut batch);
        assert_eq!(batch.len(), queries.len());
        for (query, batch_hits) in queries.iter().zip(&batch) {
            let mut hits = Vec::new();
            index.search(query, radius, &mut scratch.search, &mut hits);
            check_hits(&codes, query, radius, &hits);
            check_hits(&codes, query, radius, batch_hits);
        }
    }

    write_pdq_index(&scratch.rewritten, &index).unwrap();
    let again = read_pdq_index(&scratch.rewritten).expect("a rewritten index reads back");
    assert!(again == index, "rewritten index differs");
}

fn check_hits(codes: &[[u64; 4]], query: &[u64; 4], radius: u32, hits: &[CodeHit]) {
    for hit in hits {
        let code = codes
            .get(hit.id as usize)
            .expect("a hit's id is in the index");
        assert_eq!(hit.distance, hamming(code, query));
        assert!(hit.distance <= radius);
    }
    let mut found: Vec<u32> = hits.iter().map(|hit| hit.id).collect();
    found.sort_unstable();
    let within: Vec<u32> = (0..codes.len() as u32)
        .filter(|&id| hamming(&codes[id as usize], query) <= radius)
        .collect();
    assert_eq!(
        found, within,
        "a search missed codes within the radius, or repeated one"
    );
}
