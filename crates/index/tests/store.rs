//! Bank directories end to end: journal, snapshots, crash recovery, live changes, matching
//! rules (thresholds, allow-lists, disabled banks and entries), on real files in a temp dir.

mod common;

use common::{entry, pdq, provenance};
use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aranea_hash::PdqHash;
use aranea_index::{BankFilter, BankKind, BankSpec, BankStore, NewEntry, Signal, SignalType};

fn flip(hash: PdqHash, bits: u32) -> PdqHash {
    let mut words = hash.to_words();
    for bit in 0..bits {
        words[(bit / 64) as usize] ^= 1 << (bit % 64);
    }
    PdqHash::from_words(words)
}

#[test]
fn changes_survive_reopening_with_and_without_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let md5 = Signal::from_hex(SignalType::Md5, "00112233445566778899aabbccddeeff").unwrap();
    let first;
    {
        let mut store = BankStore::open(dir.path()).unwrap();
        let bank = store
            .create_bank(BankSpec::new("local", "local", "csam"))
            .unwrap();
        let p = provenance(&mut store);
        first = store
            .add_entries(&[entry(bank, Signal::Pdq(pdq(1)), p), entry(bank, md5, p)])
            .unwrap()
            .added;
        store.write_snapshot().unwrap();
        // After the snapshot: only in the journal.
        store
            .add_entries(&[entry(bank, Signal::Pdq(pdq(2)), p)])
            .unwrap();
        store.disable_entry(first[1], p).unwrap();
    }
    let store = BankStore::open(dir.path()).unwrap();
    assert!(store.warnings().is_empty(), "{:?}", store.warnings());
    let generation = store.live().load();
    assert_eq!(
        generation
            .match_signal(&Signal::Pdq(flip(pdq(1), 5)), &BankFilter::All)
            .hits[0]
            .entry,
        first[0]
    );
    assert_eq!(
        generation
            .match_signal(&Signal::Pdq(pdq(2)), &BankFilter::All)
            .hits
            .len(),
        1
    );
    assert!(
        generation
            .match_signal(&md5, &BankFilter::All)
            .hits
            .is_empty(),
        "disabled entry matched"
    );
    assert!(store.state().entry(first[1]).unwrap().disabled);
}

#[test]
fn a_torn_journal_record_is_ignored_and_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = BankStore::open(dir.path()).unwrap();
        let bank = store
            .create_bank(BankSpec::new("local", "local", "csam"))
            .unwrap();
        let p = provenance(&mut store);
        store
            .add_entries(&[entry(bank, Signal::Pdq(pdq(1)), p)])
            .unwrap();
    }
    let journal = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".log"))
        .unwrap();
    let intact = std::fs::metadata(&journal).unwrap().len();
    // A crash mid-append: a frame header promising more than was written.
    let mut file = OpenOptions::new().append(true).open(&journal).unwrap();
    file.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0, b'{', b'"'])
        .unwrap();
    drop(file);
    let mut store = BankStore::open(dir.path()).unwrap();
    assert_eq!(store.warnings().len(), 1, "{:?}", store.warnings());
    assert_eq!(
        store
            .live()
            .load()
            .match_signal(&Signal::Pdq(pdq(1)), &BankFilter::All)
            .hits
            .len(),
        1
    );
    // The next append replaces the torn bytes and everything reads back.
    let p = provenance(&mut store);
    store
        .add_entries(&[entry(0, Signal::Pdq(pdq(3)), p)])
        .unwrap();
    drop(store);
    assert!(std::fs::metadata(&journal).unwrap().len() > intact);
    let store = BankStore::open(dir.path()).unwrap();
    assert!(store.warnings().is_empty());
    assert_eq!(
        store
            .live()
            .load()
            .match_signal(&Signal::Pdq(pdq(3)), &BankFilter::All)
            .hits
            .len(),
        1
    );
}

