//! Banks shared through PostgreSQL: what one machine (a data directory) changes, another sees,
//! by the command line and by a running process's live banks; a change that fails halfway
//! leaves nothing behind. Each "machine" here is a data directory of its own.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use aranea_hash::{PdqHash, VpdqFeature};
use aranea_index::{
    BankFilter, BankSpec, EntryId, NewEntry, Origin, Provenance, Signal, SignalType, StoreError,
    VideoIndexParams, vpdq_entry,
};
use aranea_server::banks::MediaRef;
use aranea_server::{BankHome, LiveBanks};
use serde_json::Value;

#[path = "common/postgres.rs"]
mod postgres;

/// A fresh database for one test of this binary.
fn database(tag: &str) -> String {
    postgres::fresh_database(&format!("aranea_shared_banks_{tag}_{}", std::process::id()))
}

/// `aranea --db DB --data DATA ARGS...`.
fn aranea(db: &str, data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aranea"))
        .args(["--db", db, "--data"])
        .arg(data)
        .args(args)
        .output()
        .expect("run aranea")
}

fn bank(db: &str, data: &Path, args: &[&str]) -> Output {
    aranea(db, data, &[&["bank"], args].concat())
}

fn ok(db: &str, data: &Path, args: &[&str]) -> String {
    let output = bank(db, data, args);
    assert!(
        output.status.success(),
        "aranea bank {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn md5(n: u64) -> String {
    format!("{:032x}", 0xa5a5_0000_u64 + n)
}

/// Creates bank `known` (classification `csam`) from the machine with data `data`.
fn create_known(db: &str, data: &Path) {
    ok(db, data, &["create", "known", "--classification", "csam"]);
}

/// Writes the MD5 values numbered `range` as a hex list `name` in `dir`; returns its path.
fn md5_list(dir: &Path, name: &str, range: std::ops::Range<u64>) -> String {
    let list = dir.join(name);
    std::fs::write(&list, range.map(|n| md5(n) + "\n").collect::<String>()).unwrap();
    list.to_str().unwrap().to_owned()
}

/// `aranea bank` arguments importing the hex list at `list` into bank `known`.
fn import_args<'a>(list: &'a str, signal_type: &'a str) -> [&'a str; 7] {
    [
        "import",
        "known",
        list,
        "--format",
        "hex",
        "--signal-type",
        signal_type,
    ]
}

/// The one bank as `aranea bank list --format json` shows it from the machine at `data`.
fn listed(db: &str, data: &Path) -> Value {
    let banks: Value =
        serde_json::from_str(ok(db, data, &["list", "--format", "json"]).trim()).unwrap();
    assert_eq!(banks.as_array().map(Vec::len), Some(1), "{banks}");
    banks[0].clone()
}

#[test]
fn the_command_line_on_one_machine_changes_the_banks_another_machine_reads() {
    let db = database("cli");
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    create_known(&db, first.path());
    let list = md5_list(first.path(), "hashes.txt", 0..500);
    let list = list.as_str();
    ok(&db, first.path(), &import_args(list, "md5"));

    let banks = listed(&db, second.path());
    assert_eq!(banks["name"], "known", "{banks}");
    assert_eq!(banks["entries"]["enabled"], 500, "{banks}");
    let hit: Value =
        serde_json::from_str(ok(&db, second.path(), &["match", "known", "--md5", &md5(7)]).trim())
            .unwrap();
    assert_eq!(hit["hits"][0]["value"], md5(7), "{hit}");
    // Nothing of the banks lives in the second machine's bank directory: only its snapshot
    // cache of the database's journal.
    assert!(!second.path().join("banks").exists());
    assert!(second.path().join("bank-cache").is_dir());

    // A file with an error imports nothing, on any machine.
    std::fs::write(
        first.path().join("bad.txt"),
        format!("{}\nnot-hex\n", md5(900)),
    )
    .unwrap();
    let bad = first.path().join("bad.txt");
    let refused = bank(
        &db,
        second.path(),
        &import_args(bad.to_str().unwrap(), "md5"),
    );
    assert!(!refused.status.success());
    let banks = listed(&db, first.path());
    assert_eq!(banks["entries"]["enabled"], 500, "{banks}");
}

