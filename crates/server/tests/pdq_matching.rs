//! `POST /v1/pdq/` from concurrent clients: a single hash (searched alone) and several in one
//! request (searched as a batch) get the same, right answers, each client its own.

mod common;

use std::time::Duration;

use aranea_index::{BankSpec, NewEntry, Origin, Provenance, Signal, SignalType};
use aranea_server::ServerConfig;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

/// A deterministic pseudo-random 32-byte code (xorshift).
fn code(seed: u64) -> [u8; 32] {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = [0u8; 32];
    for byte in &mut out {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = (x >> 24) as u8;
    }
    out
}

/// `code` with its first `bits` bits flipped.
fn near(mut code: [u8; 32], bits: u32) -> [u8; 32] {
    for bit in 0..bits as usize {
        code[bit / 8] ^= 0x80 >> (bit % 8);
    }
    code
}

fn answers_every_client_its_own_hashes(name: &str, config: ServerConfig) {
    let server = common::start(name, config);
    let known: Vec<[u8; 32]> = (0..40).map(code).collect();
    server
        .state
        .banks()
        .write(|store| {
            let bank = store.create_bank(BankSpec::new("known", "known", "csam"))?;
            store.begin_transaction()?;
            let provenance = store.add_provenance(Provenance {
                added_by: "test".into(),
                added_at: 0,
                origin: Origin::Manual,
            })?;
            let entries: Vec<NewEntry> = known
                .iter()
                .map(|c| NewEntry {
                    bank,
                    signal: Signal::from_bytes(SignalType::Pdq, c).unwrap(),
                    classification: None,
                    provenance,
                    line: 0,
                    metadata: None,
                })
                .collect();
            store.append_entries(&entries)?;
            store.commit_transaction()
        })
        .unwrap();
    let credentials = server.client("partner", &["shield"], None);
    let addr = server.addr;
    // 8 clients at once, each asking about its own mix of near, exact and unknown hashes,
    // one per request and then several in one request.
    let clients: Vec<_> = (0..8u64)
        .map(|client| {
            let (known, credentials) = (known.clone(), credentials.clone());
            std::thread::spawn(move || {
                for round in 0..12u64 {
                    let i = ((client * 12 + round) % 40) as usize;
                    let distance = ((client + round) % 4) as u32 * 3;
                    let unknown = code(1_000 + client * 100 + round);
                    let asked = [near(known[i], distance), unknown];
                    let hashes: Vec<String> = asked.iter().map(|c| STANDARD.encode(c)).collect();
                    let single = common::post_json(
                        addr,
                        "/v1/pdq/",
                        Some(&credentials),
                        &json!({ "hashes": [hashes[0]] }),
                    );
                    assert_eq!(single.status, 200);
                    let answer = &single.json()["scanned_hashes"][&hashes[0]];
                    assert_eq!(answer["classification"], "csam", "{answer}");
                    assert_eq!(answer["match_type"], "near");
                    assert_eq!(answer["near_match_details"]["distance"], distance);
                    let both = common::post_json(
                        addr,
                        "/v1/pdq/",
                        Some(&credentials),
                        &json!({ "hashes": hashes }),
                    );
                    let scanned = &both.json()["scanned_hashes"];
                    assert_eq!(scanned.as_object().unwrap().len(), 2, "{scanned}");
                    assert_eq!(
                        scanned[&hashes[0]]["near_match_details"]["distance"],
                        distance
                    );
                    assert_eq!(scanned[&hashes[1]]["classification"], "no-known-match");
                    assert!(scanned[&hashes[1]]["near_match_details"].is_null());
                }
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for client in clients {
        while !client.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "clients did not finish"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        client.join().unwrap();
    }
}

#[test]
fn concurrent_clients_get_the_answers_for_their_own_hashes() {
    answers_every_client_its_own_hashes("pdq-concurrent", ServerConfig::default());
}
