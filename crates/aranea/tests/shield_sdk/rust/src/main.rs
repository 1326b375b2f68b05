//! Exercises every endpoint of the Arachnid Shield Rust SDK against the server named by
//! ARACHNID_SHIELD_URL at build time. Inputs come from the environment; prints one line per
//! check and exits 1 on the first failure.

use arachnid_shield::{
    ApiUser, ArachnidShield, ArachnidShieldError, MatchType, MediaClassification,
};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(env(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn check(what: &str, ok: bool, detail: String) {
    if ok {
        println!("ok   {what}");
    } else {
        println!("FAIL {what}: {detail}");
        std::process::exit(1);
    }
}

fn api_error(result: &Result<impl std::fmt::Debug, ArachnidShieldError>) -> Option<String> {
    match result {
        Err(ArachnidShieldError::APIError(detail)) => Some(detail.detail.clone()),
        _ => None,
    }
}

fn main() {
    let client = ArachnidShield::new(ApiUser::new(&env("SHIELD_USER"), &env("SHIELD_PASS")));
    let jpeg = mime::IMAGE_JPEG;

    let known = client.scan_media_from_bytes(read("KNOWN"), jpeg.clone());
    check(
        "known media matches exactly as csam",
        matches!(&known, Ok(m) if m.classification == Some(MediaClassification::CSAM)
            && matches!(m.match_type, Some(MatchType::Exact)) && m.matches_known_media()),
        format!("{known:?}"),
    );
    let near = client.scan_media_from_bytes(read("NEAR"), jpeg.clone());
    check(
        "a re-encoded copy matches as near with details",
        matches!(&near, Ok(m) if matches!(m.match_type, Some(MatchType::Near))
            && !m.near_match_details.is_empty()
            && m.near_match_details[0].classification == Some(MediaClassification::CSAM)),
        format!("{near:?}"),
    );
    let unknown = client.scan_media_from_bytes(read("UNKNOWN"), jpeg.clone());
    check(
        "unknown media has no known match",
        matches!(&unknown, Ok(m) if m.no_known_match() && m.match_type.is_none()
            && m.near_match_details.is_empty() && m.size_bytes > 0 && m.sha256_hex.len() == 64),
        format!("{unknown:?}"),
    );
    let allowed = client.scan_media_from_file(env("ALLOWED"));
    check(
        "allow-listed media is suppressed",
        matches!(&allowed, Ok(m) if m.no_known_match()),
        format!("{allowed:?}"),
    );
    let harmful = client.scan_media_from_bytes(read("HARMFUL"), jpeg.clone());
    check(
        "a hit in a harmful-abusive-material bank says so",
        matches!(&harmful, Ok(m) if m.classification == Some(MediaClassification::HarmfulAbusiveMaterial)),
        format!("{harmful:?}"),
    );

    let known_pdq: [u8; 32] = hex32(&env("KNOWN_PDQ_HEX"));
    let unknown_pdq = [0x5au8; 32];
    let pdq = client.scan_pdq_hashes(&[known_pdq, unknown_pdq]);
    check(
        "PDQ batch: known near, unknown none",
        match &pdq {
            Ok(scanned) => {
                let hits: Vec<bool> = scanned.scanned_hashes.values().map(|s| s.matches_known_media()).collect();
                scanned.scanned_hashes.len() == 2 && hits.iter().filter(|h| **h).count() == 1
            }
            Err(_) => false,
        },
        format!("{pdq:?}"),
    );

    let by_url = client.download_and_scan_media_from_url(&env("KNOWN_URL"));
    check(
        "known media by URL matches",
        matches!(&by_url, Ok(m) if m.matches_known_media()),
        format!("{by_url:?}"),
    );
    let forbidden = client.download_and_scan_media_from_url(&env("FORBIDDEN_URL"));
    check(
        "a URL on a private address is refused with a detail",
        api_error(&forbidden).is_some_and(|d| d.contains("refused")),
        format!("{forbidden:?}"),
    );

    let big = client.scan_media_from_bytes(read("BIG"), jpeg.clone());
    check(
        "an oversized body is refused with a detail",
        api_error(&big).is_some_and(|d| d.contains("larger than")),
        format!("{big:?}"),
    );
    let truncated = client.scan_media_from_bytes(read("TRUNCATED"), jpeg.clone());
    check(
        "a truncated JPEG is refused with a detail",
        api_error(&truncated).is_some(),
        format!("{truncated:?}"),
    );
    let garbage = client.scan_media_from_bytes(b"this is not an image".to_vec(), jpeg);
    check(
        "garbage bytes are refused with a detail",
        api_error(&garbage).is_some(),
        format!("{garbage:?}"),
    );

    let intruder = ArachnidShield::new(ApiUser::new(&env("SHIELD_USER"), "wrong-password"));
    let refused = intruder.scan_pdq_hashes(&[unknown_pdq]);
    check(
        "wrong credentials are refused",
        api_error(&refused).is_some_and(|d| d == "Invalid username/password."),
        format!("{refused:?}"),
    );
    println!("all checks passed");
}

fn hex32(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}
