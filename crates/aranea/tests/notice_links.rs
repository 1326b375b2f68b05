//! `aranea serve` answers the links in the notices `aranea notices run` sends with the same
//! `[notice]` section: its respond page verifies them with that section's key. A link signed
//! with the key reaches the notice lookup (404 for a notice this database never sent); one
//! signed with another key is refused as forged (400). Before, no route served the links.

#[path = "common/process.rs"]
mod process;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const LINK_KEY: &str = "a long random secret for notice links";

#[test]
fn serve_verifies_notice_links_with_the_notice_sections_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = format!("sqlite://{}", dir.path().join("aranea.db").display());
    let config = dir.path().join("aranea.toml");
    std::fs::write(&config, format!("[notice]\nlink_secret = {LINK_KEY:?}\n")).unwrap();
    let (mut server, url) = process::serve(&data, &db, &config);
    let addr = url.trim_start_matches("http://");

    let in_an_hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 3_600_000;
    let status_of = |key: &[u8]| {
        let token = aranea_notice::link::sign(key, "5eed-1", in_an_hour);
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "GET /notice/respond?t={token} HTTP/1.1\r\nHost: aranea\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status: u16 = answer.split(' ').nth(1).unwrap().parse().unwrap();
        (status, answer)
    };
    let (genuine, answer) = status_of(LINK_KEY.as_bytes());
    let (forged, forged_answer) = status_of(b"another key");
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(genuine, 404, "{answer}");
    assert!(
        answer.contains("no notice with reference 5eed-1"),
        "{answer}"
    );
    assert_eq!(forged, 400, "{forged_answer}");
    assert!(forged_answer.contains("signature"), "{forged_answer}");
}
