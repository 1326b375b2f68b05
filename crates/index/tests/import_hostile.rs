//! Hash-list readers against hostile files: every bad line is reported with its number, the
//! good ones still come through, and nothing panics or holds an unbounded line.

use aranea_index::SignalType;
use aranea_index::import::{
    ImportError, ImportRow, LineError, ListFormat, MAX_LINE, ReadOptions, read_list,
};

const MD5: &str = "0123456789abcdef0123456789abcdef";
const PDQ: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

fn read(
    bytes: &[u8],
    format: ListFormat,
    signal_type: Option<SignalType>,
) -> Result<(Vec<ImportRow>, Vec<LineError>), ImportError> {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    read_list(
        bytes,
        format,
        &ReadOptions { signal_type },
        &mut |row| match row {
            Ok(row) => rows.push(row),
            Err(error) => errors.push(error),
        },
    )?;
    Ok((rows, errors))
}

fn error_lines(errors: &[LineError]) -> Vec<u64> {
    errors.iter().map(|e| e.line).collect()
}

#[test]
fn hex_lists_report_bad_lines_by_number() {
    let text = format!(
        "\u{feff}{MD5}\r\n\r\n# comment\r\n{bad}\r\n{PDQ}\r\n{MD5}g\n   {MD5}   \n{MD5}",
        bad = "x".repeat(32)
    );
    let (rows, errors) = read(text.as_bytes(), ListFormat::Hex, Some(SignalType::Md5)).unwrap();
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 7, 8]);
    assert_eq!(error_lines(&errors), [4, 5, 6]);
    assert!(
        errors[1].message.contains("32 hex digits, got 64"),
        "{}",
        errors[1].message
    );
    assert!(matches!(
        read(b"abc", ListFormat::Hex, None),
        Err(ImportError::NoSignalType)
    ));
}

#[test]
fn a_pdq_of_the_wrong_size_is_an_error_not_a_truncation() {
    let text = format!("{}\n{}00\n{PDQ}\n", &PDQ[..63], PDQ);
    let (rows, errors) = read(text.as_bytes(), ListFormat::Hex, Some(SignalType::Pdq)).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].signal.to_hex(), PDQ);
    assert_eq!(error_lines(&errors), [1, 2]);
}

#[test]
fn huge_lines_and_binary_garbage_are_reported_and_skipped() {
    let mut bytes = vec![b'a'; MAX_LINE * 3];
    bytes.push(b'\n');
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(format!("{MD5}\n{MD5}\n").as_bytes());
    let (rows, errors) = read(&bytes, ListFormat::Hex, Some(SignalType::Md5)).unwrap();
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [3]);
    assert_eq!(error_lines(&errors), [1, 2]);
    assert!(errors[0].message.contains("longer than"));
    assert!(errors[1].message.contains("UTF-8"));
}

#[test]
fn csv_columns_may_come_in_any_order_and_extra_ones_become_metadata() {
    let text = format!(
        "\u{feff}Note,Signal_Value,Signal_Type,classification\r\n\
         \"a, quoted \"\"note\"\"\",{PDQ},pdq,csam\r\n\
         plain,{MD5},md5,\r\n\
         short,{MD5}\r\n\
         bad,{MD5},tmk,x\r\n\
         \"open,{MD5},md5,x\r\n"
    );
    let (rows, errors) = read(text.as_bytes(), ListFormat::HmaCsv, None).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].classification.as_deref(), Some("csam"));
    assert_eq!(
        rows[0].metadata.as_deref(),
        Some(r#"{"note":"a, quoted \"note\""}"#)
    );
    assert_eq!(rows[1].classification, None);
    assert_eq!(rows[1].signal.signal_type(), SignalType::Md5);
    assert_eq!(error_lines(&errors), [4, 5, 6]);
    assert!(errors[1].message.contains("unknown signal type"));
}

#[test]
fn csv_without_a_value_column_or_header_is_refused_as_a_whole() {
    assert!(matches!(
        read(b"type,other\npdq,x\n", ListFormat::HmaCsv, None),
        Err(ImportError::MissingColumn(_))
    ));
    assert!(matches!(
        read(b"# only a comment\n\n", ListFormat::HmaCsv, None),
        Err(ImportError::NoHeader)
    ));
    // Without a type column the caller's type applies.
    let (rows, errors) = read(
        format!("hash\n{MD5}\n").as_bytes(),
        ListFormat::HmaCsv,
        Some(SignalType::Md5),
    )
    .unwrap();
    assert_eq!((rows.len(), errors.len()), (1, 0));
}

