//! `aranea simweb` as a user runs it: a real process, its printed addresses used over real
//! sockets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

fn dns_a(server: SocketAddr, name: &str) -> [u8; 4] {
    let mut packet = vec![0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.extend_from_slice(&[0, 0, 1, 0, 1]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    socket.send_to(&packet, server).unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = socket.recv_from(&mut buf).unwrap();
    assert_eq!(buf[3] & 0x0F, 0, "rcode");
    // The single A record's address is the last four bytes.
    buf[n - 4..n].try_into().unwrap()
}

#[test]
fn simweb_prints_its_addresses_and_serves_the_world_they_name() {
    let data = std::env::temp_dir().join(format!("aranea-simweb-cli-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_aranea"))
        .args([
            "simweb",
            "--scenario",
            "small",
            "--seed",
            "5",
            "--format",
            "json",
            "--exit-after",
            "60",
        ])
        .arg("--data")
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let summary: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        panic!("{e}: {line:?} {err}")
    });
    let resolver: SocketAddr = summary["resolver"].as_str().unwrap().parse().unwrap();
    let port = summary["http_port"].as_u64().unwrap() as u16;
    let bank = std::fs::read_to_string(summary["bank"].as_str().unwrap()).unwrap();
    assert!(bank.starts_with("signal_type,signal_value\n") && bank.contains("\npdq,"));
    assert!(summary["rdap"].as_str().unwrap().starts_with("http://"));
    assert!(
        summary["smtp"]
            .as_str()
            .unwrap()
            .parse::<SocketAddr>()
            .is_ok()
    );
    assert_eq!(summary["counts"]["sites"], 11);

    let ip = dns_a(resolver, "sunny-gallery.sim");
    let mut stream = TcpStream::connect(SocketAddr::from((ip, port))).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: sunny-gallery.sim\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("/album/"));

    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn simweb_rejects_a_broken_scenario_file_with_a_message() {
    let file = std::env::temp_dir().join(format!("aranea-simweb-bad-{}.toml", std::process::id()));
    std::fs::write(&file, "name = \"bad\"\ntime_scale = -3\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_aranea"))
        .args(["simweb", "--scenario"])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("time_scale"), "{stderr}");
}