#[test]
fn a_corrupt_snapshot_is_rejected_and_rebuilt_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = BankStore::open(dir.path()).unwrap();
        let bank = store
            .create_bank(BankSpec::new("local", "local", "csam"))
            .unwrap();
        let p = provenance(&mut store);
        let entries: Vec<NewEntry> = (0..500)
            .map(|i| entry(bank, Signal::Pdq(pdq(i)), p))
            .collect();
        store.add_entries(&entries).unwrap();
        store.write_snapshot().unwrap();
    }
    let path = dir.path().join("banks.snapshot");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let store = BankStore::open(dir.path()).unwrap();
    assert!(
        store.warnings()[0].contains("not usable"),
        "{:?}",
        store.warnings()
    );
    assert_eq!(store.state().entries().len(), 500);
    assert_eq!(
        store
            .live()
            .load()
            .match_signal(&Signal::Pdq(pdq(77)), &BankFilter::All)
            .hits
            .len(),
        1
    );
    // Truncated and empty snapshots are rejected the same way.
    for length in [0, 7, 40, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..length]).unwrap();
        let store = BankStore::open(dir.path()).unwrap();
        assert_eq!(store.warnings().len(), 1, "length {length}");
        assert_eq!(store.state().entries().len(), 500);
    }
}

#[test]
fn thresholds_allow_lists_and_disabled_banks_decide_what_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = BankStore::open(dir.path()).unwrap();
    let strict = store
        .create_bank(BankSpec {
            pdq_threshold: 10,
            ..BankSpec::new("strict", "iwf", "csam")
        })
        .unwrap();
    let loose = store
        .create_bank(BankSpec {
            pdq_threshold: 70,
            ..BankSpec::new("loose", "ncmec", "harmful")
        })
        .unwrap();
    let allow = store
        .create_bank(BankSpec {
            kind: BankKind::AllowList,
            ..BankSpec::new("stock", "local", "benign")
        })
        .unwrap();
    let p = provenance(&mut store);
    let base = pdq(42);
    let mut labelled = entry(strict, Signal::Pdq(base), p);
    labelled.classification = Some("csam-a1".into());
    store
        .add_entries(&[labelled, entry(loose, Signal::Pdq(base), p)])
        .unwrap();
    let live = store.live();

    let at = |bits| {
        live.load()
            .match_signal(&Signal::Pdq(flip(base, bits)), &BankFilter::All)
    };
    let near = at(8);
    assert_eq!(near.hits.len(), 2);
    assert_eq!(near.hits[0].distance, 8);
    assert!(
        near.hits
            .iter()
            .any(|h| h.classification == "csam-a1" && h.bank_name == "strict")
    );
    assert!(
        near.hits
            .iter()
            .any(|h| h.classification == "harmful" && h.bank_name == "loose")
    );
    let far = at(60);
    assert_eq!(
        far.hits
            .iter()
            .map(|h| h.bank_name.as_str())
            .collect::<Vec<_>>(),
        ["loose"]
    );
    assert!(at(71).hits.is_empty());

    store
        .update_bank("loose", |spec| spec.enabled = false)
        .unwrap();
    assert!(at(60).hits.is_empty(), "disabled bank still matched");
    let only_strict = live
        .load()
        .match_signal(&Signal::Pdq(base), &BankFilter::Only(vec![strict]));
    assert_eq!(only_strict.hits.len(), 1);

    store
        .add_entries(&[entry(allow, Signal::Pdq(flip(base, 3)), p)])
        .unwrap();
    let allowed = at(5);
    assert!(allowed.hits.is_empty());
    assert_eq!(allowed.allowed_by.len(), 1);
    assert_eq!(allowed.allowed_by[0].bank_name, "stock");
    assert_eq!(allowed.suppressed.len(), 1);
    assert_eq!(allowed.suppressed[0].bank_name, "strict");
}