fn provenance() -> Provenance {
    Provenance {
        added_by: "test".into(),
        added_at: 0,
        origin: Origin::Manual,
    }
}

fn md5_entries(bank: u32, provenance: u32, range: std::ops::Range<u64>) -> Vec<NewEntry> {
    range
        .map(|n| NewEntry {
            bank,
            signal: Signal::from_hex(SignalType::Md5, &md5(n)).unwrap(),
            classification: None,
            provenance,
            line: 0,
            metadata: None,
        })
        .collect()
}

fn matches(banks: &LiveBanks, n: u64) -> bool {
    let query = Signal::from_hex(SignalType::Md5, &md5(n)).unwrap();
    !banks
        .live()
        .load()
        .match_signal(&query, &BankFilter::All)
        .hits
        .is_empty()
}

/// The live banks a server on the machine with data directory `data` would open.
fn live_banks(db: &str, data: &Path) -> LiveBanks {
    LiveBanks::open_home(
        BankHome::for_database(data, db).unwrap(),
        VideoIndexParams::default(),
    )
    .unwrap()
}

#[test]
fn live_banks_on_two_machines_follow_each_other_and_a_failed_change_leaves_nothing() {
    let db = database("live");
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let open = |data: &Path| live_banks(&db, data);
    let (a, b) = (open(first.path()), open(second.path()));
    a.write(|store| {
        let bank = store.create_bank(BankSpec::new("known", "local", "csam"))?;
        let by = store.add_provenance(provenance())?;
        store.add_entries(&md5_entries(bank, by, 0..10))
    })
    .unwrap();
    assert!(matches(&a, 3));
    assert!(!matches(&b, 3), "the other machine has not polled yet");
    assert!(b.refresh_if_changed().unwrap());
    assert!(matches(&b, 3), "caught up with the other machine's change");
    assert!(
        !b.refresh_if_changed().unwrap(),
        "nothing new the second time"
    );

    // A change that fails inside its transaction, after some entries were appended.
    let failed = b.write(|store| {
        let bank = store.bank_id("known")?;
        let by = store.add_provenance(provenance())?;
        store.begin_transaction()?;
        store.append_entries(&md5_entries(bank, by, 100..200))?;
        Err::<(), _>(StoreError::Transaction("refused halfway".into()))
    });
    assert!(failed.is_err());
    assert!(
        !matches(&b, 150),
        "the failed change is gone on its own machine"
    );
    a.refresh_if_changed().unwrap();
    assert!(!matches(&a, 150), "and never reached the other one");

    // Both machines go on writing in turn, numbering after what was committed.
    b.write(|store| {
        let bank = store.bank_id("known")?;
        let by = store.add_provenance(provenance())?;
        store.add_entries(&md5_entries(bank, by, 10..20))
    })
    .unwrap();
    a.write(|store| {
        let bank = store.bank_id("known")?;
        let by = store.add_provenance(provenance())?;
        store.add_entries(&md5_entries(bank, by, 20..30))
    })
    .unwrap();
    assert!(matches(&a, 15), "a writer catches up before it writes");
    b.refresh_if_changed().unwrap();
    assert!(matches(&b, 25));
    let counted = |banks: &LiveBanks| banks.read(|store| store.state().entry_count());
    assert_eq!((counted(&a), counted(&b)), (30, 30));

    // A third machine opening afresh reads the same banks from the journal.
    let third = tempfile::tempdir().unwrap();
    assert_eq!(counted(&open(third.path())), 30);
}

