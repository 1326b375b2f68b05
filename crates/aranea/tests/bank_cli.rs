//! `aranea bank` end to end: the built binary against a temporary data directory, with
//! benign corpus photos that the tests declare "known".

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

/// `aranea --data DATA bank ARGS`, not yet run.
fn bank_command(data: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aranea"));
    command.arg("--data").arg(data).arg("bank").args(args);
    command
}

fn aranea(data: &Path, args: &[&str]) -> Output {
    bank_command(data, args).output().expect("run aranea")
}

/// The standard output of `aranea bank ARGS`, which must have succeeded.
fn succeeded(args: &[&str], output: Output) -> String {
    assert!(
        output.status.success(),
        "aranea bank {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn ok(data: &Path, args: &[&str]) -> String {
    succeeded(args, aranea(data, args))
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn photo(name: &str) -> PathBuf {
    Path::new(CORPUS).join(name)
}

fn pdq_of(name: &str) -> aranea_hash::PdqResult {
    let bytes = std::fs::read(photo(name)).unwrap();
    aranea_hash::hash_media(&bytes, &aranea_hash::Limits::default())
        .unwrap()
        .pdq
        .unwrap()
}

#[test]
fn banks_are_created_listed_shown_disabled_and_enabled() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    ok(
        d,
        &[
            "create",
            "hotline",
            "--source",
            "hotline:ca",
            "--classification",
            "csam",
            "--threshold",
            "40",
        ],
    );
    ok(
        d,
        &[
            "create",
            "stock",
            "--classification",
            "benign",
            "--allow-list",
        ],
    );
    let duplicate = aranea(d, &["create", "hotline", "--classification", "csam"]);
    assert_eq!(duplicate.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));
    assert_eq!(
        aranea(d, &["create", "all", "--classification", "x"])
            .status
            .code(),
        Some(2)
    );

    let list: Value = serde_json::from_str(&ok(d, &["list", "--format", "json"])).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hotline", "stock"]);
    assert_eq!(list[0]["pdq_threshold"], 40);
    assert_eq!(list[0]["source"], "hotline:ca");
    assert_eq!(list[1]["kind"], "allow-list");

    ok(d, &["disable", "hotline"]);
    let shown: Value =
        serde_json::from_str(&ok(d, &["show", "hotline", "--format", "json"])).unwrap();
    assert_eq!(shown["enabled"], false);
    ok(d, &["enable", "hotline"]);
    let shown: Value =
        serde_json::from_str(&ok(d, &["show", "hotline", "--format", "json"])).unwrap();
    assert_eq!(shown["enabled"], true);
    assert_eq!(aranea(d, &["show", "nosuch"]).status.code(), Some(2));
}

#[test]
fn a_file_with_bad_lines_imports_nothing_unless_told_to_skip_them() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    ok(d, &["create", "partner", "--classification", "csam"]);
    let good_pdq = pdq_of("img-0001.jpg").hash.to_hex();
    let csv = format!(
        "\u{feff}source_id,signal_value,signal_type\r\n\
         # exported by a partner\r\n\
         a1,{good_pdq},pdq\r\n\
         \r\n\
         a2,{short},pdq\r\n\
         a3,{md5},md5\r\n\
         a4,zz{bad},sha1\r\n\
         a5,{md5},sha256\r\n\
         a6,{md5},md5\r\n",
        short = &good_pdq[..62],
        md5 = "0123456789abcdef0123456789abcdef",
        bad = "0".repeat(38),
    );
    let file = d.join("partner.csv");
    std::fs::write(&file, csv).unwrap();
    let file = file.to_str().unwrap();

    let refused = aranea(d, &["import", "partner", file, "--format", "hma-csv"]);
    assert_eq!(refused.status.code(), Some(1));
    let errors = String::from_utf8_lossy(&refused.stderr);
    for line in ["line 5:", "line 7:", "line 8:"] {
        assert!(errors.contains(line), "{line} missing from {errors}");
    }
    let shown: Value =
        serde_json::from_str(&ok(d, &["show", "partner", "--format", "json"])).unwrap();
    assert_eq!(
        shown["entries"]["enabled"], 0,
        "a refused import added entries"
    );

    let summary: Value = serde_json::from_str(&ok(
        d,
        &[
            "import",
            "partner",
            file,
            "--format",
            "hma-csv",
            "--skip-invalid",
        ],
    ))
    .unwrap();
    assert_eq!(summary["invalid"], 3);
    assert_eq!(summary["added"], 2);
    assert_eq!(summary["duplicates"], 1);

    // Extra columns were kept as metadata and come back out in JSON Lines.
    let exported = json_lines(&ok(d, &["export", "partner", "--format", "jsonl"]));
    assert_eq!(exported.len(), 2);
    assert_eq!(exported[0]["signal_value"], good_pdq.as_str());
    assert_eq!(exported[0]["metadata"]["source_id"], "a1");
}

