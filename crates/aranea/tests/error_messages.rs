//! What the binary prints when it fails: each cause once. The binary prints an error with
//! its chain of sources (`{:#}`), so an error whose message already names its cause must not
//! also hand that cause on as its source.

#[path = "common/process.rs"]
mod process;

use std::process::Command;
use std::time::Duration;

#[test]
fn a_missing_ca_file_is_reported_with_its_os_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let missing = data.join("missing-ca.pem");
    let config = data.join("aranea.toml");
    std::fs::write(
        &config,
        format!("[crawl]\nca_files = [{:?}]\n", missing.to_str().unwrap()),
    )
    .unwrap();
    let db = format!("sqlite://{}", data.join("aranea.db").display());
    let (ok, output) = process::run_bounded(
        Command::new(process::BIN)
            .args(["--data", data.to_str().unwrap(), "--db", &db])
            .args(["--config", config.to_str().unwrap()])
            .args(["crawl", "--until-idle"]),
        Duration::from_secs(60),
    );
    assert!(!ok, "crawl started without its CA file: {output}");
    assert!(output.contains("missing-ca.pem"), "{output}");
    // ENOENT, as the OS words it ("No such file or directory (os error 2)" on Linux).
    let cause = "(os error 2)";
    assert_eq!(
        output.matches(cause).count(),
        1,
        "the cause is printed once: {output}"
    );
}
