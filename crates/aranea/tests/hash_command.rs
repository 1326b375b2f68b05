//! `aranea hash` end to end: the built binary over a temporary folder of corpus photos and a
//! broken file, in every output format.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn corpus() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ))
    .to_path_buf()
}

/// The MANIFEST row for `file`: (sha256, width, height, pdq_hex, pdq_quality).
fn manifest_row(file: &str) -> (String, String, String, String, String) {
    let manifest = std::fs::read_to_string(corpus().join("MANIFEST.tsv")).unwrap();
    let header: Vec<&str> = manifest.lines().next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let row: Vec<&str> = manifest
        .lines()
        .find(|l| l.starts_with(file))
        .unwrap()
        .split('\t')
        .collect();
    let get = |name: &str| row[col(name)].to_string();
    (
        get("sha256"),
        get("width"),
        get("height"),
        get("pdq_hex"),
        get("pdq_quality"),
    )
}

/// A folder with two PNGs (bit-exact with the reference) in a subfolder, one JPEG, and a file
/// that is not an image.
fn folder(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("hash-command")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    for file in ["img-0008.png", "img-0010.png"] {
        std::fs::copy(corpus().join(file), dir.join("sub").join(file)).unwrap();
    }
    std::fs::copy(corpus().join("img-0001.jpg"), dir.join("img-0001.jpg")).unwrap();
    std::fs::write(
        dir.join("broken.jpg"),
        b"\xFF\xD8\xFF\xE0 this is not really a JPEG",
    )
    .unwrap();
    dir
}

fn aranea(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aranea"))
        .args(args)
        .output()
        .unwrap()
}

fn lines(output: &Output) -> Vec<String> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn jsonl_reports_every_file_in_path_order_and_fails_for_the_broken_one() {
    let dir = folder("jsonl");
    let output = aranea(&["hash", dir.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a failed file makes the exit status 1"
    );
    let records: Vec<serde_json::Value> = lines(&output)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let paths: Vec<&str> = records
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert_eq!(paths.len(), 4);
    let broken = records
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with("broken.jpg"))
        .unwrap();
    assert!(
        broken["error"].as_str().unwrap().contains("jpeg"),
        "{broken}"
    );
    assert!(broken["pdq"].is_null());
    for file in ["img-0008.png", "img-0010.png", "img-0001.jpg"] {
        let record = records
            .iter()
            .find(|r| r["path"].as_str().unwrap().ends_with(file))
            .unwrap();
        let (sha256, width, height, pdq, quality) = manifest_row(file);
        assert_eq!(record["sha256"], sha256.as_str());
        assert_eq!(record["width"].to_string(), width);
        assert_eq!(record["height"].to_string(), height);
        assert_eq!(record["pdq_quality"].to_string(), quality);
        assert!(record["error"].is_null());
        assert_eq!(record["md5"].as_str().unwrap().len(), 32);
        assert_eq!(record["sha1"].as_str().unwrap().len(), 40);
        if file.ends_with(".png") {
            assert_eq!(record["pdq"], pdq.as_str(), "{file}");
        }
    }
}

#[test]
fn json_csv_and_tsv_carry_the_same_records() {
    let dir = folder("formats");
    let good = dir.join("sub");
    let json = aranea(&["hash", "--format", "json", good.to_str().unwrap()]);
    assert!(json.status.success());
    let array: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(array.len(), 2);
    for (format, separator) in [("csv", ','), ("tsv", '\t')] {
        let output = aranea(&["hash", "--format", format, good.to_str().unwrap()]);
        assert!(output.status.success(), "{format}");
        let rows = lines(&output);
        let header: Vec<&str> = rows[0].split(separator).collect();
        assert_eq!(
            header,
            [
                "path",
                "kind",
                "width",
                "height",
                "md5",
                "sha1",
                "sha256",
                "pdq",
                "pdq_quality",
                "error"
            ]
        );
        assert_eq!(rows.len(), 3);
        for (row, record) in rows[1..].iter().zip(&array) {
            let fields: Vec<&str> = row.split(separator).collect();
            assert_eq!(fields[0], record["path"].as_str().unwrap());
            assert_eq!(fields[7], record["pdq"].as_str().unwrap());
            assert_eq!(fields[8], record["pdq_quality"].to_string());
            assert_eq!(fields[9], "");
        }
    }
}

