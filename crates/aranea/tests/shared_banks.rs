//! Banks shared through PostgreSQL: what one machine (a data directory) changes, another sees,
//! by the command line and by a running process's live banks; a change that fails halfway
//! leaves nothing behind. Each "machine" here is a data directory of its own.

use std::path::Path;
use std::process::{Command, Output};

use aranea_index::{
    BankFilter, BankSpec, NewEntry, Origin, Provenance, Signal, SignalType, StoreError,
    VideoIndexParams,
};
use aranea_server::{BankHome, LiveBanks};
use serde_json::Value;
use sqlx::Connection;

/// A fresh database on the test server (ARANEA_TEST_POSTGRES).
fn database(tag: &str) -> String {
    let server = std::env::var("ARANEA_TEST_POSTGRES").expect(
        "ARANEA_TEST_POSTGRES is not set: run scripts/test, which starts a throwaway PostgreSQL",
    );
    let name = format!("aranea_shared_banks_{tag}_{}", std::process::id());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&server).await.unwrap();
        for sql in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    });
    let (base, _) = server.rsplit_once('/').expect("postgres://…/DATABASE");
    format!("{base}/{name}")
}

fn bank(db: &str, data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aranea"))
        .args(["--db", db, "--data"])
        .arg(data)
        .arg("bank")
        .args(args)
        .output()
        .expect("run aranea")
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

#[test]
fn the_command_line_on_one_machine_changes_the_banks_another_machine_reads() {
    let db = database("cli");
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    ok(
        &db,
        first.path(),
        &["create", "known", "--classification", "csam"],
    );
    let list = first.path().join("hashes.txt");
    let lines: String = (0..500).map(|n| md5(n) + "\n").collect();
    std::fs::write(&list, lines).unwrap();
    let list = list.to_str().unwrap();
    ok(
        &db,
        first.path(),
        &[
            "import",
            "known",
            list,
            "--format",
            "hex",
            "--signal-type",
            "md5",
        ],
    );

    let banks: Value =
        serde_json::from_str(ok(&db, second.path(), &["list", "--format", "json"]).trim()).unwrap();
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
        &[
            "import",
            "known",
            bad.to_str().unwrap(),
            "--format",
            "hex",
            "--signal-type",
            "md5",
        ],
    );
    assert!(!refused.status.success());
    let banks: Value =
        serde_json::from_str(ok(&db, first.path(), &["list", "--format", "json"]).trim()).unwrap();
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

#[test]
fn live_banks_on_two_machines_follow_each_other_and_a_failed_change_leaves_nothing() {
    let db = database("live");
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let open = |data: &Path| {
        LiveBanks::open_home(
            BankHome::for_database(data, &db).unwrap(),
            VideoIndexParams::default(),
        )
        .unwrap()
    };
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