#[test]
fn json_lines_reject_wrong_types_and_keep_unknown_fields() {
    let text = format!(
        "{{\"signal_type\":\"md5\",\"signal_value\":\"{MD5}\",\"source\":\"ncmec\",\"n\":3}}\n\
         [1,2]\n\
         {{\"signal_type\":5,\"signal_value\":\"{MD5}\"}}\n\
         {{\"signal_type\":\"md5\"}}\n\
         {{\"signal_type\":\"md5\",\"signal_value\":\"{MD5}\",\"classification\":7}}\n\
         {{\"signal_type\":\"md5\",\"signal_value\":\"{MD5}\"\n\
         {{\"value\":\"{PDQ}\",\"classification\":\"csam\"}}\n"
    );
    let (rows, errors) = read(text.as_bytes(), ListFormat::Jsonl, Some(SignalType::Pdq)).unwrap();
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 7]);
    assert_eq!(
        rows[0].metadata.as_deref(),
        Some(r#"{"n":3,"source":"ncmec"}"#)
    );
    assert_eq!(rows[1].classification.as_deref(), Some("csam"));
    assert_eq!(error_lines(&errors), [2, 3, 4, 5, 6]);
}

/// Found by the `import_list` fuzz target: a JSON label may hold an escaped line break, which
/// the line-based CSV export then wrote inside a quoted field that no CSV reader of ours can
/// take back, so a bank exported as CSV no longer imported.
#[test]
fn a_classification_holding_a_line_break_is_refused() {
    let text = format!(
        "{{\"signal_type\":\"md5\",\"signal_value\":\"{MD5}\",\"classification\":\"a\\nb\"}}\n\
         {{\"signal_type\":\"md5\",\"signal_value\":\"{MD5}\",\"classification\":\" a b\\n\"}}\n"
    );
    let (rows, errors) = read(text.as_bytes(), ListFormat::Jsonl, None).unwrap();
    assert_eq!(error_lines(&errors), [1]);
    assert!(
        errors[0].message.contains("U+000A"),
        "{}",
        errors[0].message
    );
    // A line break at either end is only whitespace, trimmed like any other.
    let labels: Vec<_> = rows.iter().map(|r| r.classification.as_deref()).collect();
    assert_eq!(labels, [Some("a b")]);
}

/// Labels an entry's classification may not be: what `check_bank_texts` refuses of a bank's
/// classification (the escape would rewrite a terminal showing `aranea bank match`, the
/// carriage return overwrite the line), each with the code point the error names.
const HOSTILE_LABELS: [(&str, &str); 6] = [
    ("csam\u{1b}[2J", "U+001B"),
    ("csam\rfine", "U+000D"),
    ("cs\u{0}am", "U+0000"),
    ("cs\u{7f}am", "U+007F"),
    ("cs\u{85}am", "U+0085"),
    ("a\tb", "U+0009"),
];

/// The longest label accepted is 100 bytes whatever its characters: 50 two-byte ones.
fn label_at_the_limit() -> String {
    "é".repeat(50)
}

fn label_one_byte_over() -> String {
    format!("{}x", "é".repeat(50))
}

#[test]
fn an_entry_classification_a_bank_could_not_have_is_refused_in_jsonl() {
    let line = |label: &str| {
        format!(
            "{}\n",
            serde_json::json!({"signal_type": "md5", "signal_value": MD5, "classification": label})
        )
    };
    let mut text = line(&label_at_the_limit());
    for (label, _) in HOSTILE_LABELS {
        text.push_str(&line(label));
    }
    text.push_str(&line(&label_one_byte_over()));
    text.push_str(&line("fine"));
    let (rows, errors) = read(text.as_bytes(), ListFormat::Jsonl, None).unwrap();
    assert_eq!(error_lines(&errors), [2, 3, 4, 5, 6, 7, 8]);
    for (error, (_, code)) in errors.iter().zip(HOSTILE_LABELS) {
        assert!(error.message.contains(code), "{}", error.message);
    }
    assert!(
        errors[6].message.contains("101 bytes long; at most 100"),
        "{}",
        errors[6].message
    );
    let labels: Vec<_> = rows
        .iter()
        .map(|r| (r.line, r.classification.clone()))
        .collect();
    assert_eq!(
        labels,
        [(1, Some(label_at_the_limit())), (9, Some("fine".into()))]
    );
}

