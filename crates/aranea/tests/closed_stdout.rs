//! `aranea … | head -1`: when the reader of stdout goes away after one line, the command dies
//! of SIGPIPE like any Unix tool (status 141 in the shell), with nothing on stderr: no panic,
//! no backtrace, no error. Checked for an output written with `println!` (`bank list`) and one
//! written through a buffered writer whose error is returned (`hash`). Also: `notices list
//! --provider ''` is refused instead of listing every notice.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
const SIGPIPE: i32 = 13;

fn aranea(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aranea"));
    command.arg("--data").arg(data);
    command
}

/// Runs `command` with stdout a pipe, reads its first line, closes the pipe and waits; the
/// command must write far more than a pipe holds (64 KiB), so it writes after the close.
/// Returns the first line, how it ended and its stderr.
fn read_one_line_then_close(command: &mut Command) -> (String, std::process::ExitStatus, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The BufReader, and with it the read end, is dropped here.
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (first, child.wait().unwrap(), stderr)
}

fn assert_died_quietly_of_sigpipe(what: &str, status: std::process::ExitStatus, stderr: &str) {
    assert_eq!(
        status.signal(),
        Some(SIGPIPE),
        "{what}: ended with {status}, stderr: {stderr}"
    );
    assert_eq!(stderr, "", "{what} wrote on stderr");
}

#[test]
fn bank_list_dies_of_sigpipe_without_a_word_when_its_reader_goes_away() {
    let data = tempfile::tempdir().unwrap();
    // Five banks with 60 KB descriptions: 300 KB of JSON Lines, more than a pipe holds.
    let description = "a partner's list, described at length. ".repeat(1500);
    for name in ["one", "two", "three", "four", "five"] {
        let created = aranea(data.path())
            .args(["bank", "create", name, "--source", "local"])
            .args(["--classification", "csam", "--description", &description])
            .output()
            .unwrap();
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
    }
    let (first, status, stderr) =
        read_one_line_then_close(aranea(data.path()).args(["bank", "list", "--format", "jsonl"]));
    let bank: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert!(bank["name"].is_string(), "{first}");
    assert_died_quietly_of_sigpipe("bank list", status, &stderr);
}

#[test]
fn hash_dies_of_sigpipe_without_a_word_when_its_reader_goes_away() {
    let data = tempfile::tempdir().unwrap();
    // The corpus's 400 photos: about 140 KB of JSON Lines.
    let (first, status, stderr) = read_one_line_then_close(
        aranea(data.path())
            .args(["hash", "--format", "jsonl"])
            .arg(CORPUS),
    );
    let record: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert!(record["path"].is_string(), "{first}");
    assert_died_quietly_of_sigpipe("hash", status, &stderr);
}

#[test]
fn notices_list_refuses_an_empty_provider() {
    let data = tempfile::tempdir().unwrap();
    let refused = aranea(data.path())
        .args(["notices", "list", "--provider", ""])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("--provider"), "{stderr}");
    assert!(refused.stdout.is_empty());
}