#[test]
fn an_import_killed_midway_leaves_nothing_and_no_lock() {
    let db = database("kill");
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    create_known(&db, first.path());
    // Long enough that the kill falls inside the import's transaction.
    let list = md5_list(first.path(), "many.txt", 0..1_000_000);
    let mut import = Command::new(env!("CARGO_BIN_EXE_aranea"))
        .args(["--db", &db, "--data"])
        .arg(first.path())
        .arg("bank")
        .args(import_args(&list, "md5"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        import.try_wait().unwrap().is_none(),
        "the import ended before the kill: the test needs a longer list"
    );
    import.kill().unwrap(); // SIGKILL
    import.wait().unwrap();

    // Another machine sees the bank without any of the import, and may write at once: the
    // killed writer's lock went with its connection.
    let banks = listed(&db, second.path());
    assert_eq!(banks["entries"]["enabled"], 0, "{banks}");
    let small = second.path().join("small.txt");
    std::fs::write(&small, format!("{}\n{}\n", md5(1), md5(2))).unwrap();
    let output = within_a_minute(
        Command::new(env!("CARGO_BIN_EXE_aranea"))
            .args(["--db", &db, "--data"])
            .arg(second.path())
            .arg("bank")
            .args(import_args(small.to_str().unwrap(), "md5")),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let banks = listed(&db, first.path());
    assert_eq!(banks["entries"]["enabled"], 2, "{banks}");
}

/// Runs `command`, failing the test instead of hanging if it waits (on a lock) for a minute.
fn within_a_minute(command: &mut Command) -> Output {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the command was still waiting after a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_cached_snapshot_ahead_of_the_database_is_dropped_for_the_journal() {
    let db = database("restore");
    let data = tempfile::tempdir().unwrap();
    create_known(&db, data.path());
    let last_seq = || postgres::scalar(&db, "SELECT MAX(seq) FROM bank_journal");
    let created = last_seq();
    let list = md5_list(data.path(), "hashes.txt", 0..50);
    let list = list.as_str();
    ok(&db, data.path(), &import_args(list, "md5"));
    let caches: Vec<_> = std::fs::read_dir(data.path().join("bank-cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(caches.len(), 1);
    assert!(
        caches[0].join("banks.snapshot").is_file(),
        "the import left a snapshot"
    );

    // The database goes back to before the import (restored from an older backup).
    assert!(last_seq() > created);
    postgres::execute(&db, "DELETE FROM bank_journal WHERE seq > $1", created);
    let output = bank(&db, data.path(), &["list", "--format", "json"]);
    assert!(output.status.success());
    let banks: Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap();
    assert_eq!(
        banks[0]["entries"]["enabled"], 0,
        "the journal's banks, not the snapshot's: {banks}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("aranea: warning: this machine's snapshot of the shared banks")
            && stderr.contains("rebuilt from the database's journal"),
        "the operator is told: {stderr}"
    );
}

/// Standard base64 with padding, for a Basic credential.
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// POSTs `body` to `/v1/media/` and returns the response's JSON body.
fn scan(addr: &str, credential: &str, body: &[u8]) -> Value {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /v1/media/ HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {}\r\n\
         Content-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        base64(credential.as_bytes()),
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    let reply = String::from_utf8(reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let (_, json) = reply.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

#[test]
fn a_server_on_one_machine_matches_what_another_machine_banks() {
    use std::io::BufRead;
    let db = database("serve");
    let (server_machine, desk) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let succeeds = |data: &Path, args: &[&str]| {
        let output = aranea(&db, data, args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let added = succeeds(desk.path(), &["client", "add", "partner"]);
    let credential = added.lines().last().unwrap().to_owned();
    let config = server_machine.path().join("aranea.toml");
    std::fs::write(&config, "[server]\nbank_poll_ms = 200\n").unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_aranea"))
        .args(["--db", &db, "--data"])
        .arg(server_machine.path())
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();

    let photo = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus/img-0002.jpg"
    );
    let bytes = std::fs::read(photo).unwrap();
    assert_eq!(
        scan(&addr, &credential, &bytes)["classification"],
        "no-known-match"
    );

    // The desk machine banks the photo's PDQ while the server runs.
    let pdq = aranea_hash::hash_media(&bytes, &aranea_hash::Limits::default())
        .unwrap()
        .pdq
        .unwrap()
        .hash
        .to_hex();
    let list = desk.path().join("known.txt");
    std::fs::write(&list, format!("{pdq}\n")).unwrap();
    create_known(&db, desk.path());
    ok(
        &db,
        desk.path(),
        &import_args(list.to_str().unwrap(), "pdq"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let answer = loop {
        let answer = scan(&addr, &credential, &bytes);
        if answer["classification"] == "csam" || std::time::Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(answer["classification"], "csam", "{answer}");
    assert_eq!(answer["match_type"], "near", "{answer}");
    assert_eq!(answer["near_match_details"][0]["distance"], 0, "{answer}");
}

#[test]
fn a_journal_row_that_is_no_record_stops_the_open_and_names_its_number() {
    let db = database("hostile");
    let data = tempfile::tempdir().unwrap();
    create_known(&db, data.path());
    // A record cut short, as a hand edit or another program might leave it.
    postgres::execute(
        &db,
        "INSERT INTO bank_journal (seq, record, recorded_at) \
         SELECT MAX(seq) + 1, '{\"op\":\"entry-added\",\"bank\":\"x\"', $1 FROM bank_journal",
        0,
    );
    let other = tempfile::tempdir().unwrap();
    let refused = bank(&db, other.path(), &["list"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("bank journal record"), "{stderr}");
    match BankHome::for_database(other.path(), &db)
        .unwrap()
        .open_store()
    {
        Err(StoreError::Corrupt(why)) => assert!(why.contains("record"), "{why}"),
        Err(other) => panic!("expected a corrupt journal, got {other}"),
        Ok(_) => panic!("a journal with a broken row opened"),
    }
}

#[test]
fn a_cached_snapshot_from_before_a_restore_is_not_replayed_onto_newer_rows() {
    let db = database("rewritten");
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    create_known(&db, first.path());
    let created = postgres::scalar(&db, "SELECT MAX(seq) FROM bank_journal");
    let import = |data: &Path, range: std::ops::Range<u64>| {
        let list = md5_list(data, "hashes.txt", range);
        ok(&db, data, &import_args(&list, "md5"));
    };
    // The first machine's snapshot holds 50 entries; then the database is restored to before
    // them, and the second machine imports 60 others, numbered past that snapshot.
    import(first.path(), 0..50);
    postgres::execute(&db, "DELETE FROM bank_journal WHERE seq > $1", created);
    import(second.path(), 1000..1060);

    let banks = listed(&db, first.path());
    assert_eq!(banks["entries"]["enabled"], 60, "{banks}");
    let gone = bank(&db, first.path(), &["match", "known", "--md5", &md5(7)]);
    let gone: Value = serde_json::from_str(String::from_utf8_lossy(&gone.stdout).trim()).unwrap();
    assert_eq!(gone["hits"], serde_json::json!([]), "{gone}");
}

/// The media a test PDQ entry came from, as its import's metadata names it.
fn media_of(seed: u64) -> MediaRef {
    MediaRef {
        sha1_base32: format!("SHA1OF{seed}"),
        sha256_hex: format!("{seed:064x}"),
    }
}

/// PDQ entries whose import named the media they came from.
fn imaged_entries(bank: u32, provenance: u32, seeds: std::ops::Range<u64>) -> Vec<NewEntry> {
    seeds
        .map(|seed| {
            let media = media_of(seed);
            let mut code = [0u8; 32];
            code[..8].copy_from_slice(&seed.to_le_bytes());
            code[8..16].copy_from_slice(&seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
            NewEntry {
                bank,
                signal: Signal::from_bytes(SignalType::Pdq, &code).unwrap(),
                classification: None,
                provenance,
                line: 0,
                metadata: Some(
                    serde_json::json!({
                        "sha1_base32": media.sha1_base32,
                        "sha256_hex": media.sha256_hex,
                    })
                    .to_string(),
                ),
            }
        })
        .collect()
}

/// A video of `frames` one-second frames, all different.
fn video(first: u64, frames: u64) -> Vec<VpdqFeature> {
    (first..first + frames)
        .map(|n| VpdqFeature {
            frame: n - first,
            timestamp: (n - first) as f64,
            quality: 100,
            hash: PdqHash::from_words([n, n.wrapping_mul(0x9E37_79B9_7F4A_7C15), !n, n << 7]),
        })
        .collect()
}

#[test]
fn media_references_and_videos_follow_each_change_on_both_machines() {
    let db = database("derived");
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let open = |data: &Path| live_banks(&db, data);
    let (writer, follower) = (open(first.path()), open(second.path()));
    let (bank, by) = writer
        .write(|store| {
            let bank = store.create_bank(BankSpec::new("known", "local", "csam"))?;
            Ok((bank, store.add_provenance(provenance())?))
        })
        .unwrap();
    let mut imaged: Vec<(EntryId, u64)> = Vec::new();
    let mut add_images = |seeds: std::ops::Range<u64>| {
        let start = seeds.start;
        let added = writer
            .write(|store| store.add_entries(&imaged_entries(bank, by, seeds)))
            .unwrap()
            .added;
        imaged.extend(added.into_iter().zip(start..));
        assert!(follower.refresh_if_changed().unwrap());
        imaged.clone()
    };
    let all_known = |banks: &LiveBanks, imaged: &[(EntryId, u64)], when: &str| {
        for &(entry, seed) in imaged {
            assert_eq!(
                banks.media_ref(entry),
                Some(media_of(seed)),
                "{when}: entry {entry}"
            );
        }
    };
    let both = |check: &dyn Fn(&LiveBanks)| {
        check(&writer);
        check(&follower);
    };

    let so_far = add_images(0..10);
    both(&|banks| all_known(banks, &so_far, "first images"));
    let videos_before: Vec<_> = [&writer, &follower]
        .map(|banks| Arc::clone(&banks.videos().unwrap().index))
        .into();
    let so_far = add_images(10..20);
    both(&|banks| all_known(banks, &so_far, "more images"));
    for (banks, before) in [&writer, &follower].iter().zip(&videos_before) {
        assert!(
            Arc::ptr_eq(&banks.videos().unwrap().index, before),
            "images alone leave the video index as it was"
        );
    }

    let known_video = video(1_000, 4);
    let video_entry = writer
        .write(|store| {
            let (signal, metadata) = vpdq_entry(&known_video);
            let mut entry = imaged_entries(bank, by, 0..1).remove(0);
            entry.signal = signal;
            entry.metadata = Some(metadata);
            store.add_entries(&[entry])
        })
        .unwrap()
        .added[0];
    assert!(follower.refresh_if_changed().unwrap());
    both(&|banks| {
        let videos = banks.videos().unwrap();
        assert_eq!(videos.frames(video_entry), Some(&known_video[..]));
        let generation = banks.live().load();
        let found = videos
            .index
            .match_video(&known_video, generation.banks(), &BankFilter::All);
        assert_eq!(found.hits.len(), 1, "{found:?}");
        assert_eq!(found.hits[0].entry, video_entry);
    });

    // Past the bound of references kept apart from the rest, in one change.
    let so_far = add_images(20..6_020);
    both(&|banks| all_known(banks, &so_far, "thousands more"));
    let so_far = add_images(6_020..6_030);
    both(&|banks| all_known(banks, &so_far, "after the merge"));

    writer
        .write(|store| store.disable_entry(video_entry, by))
        .unwrap();
    assert!(follower.refresh_if_changed().unwrap());
    both(&|banks| {
        assert!(
            banks.videos().unwrap().index.is_empty(),
            "the video was disabled"
        );
        all_known(banks, &so_far, "after a disable");
    });
    let so_far = add_images(6_030..6_040);
    both(&|banks| all_known(banks, &so_far, "images after the rebuild"));

    let third = tempfile::tempdir().unwrap();
    let fresh = open(third.path());
    all_known(&fresh, &so_far, "a machine opening afresh");
    assert!(fresh.videos().unwrap().index.is_empty());
}
