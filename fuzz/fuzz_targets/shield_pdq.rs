//! Any bytes as the JSON body of the Shield API's `POST /v1/pdq/` (`{"hashes": [base64...]}`,
//! read by the server's `pdq_request`, exposed as `aranea_server::fuzzing`); the first byte
//! picks the most hashes allowed. The reader must give the values or a 400 with the documented
//! message, never panic. Checked against an independent reading (`serde_json::Value` and a
//! base64 decoder written out here): the body is read exactly when it is a JSON object whose
//! `hashes` is an array of at most the limit strings, each, trimmed, the padded standard
//! base64 of 32 bytes (44 characters, the last `=`, no bits left over); then the values are
//! those bytes, in order, one for one with the hashes as sent. Too many hashes are refused
//! as such before any is decoded, and a bad hash is refused naming the first bad one (its
//! first 64 characters). A body holding a number beyond a double's range is not judged: the
//! server may skip it in a field it does not read, as Shield's Python reads it as infinity.
#![no_main]

use aranea_index::{Signal, SignalType};
use aranea_server::fuzzing::pdq_request;
use axum::http::StatusCode;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const LIMITS: [usize; 5] = [0, 1, 2, 3, 1000];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let limit = LIMITS[usize::from(selector) % LIMITS.len()];
    let read = pdq_request(body, limit);
    let hashes = match independent_hashes(body) {
        Reading::Hashes(hashes) => hashes,
        Reading::Unknowable => return,
        Reading::NotARequest => {
            let error = read.expect_err("a body that is not {\"hashes\": [strings]} was read");
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
            assert!(
                error.detail.starts_with("JSON parse error - ")
                    || error
                        .detail
                        .starts_with("Invalid data. Expected a dictionary, but got "),
                "{:?}",
                error.detail
            );
            return;
        }
    };
    let (sent, signals) = match read {
        Ok(read) => read,
        Err(error) if error.detail.contains("duplicate field `hashes`") => {
            // serde refuses a repeated key, which a `Value` keeps the last of.
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
            return;
        }
        Err(error) => {
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{}", error.detail);
            if hashes.len() > limit {
                assert_eq!(
                    error.detail,
                    format!("Too many hashes: at most {limit} per request.")
                );
                return;
            }
            let first_bad = hashes
                .iter()
                .find(|text| decoded(text.trim()).is_none())
                .unwrap_or_else(|| panic!("refused with every hash valid: {}", error.detail));
            assert_eq!(
                error.detail,
                format!(
                    "Invalid PDQ hash {:?}: expected the base64 of 32 bytes.",
                    first_bad.chars().take(64).collect::<String>()
                )
            );
            return;
        }
    };
    assert!(
        sent.len() <= limit,
        "{} hashes over a limit of {limit}",
        sent.len()
    );
    assert_eq!(sent, hashes);
    assert_eq!(signals.len(), sent.len());
    for (text, signal) in sent.iter().zip(&signals) {
        let bytes = decoded(text.trim()).unwrap_or_else(|| panic!("{text:?} read"));
        assert_eq!(Some(*signal), Signal::from_bytes(SignalType::Pdq, &bytes));
        assert_eq!(signal.signal_type(), SignalType::Pdq);
        assert_eq!(signal.as_bytes(), &bytes[..]);
    }
});

/// What a body is, read independently of the server's reader.
enum Reading {
    /// A JSON object with an array of strings at `hashes`.
    Hashes(Vec<String>),
    /// Anything else.
    NotARequest,
    /// A number beyond the range of a double: `Value` refuses it, while a reader skipping a
    /// field it does not use may take it, as Python's `json` (Shield's) reads it as infinity.
    Unknowable,
}

fn independent_hashes(body: &[u8]) -> Reading {
    let value = match serde_json::from_slice::<Value>(body) {
        Ok(value) => value,
        Err(error) if error.to_string().starts_with("number out of range") => {
            return Reading::Unknowable;
        }
        Err(_) => return Reading::NotARequest,
    };
    let Some(Value::Array(items)) = value.as_object().and_then(|o| o.get("hashes")) else {
        return Reading::NotARequest;
    };
    items
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .map_or(Reading::NotARequest, Reading::Hashes)
}

/// The 32 bytes a padded standard base64 text encodes, if it is one (canonical: the two bits
/// the last character carries past the 256 must be zero).
fn decoded(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 44 || digits[43] != b'=' {
        return None;
    }
    let mut bits: u32 = 0;
    let mut held = 0;
    let mut out = Vec::with_capacity(33);
    for &digit in &digits[..43] {
        let value = match digit {
            b'A'..=b'Z' => digit - b'A',
            b'a'..=b'z' => digit - b'a' + 26,
            b'0'..=b'9' => digit - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = bits << 6 | u32::from(value);
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
        }
    }
    // 43 digits are 258 bits: 32 bytes and 2 bits that must be zero.
    if out.len() != 32 || held != 2 || bits != 0 {
        return None;
    }
    out.try_into().ok()
}
