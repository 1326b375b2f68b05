//! The native API's bank import against hostile lists, over a socket: a list with any bad line
//! imports nothing (not even its good lines), the answer names the bad lines, and the bank's
//! journal gains no record; an unreadable list is a 400 of its own.

mod common;

use serde_json::json;

use aranea_server::ServerConfig;
use common::{Reply, Server, call, post_json};

const MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

fn import(server: &Server, key: &str, query: &str, body: &[u8]) -> Reply {
    call(
        server.addr,
        "POST",
        &format!("/api/v1/banks/partner/import?{query}"),
        Some(key),
        Some("text/plain"),
        body,
    )
}

/// (journal sequence number, entries) of the server's banks.
fn journal_and_entries(server: &Server) -> (u64, usize) {
    server
        .state
        .banks()
        .read(|store| (store.state().seq(), store.state().entries().len()))
}

#[test]
fn a_hostile_list_imports_nothing_and_names_its_bad_lines() {
    let server = common::start("bank-import-hostile", ServerConfig::default());
    let key = server.client("ops", &["banks"], None);
    let created = post_json(
        server.addr,
        "/api/v1/banks",
        Some(&key),
        &json!({"name": "partner", "classification": "csam"}),
    );
    assert_eq!(created.status, 201, "{:?}", created.json());
    let good = format!("{{\"signal_type\":\"md5\",\"signal_value\":\"{MD5}\"}}\n");
    let mut huge = format!("{MD5}\n").into_bytes();
    huge.extend(std::iter::repeat_n(
        b'a',
        aranea_index::import::MAX_LINE + 10,
    ));
    huge.push(b'\n');
    let mut garbage = format!("{MD5}\n").into_bytes();
    garbage.extend(
        (0..=255u8)
            .cycle()
            .take(4096)
            .map(|b| if b == b'\n' { 0xff } else { b }),
    );
    let hostile: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            "format=jsonl",
            format!("{good}{}", &good[..good.len() / 2]).into_bytes(),
            "line 2: invalid JSON",
        ),
        (
            "huge line",
            "format=hex&signal_type=md5",
            huge,
            "line 2: line longer than",
        ),
        (
            "binary garbage",
            "format=hex&signal_type=md5",
            garbage,
            "line 2: not UTF-8",
        ),
        (
            "wrong signal type",
            "format=hex&signal_type=sha256",
            format!("{MD5}\n").into_bytes(),
            "line 1:",
        ),
        (
            "wrong field count",
            "format=hma-csv",
            format!("signal_type,signal_value\nmd5,{MD5}\nmd5,{MD5},extra\n").into_bytes(),
            "line 3: 3 fields, the header has 2",
        ),
    ];
    let before = journal_and_entries(&server);
    for (what, query, body, error) in hostile {
        let reply = import(&server, &key, query, &body);
        assert_eq!(reply.status, 400, "{what}: {:?}", reply.json());
        let detail = reply.json()["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains("nothing imported"), "{what}: {detail}");
        assert!(detail.contains(error), "{what}: {error:?} not in {detail}");
        assert_eq!(
            journal_and_entries(&server),
            before,
            "{what}: a refused list wrote to the banks"
        );
    }

    // A list whose header names no value column cannot be read at all.
    let reply = import(
        &server,
        &key,
        "format=hma-csv",
        format!("id,type,digest\n1,md5,{MD5}\n").as_bytes(),
    );
    assert_eq!(reply.status, 400);
    let detail = reply.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("could not be read") && detail.contains("signal_value"),
        "{detail}"
    );
    assert_eq!(journal_and_entries(&server), before);

    // The same good line alone imports.
    let reply = import(&server, &key, "format=jsonl", good.as_bytes());
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    assert_eq!(reply.json()["added"], 1);
    assert_eq!(journal_and_entries(&server).1, 1);
}