#[test]
fn dihedral_adds_eight_hashes_with_the_plain_one_first() {
    let dir = folder("dihedral");
    let file = dir.join("sub").join("img-0008.png");
    let output = aranea(&["hash", "--dihedral", file.to_str().unwrap()]);
    assert!(output.status.success());
    let record: serde_json::Value = serde_json::from_str(&lines(&output)[0]).unwrap();
    let variants = record["dihedral"].as_array().unwrap();
    assert_eq!(variants.len(), 8);
    assert_eq!(variants[0], record["pdq"]);
    assert_ne!(variants[1], record["pdq"]);
    let csv = aranea(&[
        "hash",
        "--dihedral",
        "--format",
        "csv",
        file.to_str().unwrap(),
    ]);
    let rows = lines(&csv);
    assert!(rows[0].contains(",dihedral,error"));
    assert_eq!(rows[1].split(',').nth(9).unwrap().split(' ').count(), 8);
}

#[test]
fn a_missing_path_is_an_error_record_while_others_are_still_hashed() {
    let dir = folder("missing");
    let good = dir.join("sub").join("img-0010.png");
    let missing = dir.join("no-such-file.png");
    let output = aranea(&[
        "hash",
        "--jobs",
        "1",
        missing.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let records: Vec<serde_json::Value> = lines(&output)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    assert!(records.iter().any(
        |r| r["path"].as_str().unwrap().ends_with("no-such-file.png") && r["error"].is_string()
    ));
    assert!(
        records
            .iter()
            .any(|r| r["path"].as_str().unwrap().ends_with("img-0010.png") && r["pdq"].is_string())
    );
}

#[test]
fn distance_prints_the_hamming_distance() {
    let a = "3cf42ea31bd25d2455eb7d61b8230ab0951594511c599a79d961b175be5a3b72";
    let b = "3cf42ea31bd25d2455eb7d61b8230ab0951594511c599a79d961b175be5a3b8d";
    let output = aranea(&["hash", "--distance", a, b]);
    assert!(output.status.success());
    // 0x72 ^ 0x8d = 0xff: eight differing bits.
    assert_eq!(lines(&output), ["8"]);
    let same = aranea(&["hash", "--distance", a, a]);
    assert_eq!(lines(&same), ["0"]);
    let bad = aranea(&["hash", "--distance", a, "not-a-hash"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("second hash"));
}

#[test]
fn skip_unknown_leaves_out_files_that_are_not_media() {
    let dir = folder("skip-unknown");
    std::fs::write(dir.join("README.md"), "# not an image\n").unwrap();
    std::fs::write(dir.join("empty.bin"), b"").unwrap();
    let strict = aranea(&["hash", dir.to_str().unwrap()]);
    assert_eq!(strict.status.code(), Some(1));
    assert_eq!(lines(&strict).len(), 6);
    let lenient = aranea(&["hash", "--skip-unknown", dir.to_str().unwrap()]);
    let records: Vec<serde_json::Value> = lines(&lenient)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // README and the empty file are gone; broken.jpg has JPEG magic, so it is still an error.
    assert_eq!(records.len(), 4);
    assert!(
        !records
            .iter()
            .any(|r| r["path"].as_str().unwrap().ends_with("README.md"))
    );
    assert_eq!(lenient.status.code(), Some(1));
    std::fs::remove_file(dir.join("broken.jpg")).unwrap();
    let clean = aranea(&["hash", "--skip-unknown", dir.to_str().unwrap()]);
    assert!(clean.status.success());
    assert_eq!(lines(&clean).len(), 3);
}