#[test]
fn exported_lists_import_again_in_every_format() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    ok(d, &["create", "origin", "--classification", "csam"]);
    let hashes: Vec<String> = ["img-0001.jpg", "img-0002.jpg", "img-0003.jpg"]
        .iter()
        .map(|n| pdq_of(n).hash.to_hex())
        .collect();
    let list = d.join("list.txt");
    std::fs::write(&list, format!("# three photos\n{}\n", hashes.join("\n"))).unwrap();
    ok(
        d,
        &[
            "import",
            "origin",
            list.to_str().unwrap(),
            "--format",
            "hex",
            "--signal-type",
            "pdq",
            "--classification",
            "csam-b",
        ],
    );
    for (format, extra) in [
        ("hma-csv", vec![]),
        ("jsonl", vec![]),
        ("hex", vec!["--signal-type", "pdq"]),
    ] {
        let out = d.join(format!("out.{format}"));
        let mut args = vec![
            "export",
            "origin",
            "--format",
            format,
            "--output",
            out.to_str().unwrap(),
        ];
        args.extend(&extra);
        ok(d, &args);
        let bank = format!("copy-{format}");
        ok(d, &["create", &bank, "--classification", "other"]);
        let mut args = vec!["import", &bank, out.to_str().unwrap(), "--format", format];
        args.extend(&extra);
        let summary: Value = serde_json::from_str(&ok(d, &args)).unwrap();
        assert_eq!(summary["added"], 3, "{format}");
        let copied = json_lines(&ok(d, &["export", &bank, "--format", "jsonl"]));
        let values: Vec<&str> = copied
            .iter()
            .map(|e| e["signal_value"].as_str().unwrap())
            .collect();
        assert_eq!(
            values,
            hashes.iter().map(String::as_str).collect::<Vec<_>>(),
            "{format}"
        );
        let label = if format == "hex" { "other" } else { "csam-b" };
        assert!(
            copied.iter().all(|e| e["classification"] == label),
            "{format}: {copied:?}"
        );
    }
}