#[test]
fn an_entry_classification_a_bank_could_not_have_is_refused_in_csv() {
    // Raw control characters in a field, quoted or not (a quoted field keeps a carriage
    // return); no line break, as CSV lines end at one.
    let mut text = format!(
        "signal_type,signal_value,classification\nmd5,{MD5},{}\n",
        label_at_the_limit()
    );
    for (label, _) in HOSTILE_LABELS {
        text.push_str(&format!("md5,{MD5},\"{label}\"\n"));
    }
    text.push_str(&format!("md5,{MD5},{}\n", label_one_byte_over()));
    text.push_str(&format!("md5,{MD5},cs\u{1b}am\n"));
    text.push_str(&format!("md5,{MD5},fine\n"));
    let (rows, errors) = read(text.as_bytes(), ListFormat::HmaCsv, None).unwrap();
    assert_eq!(error_lines(&errors), [3, 4, 5, 6, 7, 8, 9, 10]);
    for (error, (_, code)) in errors.iter().zip(HOSTILE_LABELS) {
        assert!(error.message.contains(code), "{}", error.message);
    }
    assert!(
        errors[6].message.contains("101 bytes long"),
        "{}",
        errors[6].message
    );
    assert!(
        errors[7].message.contains("U+001B"),
        "{}",
        errors[7].message
    );
    let labels: Vec<_> = rows
        .iter()
        .map(|r| (r.line, r.classification.clone()))
        .collect();
    assert_eq!(
        labels,
        [(2, Some(label_at_the_limit())), (11, Some("fine".into()))]
    );
}

/// A hex list carries no classification, so no line of one is refused for it.
#[test]
fn a_hex_list_has_no_classification_to_refuse() {
    let text = format!("{MD5}\n{MD5}\n");
    let (rows, errors) = read(text.as_bytes(), ListFormat::Hex, Some(SignalType::Md5)).unwrap();
    assert!(errors.is_empty());
    assert!(rows.iter().all(|r| r.classification.is_none()));
}

/// Hands out `bytes`, then fails as a disk or a network stream can.
struct FailingAfter {
    bytes: std::io::Cursor<Vec<u8>>,
}

impl std::io::Read for FailingAfter {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        match self.bytes.read(buffer)? {
            0 => Err(std::io::Error::other("the disk went away")),
            n => Ok(n),
        }
    }
}

#[test]
fn a_read_error_mid_list_is_a_file_error_carrying_its_cause() {
    let lists = [
        (ListFormat::Hex, format!("{MD5}\n{MD5}\n")),
        (
            ListFormat::HmaCsv,
            format!("signal_type,signal_value\nmd5,{MD5}\n"),
        ),
        (
            ListFormat::Jsonl,
            format!("{{\"signal_type\": \"md5\", \"signal_value\": \"{MD5}\"}}\n"),
        ),
    ];
    for (format, text) in lists {
        let mut rows = 0;
        let outcome = read_list(
            FailingAfter {
                bytes: std::io::Cursor::new(text.into_bytes()),
            },
            format,
            &ReadOptions {
                signal_type: Some(SignalType::Md5),
            },
            &mut |row| {
                row.unwrap();
                rows += 1;
            },
        );
        // The rows before the failure were read; the caller learns the file as a whole failed
        // (and imports nothing: the callers import only after a whole pass succeeded).
        assert!(rows >= 1, "{format:?}");
        match outcome {
            Err(ImportError::Io(cause)) => {
                assert_eq!(cause.to_string(), "the disk went away", "{format:?}");
                let error = ImportError::Io(cause);
                assert_eq!(error.to_string(), "reading the file", "{format:?}");
                let source = std::error::Error::source(&error).map(ToString::to_string);
                assert_eq!(source.as_deref(), Some("the disk went away"), "{format:?}");
            }
            other => panic!("{format:?}: {other:?}"),
        }
    }
}