#[test]
fn duplicates_are_reported_not_added_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = BankStore::open(dir.path()).unwrap();
    let bank = store
        .create_bank(BankSpec::new("local", "local", "csam"))
        .unwrap();
    let other = store
        .create_bank(BankSpec::new("other", "local", "csam"))
        .unwrap();
    let p = provenance(&mut store);
    let first = store
        .add_entries(&[entry(bank, Signal::Pdq(pdq(1)), p)])
        .unwrap();
    let outcome = store
        .add_entries(&[
            entry(bank, Signal::Pdq(pdq(1)), p),
            entry(bank, Signal::Pdq(pdq(2)), p),
            entry(bank, Signal::Pdq(pdq(2)), p),
            entry(other, Signal::Pdq(pdq(1)), p),
        ])
        .unwrap();
    assert_eq!(outcome.added.len(), 2);
    assert_eq!(
        outcome.duplicates,
        vec![(0, first.added[0]), (2, outcome.added[0])]
    );
    assert_eq!(store.state().entries().len(), 3);
}

#[test]
fn readers_keep_answering_while_a_writer_adds_and_merges() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = BankStore::open(dir.path()).unwrap();
    let bank = store
        .create_bank(BankSpec::new("local", "local", "csam"))
        .unwrap();
    let p = provenance(&mut store);
    store
        .add_entries(&[entry(bank, Signal::Pdq(pdq(0)), p)])
        .unwrap();
    let live = store.live();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (live, stop) = (Arc::clone(&live), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut answered = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // The first entry is never disabled: every generation must find it.
                let result = live
                    .load()
                    .match_signal(&Signal::Pdq(pdq(0)), &BankFilter::All);
                assert_eq!(result.hits.len(), 1);
                answered += 1;
            }
            answered
        })
    };
    for round in 1..=30u64 {
        let batch: Vec<NewEntry> = (0..1_000)
            .map(|i| entry(bank, Signal::Pdq(pdq(round * 10_000 + i)), p))
            .collect();
        store.add_entries(&batch).unwrap();
        // Visible to the very next query.
        let probe = Signal::Pdq(flip(pdq(round * 10_000 + 7), 4));
        assert_eq!(
            live.load()
                .match_signal(&probe, &BankFilter::All)
                .hits
                .len(),
            1,
            "round {round}"
        );
        if let Some(merge) = live.merge_in_background() {
            merge.join().unwrap().unwrap();
            assert_eq!(live.load().segment_sizes().1, 0);
        }
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    let generation = live.load();
    assert_eq!(
        generation.segment_sizes().0 + generation.segment_sizes().1,
        30_001
    );
}