#[test]
fn files_match_known_photos_and_allow_lists_suppress_hits() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    ok(d, &["create", "known", "--classification", "csam"]);
    let known = pdq_of("img-0004.jpg");
    let rotated = pdq_of("img-0005.jpg").dihedral()[1];
    let list = d.join("known.txt");
    std::fs::write(
        &list,
        format!("{}\n{}\n", known.hash.to_hex(), rotated.to_hex()),
    )
    .unwrap();
    ok(
        d,
        &[
            "import",
            "known",
            list.to_str().unwrap(),
            "--format",
            "hex",
            "--signal-type",
            "pdq",
        ],
    );

    let four = photo("img-0004.jpg");
    let five = photo("img-0005.jpg");
    let six = photo("img-0006.jpg");
    let results = json_lines(&ok(
        d,
        &[
            "match",
            "known",
            four.to_str().unwrap(),
            six.to_str().unwrap(),
        ],
    ));
    assert_eq!(results.len(), 2);
    let hit = &results[0]["hits"][0];
    assert_eq!(hit["bank"], "known");
    assert_eq!(hit["distance"], 0);
    assert_eq!(hit["classification"], "csam");
    assert_eq!(hit["value"], known.hash.to_hex().as_str());
    assert!(hit["entry"].as_u64().is_some());
    assert_eq!(
        results[1]["hits"].as_array().unwrap().len(),
        0,
        "an unknown photo matched"
    );

    // Only a rotation of photo 5 is known: found only when its 8 variants are searched.
    let plain = json_lines(&ok(d, &["match", "known", five.to_str().unwrap()]));
    assert!(plain[0]["hits"].as_array().unwrap().is_empty());
    let dihedral = json_lines(&ok(
        d,
        &["match", "known", five.to_str().unwrap(), "--dihedral"],
    ));
    assert_eq!(dihedral[0]["hits"][0]["value"], rotated.to_hex().as_str());

    // A stock-photo allow-list suppresses the hit and says so.
    ok(
        d,
        &[
            "create",
            "stock",
            "--classification",
            "benign",
            "--allow-list",
        ],
    );
    let sha256 = &results[0]["query"]["sha256"];
    let allow = d.join("allow.txt");
    std::fs::write(&allow, format!("{}\n", sha256.as_str().unwrap())).unwrap();
    ok(
        d,
        &[
            "import",
            "stock",
            allow.to_str().unwrap(),
            "--format",
            "hex",
            "--signal-type",
            "sha256",
        ],
    );
    let allowed = json_lines(&ok(d, &["match", "all", four.to_str().unwrap()]));
    assert!(allowed[0]["hits"].as_array().unwrap().is_empty());
    assert_eq!(allowed[0]["allowed_by"][0]["bank"], "stock");
    assert_eq!(allowed[0]["suppressed"][0]["bank"], "known");
}

#[test]
fn hashes_and_query_batches_match_within_the_threshold_and_disabled_entries_do_not() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    ok(d, &["create", "known", "--classification", "csam"]);
    let base = pdq_of("img-0007.jpg").hash;
    let mut near = base;
    for bit in 0..20 {
        if !near.bit(bit) {
            near.set_bit(bit);
        }
    }
    let distance = base.hamming_distance(&near);
    let list = d.join("one.jsonl");
    std::fs::write(
        &list,
        format!(
            "{{\"signal_type\":\"pdq\",\"signal_value\":\"{}\"}}\n",
            base.to_hex()
        ),
    )
    .unwrap();
    ok(
        d,
        &[
            "import",
            "known",
            list.to_str().unwrap(),
            "--format",
            "jsonl",
        ],
    );

    let queries = d.join("queries.txt");
    let far = "0".repeat(64);
    std::fs::write(
        &queries,
        format!("{}\n\n{far}\n{}\n", near.to_hex(), base.to_hex()),
    )
    .unwrap();
    let results = json_lines(&ok(
        d,
        &["match", "known", "--queries", queries.to_str().unwrap()],
    ));
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["hits"][0]["distance"], distance);
    assert_eq!(results[0]["query"]["line"], 1);
    assert!(results[1]["hits"].as_array().unwrap().is_empty());
    assert_eq!(results[2]["hits"][0]["distance"], 0);

    let entry = results[2]["hits"][0]["entry"].as_u64().unwrap().to_string();
    ok(d, &["disable", "known", "--entry", &entry]);
    let after = json_lines(&ok(d, &["match", "known", "--pdq", &base.to_hex()]));
    assert!(
        after[0]["hits"].as_array().unwrap().is_empty(),
        "disabled entry matched"
    );
    let exported = ok(
        d,
        &["export", "known", "--format", "jsonl", "--include-disabled"],
    );
    assert_eq!(
        json_lines(&exported).len(),
        1,
        "disabled entries stay on record"
    );
    assert_eq!(
        aranea(d, &["match", "known", "--md5", "xyz"]).status.code(),
        Some(2)
    );
}

