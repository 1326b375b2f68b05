//! `aranea bank import` against hostile lists, the built binary on a temporary data
//! directory: a list with any bad line imports nothing (exit status 1, the bad lines named on
//! stderr, the summary on stdout, no journal record written), an unreadable list is an error,
//! and `--skip-invalid` imports exactly the valid lines.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";
const OTHER_MD5: &str = "0123456789abcdef0123456789abcdef";

fn aranea(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aranea"))
        .arg("--data")
        .arg(data)
        .arg("bank")
        .args(args)
        .output()
        .expect("run aranea")
}

/// The bank's enabled entries and the directory's journal position.
fn entries_and_journal(data: &Path) -> (Value, Value) {
    let output = aranea(data, &["stats", "--format", "json"]);
    assert!(output.status.success());
    let stats: Value = serde_json::from_slice(&output.stdout).unwrap();
    (
        stats["banks"][0]["entries"]["enabled"].clone(),
        stats["journal_seq"].clone(),
    )
}

#[test]
fn a_hostile_list_imports_nothing_and_names_its_bad_lines() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    assert!(
        aranea(d, &["create", "partner", "--classification", "csam"])
            .status
            .success()
    );
    let good_csv = format!("signal_type,signal_value\nmd5,{MD5}\n");
    let mut huge = format!("{MD5}\n").into_bytes();
    huge.extend(std::iter::repeat_n(
        b'f',
        aranea_index::import::MAX_LINE + 10,
    ));
    huge.extend(format!("\n{OTHER_MD5}\n").as_bytes());
    let mut garbage = format!("{MD5}\n").into_bytes();
    garbage.extend(
        (0..=255u8)
            .cycle()
            .take(4096)
            .map(|b| if b == b'\n' { 0xff } else { b }),
    );
    let hostile: Vec<(&str, &[&str], Vec<u8>, &str)> = vec![
        (
            "truncated",
            &["--format", "hma-csv"],
            format!("{good_csv}md5,{}", &OTHER_MD5[..20]).into_bytes(),
            "line 3:",
        ),
        (
            "huge line",
            &["--format", "hex", "--signal-type", "md5"],
            huge,
            "line 2: line longer than",
        ),
        (
            "binary garbage",
            &["--format", "hex", "--signal-type", "md5"],
            garbage,
            "line 2: not UTF-8",
        ),
        (
            "wrong signal type",
            &["--format", "hex", "--signal-type", "sha256"],
            format!("{MD5}\n").into_bytes(),
            "line 1:",
        ),
        (
            "wrong field count",
            &["--format", "hma-csv"],
            format!("{good_csv}md5,{OTHER_MD5},extra\n").into_bytes(),
            "line 3: 3 fields, the header has 2",
        ),
    ];
    let list = d.join("list");
    let before = entries_and_journal(d);
    for (what, format, body, error) in hostile {
        std::fs::write(&list, &body).unwrap();
        let mut args = vec!["import", "partner", list.to_str().unwrap()];
        args.extend(format);
        let output = aranea(d, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
        assert!(stderr.contains(error), "{what}: {error:?} not in {stderr}");
        assert!(stderr.contains("nothing imported"), "{what}: {stderr}");
        let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(summary["invalid"], 1, "{what}: {summary}");
        assert_eq!(summary["added"], 0, "{what}: {summary}");
        assert_eq!(
            entries_and_journal(d),
            before,
            "{what}: a refused list wrote to the bank"
        );
    }

    // A header without a value column: the list cannot be read at all.
    std::fs::write(&list, format!("id,type,digest\n1,md5,{MD5}\n")).unwrap();
    let output = aranea(
        d,
        &[
            "import",
            "partner",
            list.to_str().unwrap(),
            "--format",
            "hma-csv",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("signal_value"), "{stderr}");
    assert_eq!(entries_and_journal(d), before);

    // The huge-line list with --skip-invalid: its two valid lines only.
    let mut huge = format!("{MD5}\n").into_bytes();
    huge.extend(std::iter::repeat_n(
        b'f',
        aranea_index::import::MAX_LINE + 10,
    ));
    huge.extend(format!("\n{OTHER_MD5}\n{MD5}\n").as_bytes());
    std::fs::write(&list, &huge).unwrap();
    let output = aranea(
        d,
        &[
            "import",
            "partner",
            list.to_str().unwrap(),
            "--format",
            "hex",
            "--signal-type",
            "md5",
            "--skip-invalid",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (
            &summary["rows"],
            &summary["invalid"],
            &summary["added"],
            &summary["duplicates"]
        ),
        (
            &Value::from(3),
            &Value::from(1),
            &Value::from(2),
            &Value::from(1)
        ),
        "{summary}"
    );
    assert!(stderr.contains("line 2: line longer than"), "{stderr}");
    assert!(stderr.contains("line 4: duplicate of entry"), "{stderr}");
    assert_eq!(entries_and_journal(d).0, 2);
}