/// Small changes that together pass `MERGE_AT` (as review decisions and API appends make in
/// a long-running server) are merged into the base without anyone asking: the delta, which
/// every query scans by brute force and every publish copies, does not grow without end.
#[test]
fn a_delta_grown_by_small_changes_is_merged_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = BankStore::open(dir.path()).unwrap();
    let bank = store
        .create_bank(BankSpec::new("local", "local", "csam"))
        .unwrap();
    let p = provenance(&mut store);
    let batch = 1_000u64;
    let batches = aranea_index::live::MERGE_AT as u64 / batch + 1;
    for round in 0..batches {
        let entries: Vec<NewEntry> = (0..batch)
            .map(|i| entry(bank, Signal::Pdq(pdq(round * 10_000 + i)), p))
            .collect();
        store.add_entries(&entries).unwrap();
    }
    let live = store.live();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while live.load().segment_sizes().1 >= aranea_index::live::MERGE_AT {
        assert!(
            std::time::Instant::now() < deadline,
            "the delta still holds {} entries",
            live.load().segment_sizes().1
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let generation = live.load();
    let (base, delta) = generation.segment_sizes();
    assert_eq!(base + delta, (batches * batch) as usize);
    for round in [0, batches - 1] {
        let probe = Signal::Pdq(flip(pdq(round * 10_000 + 7), 4));
        assert_eq!(
            generation.match_signal(&probe, &BankFilter::All).hits.len(),
            1,
            "round {round}"
        );
    }
}

/// A bank's source and classification are bounded lines and its description bounded text with
/// no control character but line feeds and tabs, however the bank is created or changed;
/// nothing refused reaches the journal.
#[test]
fn a_bank_text_that_would_break_a_text_display_is_refused() {
    use aranea_index::StoreError;
    use aranea_index::bank::{
        MAX_BANK_DESCRIPTION_BYTES, MAX_BANK_SOURCE_BYTES, MAX_CLASSIFICATION_BYTES,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut store = BankStore::open(dir.path()).unwrap();
    let with = |source: &str, description: &str| {
        let mut spec = BankSpec::new("texts", source, "csam");
        spec.description = description.to_owned();
        spec
    };
    for (source, description, field) in [
        ("hotline:ca\nforged: line", "", "source"),
        ("hotline\0ca", "", "source"),
        ("hotline\rca", "", "source"),
        ("hotline\tca", "", "source"),
        ("local", "first line\0hidden", "description"),
        ("local", "overwrite\rthis", "description"),
        ("local", "colour \u{1b}[31mred", "description"),
    ] {
        match store.create_bank(with(source, description)) {
            Err(StoreError::BankTextControl { field: refused, .. }) => {
                assert_eq!(refused, field, "{source:?} / {description:?}")
            }
            other => panic!("{source:?} / {description:?}: {other:?}"),
        }
    }
    let long_source = "s".repeat(MAX_BANK_SOURCE_BYTES + 1);
    assert!(matches!(
        store.create_bank(with(&long_source, "")),
        Err(StoreError::BankTextTooLong {
            field: "source",
            ..
        })
    ));
    let long_description = "d".repeat(MAX_BANK_DESCRIPTION_BYTES + 1);
    assert!(matches!(
        store.create_bank(with("local", &long_description)),
        Err(StoreError::BankTextTooLong {
            field: "description",
            ..
        })
    ));
    for classification in ["csam\u{1b}[2J", "csam\nforged: line", "csam\r", "a\tb"] {
        let refused = store.create_bank(BankSpec::new("texts", "local", classification));
        assert!(
            matches!(
                refused,
                Err(StoreError::BankTextControl {
                    field: "classification",
                    ..
                })
            ),
            "{classification:?}: {refused:?}"
        );
    }
    let long_classification = "c".repeat(MAX_CLASSIFICATION_BYTES + 1);
    assert!(matches!(
        store.create_bank(BankSpec::new("texts", "local", &long_classification)),
        Err(StoreError::BankTextTooLong {
            field: "classification",
            ..
        })
    ));
    assert!(store.state().banks().is_empty(), "a refused bank was kept");

    // At the limits, with line breaks and tabs in the description: accepted.
    let source = "s".repeat(MAX_BANK_SOURCE_BYTES);
    let description = format!("Two lines:\n\tindented{}", "d".repeat(100));
    store.create_bank(with(&source, &description)).unwrap();
    let refused = store.update_bank("texts", |spec| spec.description.push('\0'));
    assert!(
        matches!(
            refused,
            Err(StoreError::BankTextControl {
                field: "description",
                ..
            })
        ),
        "{refused:?}"
    );
    let refused = store.update_bank("texts", |spec| spec.classification.push('\u{1b}'));
    assert!(
        matches!(
            refused,
            Err(StoreError::BankTextControl {
                field: "classification",
                ..
            })
        ),
        "{refused:?}"
    );
    store
        .update_bank("texts", |spec| spec.enabled = false)
        .unwrap();
    drop(store);
    let reopened = BankStore::open(dir.path()).unwrap();
    assert_eq!(reopened.state().banks().len(), 1);
    assert_eq!(reopened.state().banks()[0].spec.description, description);
    assert!(!reopened.state().banks()[0].spec.enabled);
    assert_eq!(reopened.state().banks()[0].spec.classification, "csam");
}

/// An entry's own classification is shown in place of its bank's, so it follows the same
/// rule whoever adds it (an import, a review decision, the CLI): a batch holding one that
/// breaks it is refused whole, naming its position, and nothing of it reaches the journal.
#[test]
fn an_entry_classification_a_bank_could_not_have_is_refused() {
    use aranea_index::StoreError;
    use aranea_index::bank::TextError;
    let dir = tempfile::tempdir().unwrap();
    let mut store = BankStore::open(dir.path()).unwrap();
    let bank = store
        .create_bank(BankSpec::new("one", "local", "csam"))
        .unwrap();
    let provenance = provenance(&mut store);
    let labelled = |seed: u64, label: &str| NewEntry {
        classification: Some(label.to_owned()),
        ..entry(bank, Signal::Pdq(pdq(seed)), provenance)
    };
    let hostile = [
        ("csam\u{1b}[2J", 0x1b),
        ("csam\rfine", 0x0d),
        ("cs\0am", 0),
        ("cs\u{7f}am", 0x7f),
        ("two\nlines", 0x0a),
    ];
    for (label, control) in hostile {
        let refused = store.add_entries(&[labelled(1, "fine"), labelled(2, label)]);
        match refused {
            Err(StoreError::EntryClassification {
                position: 1,
                source: TextError::Control { code, .. },
            }) => assert_eq!(code, control, "{label:?}"),
            other => panic!("{label:?}: {other:?}"),
        }
    }
    let over = format!("{}x", "é".repeat(50));
    assert!(matches!(
        store.add_entries(&[labelled(3, &over)]),
        Err(StoreError::EntryClassification {
            position: 0,
            source: TextError::TooLong { len: 101, .. },
        })
    ));
    assert_eq!(store.state().entry_count(), 0, "a refused batch was kept");
    let seq = store.state().seq();
    drop(store);
    let store = BankStore::open(dir.path()).unwrap();
    assert_eq!(
        (store.state().seq(), store.state().entry_count()),
        (seq, 0),
        "a refused batch reached the journal"
    );
    let mut store = store;
    let at_the_limit = "é".repeat(50);
    let added = store.add_entries(&[labelled(4, &at_the_limit)]).unwrap();
    assert_eq!(added.added.len(), 1);
}

/// Labels that need quoting or are at the length limit come back from an export in every
/// format that carries them, so the rule on imported labels refuses nothing exported.
#[test]
fn exported_classifications_import_back_unchanged() {
    use aranea_index::export::{ExportOptions, write_list};
    use aranea_index::import::{ListFormat, ReadOptions, read_list};
    let dir = tempfile::tempdir().unwrap();
    let mut store = BankStore::open(dir.path()).unwrap();
    let bank = store
        .create_bank(BankSpec::new("one", "local", "csam"))
        .unwrap();
    let provenance = provenance(&mut store);
    let labels = [
        None,
        Some("a, \"quoted\" label".to_owned()),
        Some("# not a comment".to_owned()),
        Some("é".repeat(50)),
        Some("€".repeat(33)),
    ];
    let entries: Vec<NewEntry> = labels
        .iter()
        .enumerate()
        .map(|(seed, label)| NewEntry {
            classification: label.clone(),
            ..entry(bank, Signal::Pdq(pdq(seed as u64)), provenance)
        })
        .collect();
    store.add_entries(&entries).unwrap();
    let expected: Vec<(Signal, String)> = entries
        .iter()
        .map(|e| (e.signal, e.classification.clone().unwrap_or("csam".into())))
        .collect();
    for format in [ListFormat::HmaCsv, ListFormat::Jsonl] {
        let mut exported = Vec::new();
        write_list(
            store.state(),
            bank,
            format,
            &ExportOptions::default(),
            &mut exported,
        )
        .unwrap();
        let mut rows = Vec::new();
        read_list(&exported[..], format, &ReadOptions::default(), &mut |row| {
            rows.push(row.expect("an exported line imports"))
        })
        .unwrap();
        let imported: Vec<(Signal, String)> = rows
            .into_iter()
            .map(|row| (row.signal, row.classification.unwrap_or_default()))
            .collect();
        assert_eq!(imported, expected, "{format:?}");
    }
}