#[test]
fn a_million_line_list_imports_with_duplicates_reported() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    ok(d, &["create", "big", "--classification", "csam"]);
    let path = d.join("big.txt");
    let mut text = String::with_capacity(34 * 1_000_100);
    text.push_str("# one million MD5 values, the last 100 repeated\r\n");
    for i in 0..1_000_000u64 {
        text.push_str(&format!(
            "{:016x}{:016x}\r\n",
            i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            i
        ));
    }
    for i in 0..100u64 {
        text.push_str(&format!(
            "{:016x}{:016x}\r\n",
            i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            i
        ));
    }
    std::fs::write(&path, text).unwrap();
    let summary: Value = serde_json::from_str(&ok(
        d,
        &[
            "import",
            "big",
            path.to_str().unwrap(),
            "--format",
            "hex",
            "--signal-type",
            "md5",
        ],
    ))
    .unwrap();
    assert_eq!(summary["rows"], 1_000_100);
    assert_eq!(summary["added"], 1_000_000);
    assert_eq!(summary["duplicates"], 100);
    let probe = format!(
        "{:016x}{:016x}",
        777_777u64.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        777_777u64
    );
    let results = json_lines(&ok(d, &["match", "big", "--md5", &probe]));
    assert_eq!(results[0]["hits"].as_array().unwrap().len(), 1);
}

