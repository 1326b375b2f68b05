//! The logs of a real `aranea serve`: JSON lines when stderr is a pipe (each with its time,
//! level and fields; the `serving` line with the address), coloured text on a terminal (a
//! pseudo-terminal made by Python's `pty`), and one warning naming an `ARANEA_LOG` value
//! that is not a level.

#[path = "common/process.rs"]
mod process;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use process::BIN;
use serde_json::Value;

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("aranea-logs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `GET /healthz`, which must answer 200.
fn healthz(addr: SocketAddr) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: logs\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
}

/// Starts `aranea serve` on SQLite with `ARANEA_LOG=level` (unset if `None`), stderr a pipe;
/// returns the child, its address and the stderr lines, collected as they come.
fn serve_logging(dir: &Path, level: Option<&str>) -> (Child, SocketAddr, Arc<Mutex<Vec<String>>>) {
    let db = format!("sqlite://{}", dir.join("aranea.db").display());
    let mut command = Command::new(BIN);
    command
        .arg("--data")
        .arg(dir.join("data"))
        .args(["--db", &db, "serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("ARANEA_LOG");
    if let Some(level) = level {
        command.env("ARANEA_LOG", level);
    }
    let mut child = command.spawn().unwrap();
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let collected = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            collected.lock().unwrap().push(line);
        }
    });
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    (child, addr, lines)
}

/// Waits until a line satisfies `wanted`, then stops the server; returns every line.
fn lines_until(
    mut child: Child,
    lines: &Mutex<Vec<String>>,
    wanted: impl Fn(&str) -> bool,
) -> Vec<String> {
    let started = Instant::now();
    while !lines.lock().unwrap().iter().any(|l| wanted(l)) {
        if started.elapsed() > Duration::from_secs(20) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    lines.lock().unwrap().clone()
}

fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let entry: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line:?}"));
            assert!(
                entry["timestamp"].as_str().is_some_and(|t| t.contains('T')),
                "no timestamp: {line}"
            );
            assert!(
                ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
                    .contains(&entry["level"].as_str().unwrap_or_default()),
                "no level: {line}"
            );
            assert!(entry["fields"].is_object(), "no fields: {line}");
            entry
        })
        .collect()
}

fn message(entry: &Value) -> &str {
    entry["fields"]["message"].as_str().unwrap_or_default()
}

#[test]
fn on_a_pipe_every_log_line_is_json_with_time_level_and_fields() {
    let dir = scratch("logs-json");
    let (child, addr, lines) = serve_logging(&dir, Some("debug"));
    healthz(addr);
    let lines = lines_until(child, &lines, |l| l.contains("\"route\":\"/healthz\""));
    let entries = json_lines(&lines);
    let serving = entries
        .iter()
        .find(|e| message(e) == "serving")
        .unwrap_or_else(|| panic!("no serving line in {lines:#?}"));
    assert_eq!(serving["level"], "INFO", "{serving}");
    assert_eq!(serving["fields"]["local"], addr.to_string(), "{serving}");
    let request = entries
        .iter()
        .find(|e| message(e) == "request" && e["fields"]["route"] == "/healthz")
        .unwrap_or_else(|| panic!("no request line at debug in {lines:#?}"));
    assert_eq!(request["fields"]["status"], 200, "{request}");
    assert!(
        !entries.iter().any(|e| message(e).contains("ARANEA_LOG")),
        "a valid level warned: {lines:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unknown_aranea_log_value_is_named_in_one_warning_and_info_is_used() {
    let dir = scratch("logs-unknown");
    let (child, addr, lines) = serve_logging(&dir, Some("verbose"));
    healthz(addr);
    let lines = lines_until(child, &lines, |l| l.contains("serving"));
    let entries = json_lines(&lines);
    let warnings: Vec<&Value> = entries
        .iter()
        .filter(|e| message(e).contains("ARANEA_LOG"))
        .collect();
    assert_eq!(warnings.len(), 1, "{lines:#?}");
    assert_eq!(warnings[0]["level"], "WARN", "{}", warnings[0]);
    assert!(
        message(warnings[0]).contains("\"verbose\""),
        "{}",
        warnings[0]
    );
    assert!(
        entries.iter().any(|e| message(e) == "serving"),
        "{lines:#?}"
    );
    assert!(
        !entries.iter().any(|e| e["level"] == "DEBUG"),
        "info is the level used: {lines:#?}"
    );
    // Unset: no warning.
    let (child, _, lines) = serve_logging(&dir, None);
    let lines = lines_until(child, &lines, |l| l.contains("serving"));
    let entries = json_lines(&lines);
    assert!(
        entries.iter().any(|e| message(e) == "serving"),
        "{lines:#?}"
    );
    assert!(
        !entries.iter().any(|e| message(e).contains("ARANEA_LOG")),
        "{lines:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the command after `--` under a pseudo-terminal until it prints `serving`, then
/// stops it with SIGTERM; prints what it wrote.
const UNDER_A_TERMINAL: &str = r#"
import os, pty, select, signal, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
deadline = time.time() + 20
while time.time() < deadline and b"serving" not in out:
    ready, _, _ = select.select([fd], [], [], 0.2)
    if ready:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
time.sleep(0.2)
while select.select([fd], [], [], 0)[0]:
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
os.kill(pid, signal.SIGTERM)
os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf-8", "replace"))
"#;

#[test]
fn on_a_terminal_log_lines_are_text() {
    let dir = scratch("logs-tty");
    let db = format!("sqlite://{}", dir.join("aranea.db").display());
    let data = dir.join("data");
    let output = Command::new("python3")
        .args(["-c", UNDER_A_TERMINAL, BIN, "--data"])
        .arg(&data)
        .args(["--db", &db, "serve", "--listen", "127.0.0.1:0"])
        .env("ARANEA_LOG", "verbose")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed to run the server under a pty: {e}"));
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    // Colours are on for a terminal; the words are checked without them.
    let plain: String = {
        let mut plain = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                plain.push(c);
            }
        }
        plain
    };
    let serving = plain
        .lines()
        .find(|l| l.contains("serving"))
        .unwrap_or_else(|| panic!("no serving line in {text:?}"));
    assert!(
        serde_json::from_str::<Value>(serving).is_err() && !serving.trim_start().starts_with('{'),
        "{serving}"
    );
    assert!(
        serving.contains("INFO") && serving.contains("local=127.0.0.1:"),
        "{serving}"
    );
    let warning = plain
        .lines()
        .find(|l| l.contains("ARANEA_LOG"))
        .unwrap_or_else(|| panic!("no warning in {text:?}"));
    assert!(
        warning.contains("WARN") && warning.contains("\"verbose\""),
        "{warning}"
    );
    assert!(text.contains('\x1b'), "no colours on a terminal: {text:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
