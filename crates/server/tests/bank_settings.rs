//! `PATCH /api/v1/banks/{name}` over a real socket: a changed threshold or classification is
//! what `/v1/pdq/` answers with from then on, without a restart; bad requests are refused
//! and change nothing.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aranea_server::ServerConfig;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use common::{Reply, call, documented, get, post_json};

/// A known PDQ code: bytes 0, 1, 2, … 31.
fn known() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

/// `code` with its first `bits` bits flipped: at distance `bits` from it.
fn near(mut code: [u8; 32], bits: u32) -> [u8; 32] {
    for bit in 0..bits as usize {
        code[bit / 8] ^= 0x80 >> (bit % 8);
    }
    code
}

fn patch(addr: SocketAddr, bank: &str, key: Option<&str>, body: &str) -> Reply {
    call(
        addr,
        "PATCH",
        &format!("/api/v1/banks/{bank}"),
        key,
        Some("application/json"),
        body.as_bytes(),
    )
}

/// `/v1/pdq/`'s answer for one hash.
fn scanned(addr: SocketAddr, key: Option<&str>, code: [u8; 32]) -> Value {
    let hash = STANDARD.encode(code);
    let reply = post_json(addr, "/v1/pdq/", key, &json!({ "hashes": [hash] }));
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    reply.json()["scanned_hashes"][&hash].clone()
}