/// Bytes in the bank directory's journal segments.
fn journal_bytes(data: &Path) -> u64 {
    std::fs::read_dir(data.join("banks"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Enabled entries of `bank`, counted from an MD5 hex export.
fn md5_count(data: &Path, bank: &str) -> usize {
    ok(
        data,
        &["export", bank, "--format", "hex", "--signal-type", "md5"],
    )
    .lines()
    .filter(|l| !l.is_empty() && !l.starts_with('#'))
    .count()
}

#[test]
fn an_import_killed_midway_leaves_all_or_nothing_and_the_next_one_completes() {
    use std::os::unix::process::ExitStatusExt;
    const LINES: usize = 400_000;
    let scratch = tempfile::tempdir().unwrap();
    let list = scratch.path().join("list.txt");
    let mut text = String::with_capacity(34 * LINES);
    for i in 0..LINES as u64 {
        text.push_str(&format!(
            "{:016x}{:016x}\n",
            i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            i
        ));
    }
    std::fs::write(&list, text).unwrap();
    let list = list.to_str().unwrap();
    let import = [
        "import",
        "big",
        list,
        "--format",
        "hex",
        "--signal-type",
        "md5",
    ];
    // Seeded from the clock so that runs probe different moments; printed to replay one.
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    println!("delay seed {seed}");
    let mut killed = 0;
    for round in 0..5 {
        let data = tempfile::tempdir().unwrap();
        let d = data.path();
        ok(d, &["create", "big", "--classification", "csam"]);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = seed % 300;
        let before = journal_bytes(d);
        let mut child = Command::new(env!("CARGO_BIN_EXE_aranea"))
            .arg("--data")
            .arg(d)
            .arg("bank")
            .args(import)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the second pass is writing entries (the journal grows), then kill
        // after a random further delay: mid-entries, at the commit or in the snapshot.
        while journal_bytes(d) < before + 200_000 && child.try_wait().unwrap().is_none() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::thread::sleep(std::time::Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        let was_killed = status.signal() == Some(9);
        let count = md5_count(d, "big");
        println!("round {round}: killed after {delay} ms ({status}), {count} entries visible");
        assert!(
            count == 0 || count == LINES,
            "round {round}, killed after {delay} ms: {count} of {LINES} entries visible"
        );
        if was_killed && count == 0 {
            killed += 1;
        }
        let summary: Value = serde_json::from_str(&ok(d, &import)).unwrap();
        assert_eq!(
            summary["added"].as_u64().unwrap() as usize + count,
            LINES,
            "round {round}"
        );
        assert_eq!(md5_count(d, "big"), LINES, "round {round}");
    }
    assert!(killed > 0, "no import was killed while writing entries");
}

/// Starts `bank import shared` of a hex list of `lines` MD5 values unique to `tag`.
fn spawn_md5_import(data: &Path, tag: u64, lines: u64) -> std::process::Child {
    let path = data.join(format!("list-{tag}.txt"));
    let text: String = (0..lines)
        .map(|i| format!("{tag:016x}{i:016x}\n"))
        .collect();
    std::fs::write(&path, text).unwrap();
    let list = path.to_str().unwrap();
    spawn_bank(
        data,
        &[
            "import",
            "shared",
            list,
            "--format",
            "hex",
            "--signal-type",
            "md5",
        ],
    )
}

fn spawn_bank(data: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_aranea"))
        .arg("--data")
        .arg(data)
        .arg("bank")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Opening the directory afresh must show every write and no torn or lost record.
fn assert_banks_whole(data: &Path, bank: &str, expected: usize) {
    let output = aranea(data, &["stats"]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("warning"),
        "the journal was damaged: {stderr}"
    );
    assert_eq!(md5_count(data, bank), expected);
}

#[test]
fn processes_writing_the_same_banks_at_once_lose_nothing() {
    const LINES: u64 = 20_000;
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    ok(d, &["create", "shared", "--classification", "csam"]);
    let mut writers: Vec<_> = (1..=4).map(|tag| spawn_md5_import(d, tag, LINES)).collect();
    writers.extend((0..4).map(|k| {
        spawn_bank(
            d,
            &["create", &format!("other-{k}"), "--classification", "csam"],
        )
    }));
    // Readers take no lock (the crawler and servers poll the directory): each open while the
    // writers run must succeed and never see fewer entries than the one before.
    let mut seen = 0;
    while writers
        .iter_mut()
        .any(|writer| writer.try_wait().unwrap().is_none())
    {
        let store = aranea_index::BankStore::open(&d.join("banks")).unwrap();
        let entries = store.state().entry_count();
        assert!(
            entries >= seen,
            "a reader saw {entries} entries after {seen}"
        );
        seen = entries;
    }
    for writer in writers {
        let output = writer.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "a concurrent writer failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_banks_whole(d, "shared", 4 * LINES as usize);
    let banks = json_lines(&ok(d, &["list", "--format", "jsonl"]));
    assert_eq!(banks.len(), 5, "{banks:?}");
}

#[test]
fn a_server_banking_while_the_command_line_imports_loses_nothing() {
    use aranea_index::{NewEntry, Signal, SignalType};
    const LINES: u64 = 20_000;
    const SERVER_BATCHES: u64 = 20;
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    ok(d, &["create", "shared", "--classification", "csam"]);
    let banks = aranea_server::LiveBanks::open(&d.join("banks")).unwrap();
    let mut importers: Vec<_> = (1..=2).map(|tag| spawn_md5_import(d, tag, LINES)).collect();
    // The server's own writes, as review decisions make them, for as long as the imports run.
    let mut batch = 0u64;
    while batch < SERVER_BATCHES
        || importers
            .iter_mut()
            .any(|importer| importer.try_wait().unwrap().is_none())
    {
        batch += 1;
        banks
            .write(|store| {
                let bank = store.bank_id("shared")?;
                let provenance = store.add_provenance(aranea_index::Provenance {
                    added_by: "server".into(),
                    added_at: 0,
                    origin: aranea_index::Origin::Manual,
                })?;
                let entries: Vec<NewEntry> = (0..25)
                    .map(|i| NewEntry {
                        bank,
                        signal: Signal::from_hex(
                            SignalType::Md5,
                            &format!("{:016x}{:016x}", 0xff00 + batch, i),
                        )
                        .unwrap(),
                        classification: None,
                        provenance,
                        line: 0,
                        metadata: None,
                    })
                    .collect();
                store.add_entries(&entries)
            })
            .unwrap();
    }
    for importer in importers {
        let output = importer.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "an import failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_banks_whole(d, "shared", (2 * LINES + batch * 25) as usize);
}

#[test]
fn match_results_print_as_one_json_array_as_json_lines_or_as_text() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    ok(d, &["create", "known", "--classification", "csam"]);
    let known = pdq_of("img-0004.jpg").hash;
    let list = d.join("known.txt");
    std::fs::write(&list, format!("{}\n", known.to_hex())).unwrap();
    let imported = ok(
        d,
        &[
            "import",
            "known",
            list.to_str().unwrap(),
            "--format",
            "hex",
            "--signal-type",
            "pdq",
        ],
    );
    assert!(!imported.is_empty());
    let four = photo("img-0004.jpg");
    let six = photo("img-0006.jpg");
    let hex = known.to_hex();
    let query = |format: Option<&str>| {
        let mut args = vec![
            "match",
            "known",
            four.to_str().unwrap(),
            six.to_str().unwrap(),
            "--pdq",
            &hex,
        ];
        if let Some(format) = format {
            args.extend(["--format", format]);
        }
        ok(d, &args)
    };

    let array: Vec<Value> = serde_json::from_str(&query(Some("json"))).unwrap();
    assert_eq!(json_lines(&query(Some("jsonl"))), array);
    assert_eq!(json_lines(&query(None)), array, "jsonl stays the default");
    // Typed hashes are asked first, then the files in the order given.
    assert_eq!(array.len(), 3, "{array:?}");
    assert_eq!(array[0]["query"]["value"], known.to_hex().as_str());
    assert_eq!(array[1]["query"]["file"], four.to_str().unwrap());
    assert_eq!(array[2]["query"]["file"], six.to_str().unwrap());
    for result in &array[..2] {
        let hits = result["hits"].as_array().unwrap();
        assert_eq!(hits.len(), 1, "{result}");
        assert_eq!(hits[0]["bank"], "known");
        assert_eq!(hits[0]["distance"], 0);
        assert_eq!(hits[0]["classification"], "csam");
    }
    assert!(array[2]["hits"].as_array().unwrap().is_empty());

    let entry = &array[0]["hits"][0]["entry"];
    let text = query(Some("text"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "pdq:{}\t1 hit(s)\tknown#{entry} pdq distance 0",
                known.to_hex()
            ),
            format!("{}\t1 hit(s)\tknown#{entry} pdq distance 0", four.display()),
            format!("{}\t0 hit(s)", six.display()),
        ]
    );

    let refused = aranea(
        d,
        &[
            "match",
            "known",
            "--pdq",
            &known.to_hex(),
            "--format",
            "xml",
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("invalid value 'xml' for '--format <FORMAT>'")
            && stderr.contains("[possible values: text, json, jsonl]"),
        "{stderr}"
    );
    // A bad query is an error on stderr whatever the format, with nothing half-printed.
    let bad = aranea(d, &["match", "known", "--md5", "xyz", "--format", "json"]);
    assert_ne!(bad.status.code(), Some(0));
    assert!(bad.stdout.is_empty());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--md5 xyz"));
}

/// Runs `aranea bank ARGS` with `input` on its standard input.
fn ok_with_stdin(data: &Path, args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = bank_command(data, args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run aranea");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    succeeded(args, child.wait_with_output().unwrap())
}

#[test]
fn a_list_piped_on_standard_input_is_imported_whole() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let md5s = [
        "00000000000000000000000000000001",
        "00000000000000000000000000000002",
        "00000000000000000000000000000003",
    ];
    let list = md5s.join("\n") + "\n";
    let hex = ["--format", "hex", "--signal-type", "md5"];
    for (name, at) in [("dash", "-"), ("dev-stdin", "/dev/stdin")] {
        let bank = format!("piped-{name}");
        ok(d, &["create", &bank, "--classification", "csam"]);
        let args: Vec<&str> = ["import", bank.as_str(), at]
            .into_iter()
            .chain(hex)
            .collect();
        let summary: Value = serde_json::from_str(&ok_with_stdin(d, &args, &list)).unwrap();
        assert_eq!(summary["rows"], 3, "{at}: {summary}");
        assert_eq!(summary["added"], 3, "{at}: {summary}");
        assert_eq!(summary["duplicates"], 0, "{at}: {summary}");
        let shown: Value =
            serde_json::from_str(&ok(d, &["show", &bank, "--format", "json"])).unwrap();
        assert_eq!(shown["entries"]["enabled"], 3, "{at}: {shown}");
        for md5 in md5s {
            let result: Value =
                serde_json::from_str(&ok(d, &["match", &bank, "--md5", md5])).unwrap();
            assert_eq!(
                result["hits"].as_array().unwrap().len(),
                1,
                "{at}: {result}"
            );
        }
    }
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".import-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary copies left: {leftovers:?}");
}

#[test]
fn list_show_and_stats_print_text_for_people_and_json_for_programs() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    ok(d, &["create", "only", "--classification", "csam"]);
    let md5s = "00000000000000000000000000000001\n00000000000000000000000000000002\n";
    let file = d.join("md5s.txt");
    std::fs::write(&file, md5s).unwrap();
    let file = file.to_str().unwrap();
    ok(
        d,
        &[
            "import",
            "only",
            file,
            "--format",
            "hex",
            "--signal-type",
            "md5",
        ],
    );

    // A list is an array even of one bank, pretty-printed like every other list command's.
    let listed = ok(d, &["list", "--format", "json"]);
    assert!(listed.lines().count() > 1, "not pretty-printed: {listed}");
    let banks: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(banks.as_array().map(Vec::len), Some(1), "{banks}");
    assert_eq!(banks[0]["name"], "only");
    let lines = json_lines(&ok(d, &["list", "--format", "jsonl"]));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["name"], "only");
    let text = ok(d, &["list"]);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("only ") && text.contains("2 entries"),
        "{text}"
    );

    // A single result: one object on one line in both JSON formats, key: value lines in text.
    for args in [
        &["show", "only"][..],
        &["stats", "only"][..],
        &["stats"][..],
    ] {
        for format in ["json", "jsonl"] {
            let printed = ok(d, &[args, &["--format", format][..]].concat());
            assert_eq!(printed.lines().count(), 1, "{args:?} {format}: {printed}");
            let value: Value = serde_json::from_str(&printed).unwrap();
            assert!(value.is_object(), "{args:?} {format}: {printed}");
        }
        let text = ok(d, args);
        assert!(
            serde_json::from_str::<Value>(&text).is_err(),
            "{args:?} printed JSON as text: {text}"
        );
        assert!(!text.contains('{'), "{args:?}: {text}");
    }
    let shown = ok(d, &["show", "only"]);
    for line in [
        "name: only",
        "classification: csam",
        "enabled: true",
        "entries.enabled: 2",
        "entries.disabled: 0",
        "entries.by_signal_type.md5: 2",
    ] {
        assert!(
            shown.lines().any(|l| l == line),
            "{line:?} missing: {shown}"
        );
    }
    assert!(
        shown.lines().all(|l| l.contains(": ")),
        "not key: value: {shown}"
    );
    let stats = ok(d, &["stats"]);
    for key in [
        "index.base_entries: ",
        "index.delta_entries: ",
        "journal_seq: ",
    ] {
        assert!(
            stats.lines().any(|l| l.starts_with(key)),
            "{key:?} missing: {stats}"
        );
    }
    let after_banks: Vec<&str> = stats.lines().skip_while(|l| *l != "banks:").collect();
    assert_eq!(after_banks.len(), 2, "{stats}");
    assert!(after_banks[1].starts_with("only ") && after_banks[1].contains("2 entries"));
}
