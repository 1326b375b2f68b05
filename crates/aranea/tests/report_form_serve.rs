//! `aranea serve` serves the public report form only when `[report_form]` enables it, sends
//! its reports to the hotline named there (what `aranea report show` then prints), and
//! refuses to start with a hotline that is not registered.

#[path = "common/process.rs"]
mod process;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

fn status_of(addr: &str, method: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} /report HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status: u16 = answer.split(' ').nth(1).unwrap().parse().unwrap();
    (status, answer)
}

#[test]
fn serve_takes_public_reports_only_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = format!("sqlite://{}", dir.path().join("aranea.db").display());
    process::aranea_ok(
        &data,
        &db,
        &[
            "hotline",
            "add",
            "nl",
            "--name",
            "Hotline NL",
            "--country",
            "NL",
        ],
    );

    // A hotline that is not registered: the server does not start.
    let config = dir.path().join("typo.toml");
    std::fs::write(&config, "[report_form]\nenabled = true\nhotline = \"nk\"\n").unwrap();
    let (started, output) = process::run_bounded(
        Command::new(process::BIN)
            .arg("--data")
            .arg(&data)
            .args(["--db", &db, "--config", config.to_str().unwrap()])
            .args(["serve", "--listen", "127.0.0.1:0"]),
        Duration::from_secs(60),
    );
    assert!(!started, "{output}");
    assert!(
        output.contains("hotline \"nk\" is not registered"),
        "{output}"
    );

    // Without the table: no form.
    let config = dir.path().join("off.toml");
    std::fs::write(&config, "").unwrap();
    let (mut server, url) = process::serve(&data, &db, &config);
    let (off, answer) = status_of(url.trim_start_matches("http://"), "GET", "");
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(off, 404, "{answer}");

    // Enabled: a report goes to the configured hotline, as received.
    let config = dir.path().join("on.toml");
    std::fs::write(&config, "[report_form]\nenabled = true\nhotline = \"nl\"\n").unwrap();
    let (mut server, url) = process::serve(&data, &db, &config);
    let addr = url.trim_start_matches("http://").to_owned();
    let (form, _) = status_of(&addr, "GET", "");
    let (sent, answer) = status_of(&addr, "POST", "urls=https%3A%2F%2Fa.example%2Fp");
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!((form, sent), (200, 200), "{answer}");
    let reference = answer
        .split("<strong id=\"reference\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    let shown: serde_json::Value = serde_json::from_str(&process::aranea_ok(
        &data,
        &db,
        &["report", "show", &reference, "--format", "json"],
    ))
    .unwrap();
    assert_eq!(shown["hotline"], "nl");
    assert_eq!(shown["reporter"], "public form");
    assert_eq!(shown["url"], "https://a.example/p");
    assert_eq!(shown["status"], "received");
    // The form answered with the report's public reference, which finds it; not its id.
    assert_eq!(shown["reference"], reference.as_str());
    assert_ne!(reference, shown["report"].to_string());
}