/// Asks `/v1/pdq/` until `done` holds of the answer or 10 s pass; returns the last answer.
fn scanned_until(
    addr: SocketAddr,
    key: Option<&str>,
    code: [u8; 32],
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = scanned(addr, key, code);
        if done(&answer) || Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A server with bank `partner` (classification `csam`, threshold 31) holding [`known`];
/// returns it and a key with the banks and shield scopes.
fn server_with_partner_bank(name: &str) -> (common::Server, String) {
    let server = common::start(name, ServerConfig::default());
    let key = server.client("ops", &["banks", "read", "shield"], None);
    let created = post_json(
        server.addr,
        "/api/v1/banks",
        Some(&key),
        &json!({"name": "partner", "classification": "csam", "pdq_threshold": 31}),
    );
    assert_eq!(created.status, 201, "{:?}", created.json());
    let hex: String = known().iter().map(|b| format!("{b:02x}")).collect();
    let imported = call(
        server.addr,
        "POST",
        "/api/v1/banks/partner/import?format=hex&signal_type=pdq",
        Some(&key),
        Some("text/plain"),
        format!("{hex}\n").as_bytes(),
    );
    assert_eq!(imported.status, 200, "{:?}", imported.json());
    (server, key)
}

#[test]
fn a_lowered_threshold_and_a_new_classification_take_effect_for_the_next_requests() {
    let (server, key) = server_with_partner_bank("bank-settings-effect");
    let (addr, key) = (server.addr, Some(key.as_str()));
    let doc = get(addr, "/api/v1/openapi.json", None).json();
    let asked = near(known(), 20);

    let before = scanned(addr, key, asked);
    assert_eq!(before["classification"], "csam", "{before}");
    assert_eq!(before["match_type"], "near");
    assert_eq!(before["near_match_details"]["distance"], 20);

    let lowered = patch(addr, "partner", key, r#"{"pdq_threshold": 19}"#);
    let lowered = documented(&doc, "patch", "/api/v1/banks/{name}", &lowered, 200);
    assert_eq!(lowered["pdq_threshold"], 19);
    assert_eq!(lowered["classification"], "csam", "other settings stay");
    let listed = get(addr, "/api/v1/banks", key).json();
    assert_eq!(
        listed["banks"][0], lowered,
        "answered as GET /api/v1/banks lists it"
    );
    let after = scanned_until(addr, key, asked, |a| {
        a["classification"] == "no-known-match"
    });
    assert_eq!(after["classification"], "no-known-match", "{after}");
    assert!(after["near_match_details"].is_null(), "{after}");
    // Within the new threshold still matches.
    let closer = scanned(addr, key, near(known(), 19));
    assert_eq!(closer["near_match_details"]["distance"], 19, "{closer}");

    // Back to the distance, relabelled: Shield reports every label but csam as
    // harmful-abusive-material.
    let relabelled = patch(
        addr,
        "partner",
        key,
        r#"{"pdq_threshold": 20, "classification": "sexual-exploitation"}"#,
    );
    assert_eq!(relabelled.status, 200, "{:?}", relabelled.json());
    let answer = scanned_until(addr, key, asked, |a| {
        a["classification"] == "harmful-abusive-material"
    });
    assert_eq!(
        answer["classification"], "harmful-abusive-material",
        "{answer}"
    );
    assert_eq!(
        answer["near_match_details"]["classification"],
        "harmful-abusive-material"
    );
    assert_eq!(answer["near_match_details"]["distance"], 20);
    assert_eq!(
        patch(addr, "partner", key, r#"{"classification": "csam"}"#).status,
        200
    );
    let answer = scanned_until(addr, key, asked, |a| a["classification"] == "csam");
    assert_eq!(answer["classification"], "csam", "{answer}");

    // An allow-list bank suppresses instead of reporting.
    let allowed = patch(addr, "partner", key, r#"{"kind": "allow-list"}"#);
    assert_eq!(allowed.json()["kind"], "allow-list");
    let answer = scanned_until(addr, key, asked, |a| {
        a["classification"] == "no-known-match"
    });
    assert_eq!(answer["classification"], "no-known-match", "{answer}");
}

#[test]
fn bad_changes_are_refused_and_change_nothing() {
    let (server, key) = server_with_partner_bank("bank-settings-refused");
    let (addr, key) = (server.addr, Some(key.as_str()));
    let doc = get(addr, "/api/v1/openapi.json", None).json();
    let before = get(addr, "/api/v1/banks", key).json();
    let path = "/api/v1/banks/{name}";

    let long_source = format!(r#"{{"source": "{}"}}"#, "s".repeat(501));
    let long_classification = format!(r#"{{"classification": "{}"}}"#, "c".repeat(101));
    for (body, says) in [
        ("{}", "Nothing to change"),
        (r#"{"pdq_threshold": null}"#, "Nothing to change"),
        (r#"{"pdq_threshold": 129}"#, "129"),
        (r#"{"pdq_threshold": -1}"#, "not a whole number"),
        (r#"{"pdq_threshold": 12.5}"#, "not a whole number"),
        (r#"{"pdq_threshold": "12"}"#, "JSON parse error"),
        (r#"{"classification": ""}"#, "classification"),
        (&long_classification, "classification"),
        (r#"{"classification": 7}"#, "JSON parse error"),
        (r#"{"kind": "blocklist"}"#, "JSON parse error"),
        (&long_source, "source"),
        (r#"{"source": "a\nb"}"#, "source"),
        (r#"{"source": "\u001b[2J"}"#, "source"),
        (r#"{"description": "a\u0000b"}"#, "description"),
        (r#"{"name": "renamed"}"#, "unknown field"),
        (r#"{"enabled": false}"#, "unknown field"),
        (r#"{"pdq_threshold": 10, "extra": 1}"#, "unknown field"),
        // One bad value among good ones: none of them is taken.
        (
            r#"{"pdq_threshold": 10, "classification": "other", "source": "bad\u007f"}"#,
            "source",
        ),
        ("[]", "Expected a dictionary, but got list"),
        (
            r#"["iwf", "csam", null, null, 10]"#,
            "Expected a dictionary, but got list",
        ),
        ("null", "Expected a dictionary, but got NoneType"),
        (r#"{"pdq_threshold": 10"#, "JSON parse error"),
    ] {
        let reply = patch(addr, "partner", key, body);
        let detail = documented(&doc, "patch", path, &reply, 400)["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(detail.contains(says), "{body}: {detail}");
    }

    let missing = patch(addr, "nosuch", key, r#"{"pdq_threshold": 10}"#);
    documented(&doc, "patch", path, &missing, 404);
    let all = patch(addr, "all", key, r#"{"pdq_threshold": 10}"#);
    documented(&doc, "patch", path, &all, 404);
    let traversal = patch(addr, "..%2Fpartner", key, r#"{"pdq_threshold": 10}"#);
    documented(&doc, "patch", path, &traversal, 404);

    let untyped = call(
        addr,
        "PATCH",
        "/api/v1/banks/partner",
        key,
        Some("text/plain"),
        br#"{"pdq_threshold": 10}"#,
    );
    documented(&doc, "patch", path, &untyped, 415);

    let reader = server.client("reader", &["read", "shield"], None);
    let forbidden = patch(addr, "partner", Some(&reader), r#"{"pdq_threshold": 10}"#);
    documented(&doc, "patch", path, &forbidden, 403);
    let anonymous = patch(addr, "partner", None, r#"{"pdq_threshold": 10}"#);
    documented(&doc, "patch", path, &anonymous, 401);

    assert_eq!(
        get(addr, "/api/v1/banks", key).json(),
        before,
        "a refused change changed the bank"
    );
    let still = scanned(addr, key, near(known(), 31));
    assert_eq!(still["near_match_details"]["distance"], 31, "{still}");
}
