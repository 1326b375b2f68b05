//! Any bytes as the body of a UI form POST (`application/x-www-form-urlencoded`, read by the
//! server's `parse_form`), which comes from any client: the reader must give the fields or a
//! 413 refusal, never panic. A body over 16 KiB is refused and any other is read; the fields
//! are what an independent decoding of the body gives (pairs split at `&`, empty pieces
//! skipped, name and value split at the first `=`, `+` a space, `%XX` a byte and any other `%`
//! itself, the bytes read as UTF-8 with invalid sequences replaced, the last value of a name
//! kept); padding the body with `&` up to the limit reads the same fields and one byte more is
//! refused; and the fields encoded again read back as the same fields. The public report form
//! reads with its own limit (`parse_form_within`, from its URL cap): a body exactly at a limit
//! reads the same fields, one byte over it is refused.
#![no_main]

use std::collections::HashMap;

use aranea_server::fuzzing::{Fields, parse_form, parse_form_within};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

/// The largest body read (`MAX_FORM_BYTES` in the server's `ui/session.rs`).
const LIMIT: usize = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let fields = match parse_form(&body) {
        Ok(fields) => fields,
        Err(refusal) => {
            assert!(data.len() > LIMIT, "a body of {} bytes refused", data.len());
            assert_eq!(refusal_status(refusal), StatusCode::PAYLOAD_TOO_LARGE);
            return;
        }
    };
    assert!(data.len() <= LIMIT, "a body of {} bytes read", data.len());
    assert_eq!(fields, decoded(data));
    let pieces = data.split(|&b| b == b'&').filter(|p| !p.is_empty()).count();
    assert!(fields.len() <= pieces);

    assert_eq!(
        parse_form_within(&body, data.len()).ok().as_ref(),
        Some(&fields)
    );
    if let Some(under) = data.len().checked_sub(1) {
        let refused = parse_form_within(&body, under).expect_err("a body over its limit");
        assert_eq!(refusal_status(refused), StatusCode::PAYLOAD_TOO_LARGE);
    }

    let mut padded = data.to_vec();
    padded.resize(LIMIT, b'&');
    assert_eq!(
        parse_form(&Bytes::from(padded.clone())).ok(),
        Some(fields.clone())
    );
    padded.push(b'&');
    let refused = parse_form(&Bytes::from(padded)).expect_err("a body over the limit");
    assert_eq!(refusal_status(refused), StatusCode::PAYLOAD_TOO_LARGE);

    let mut encoder = url::form_urlencoded::Serializer::new(String::new());
    encoder.extend_pairs(&fields);
    let encoded = encoder.finish();
    match parse_form(&Bytes::from(encoded.clone())) {
        Ok(again) => assert_eq!(again, fields, "{encoded:?} reads back otherwise"),
        Err(_) => assert!(encoded.len() > LIMIT),
    }
});

fn refusal_status(refusal: aranea_server::fuzzing::Refusal) -> StatusCode {
    refusal.into_response().status()
}

/// The fields as the form encoding defines them, written out byte by byte.
fn decoded(body: &[u8]) -> Fields {
    let mut fields = HashMap::new();
    for piece in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match piece.iter().position(|&b| b == b'=') {
            Some(at) => (&piece[..at], &piece[at + 1..]),
            None => (piece, &[][..]),
        };
        fields.insert(unescaped(name), unescaped(value));
    }
    fields
}

fn unescaped(text: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        match text[at] {
            b'+' => bytes.push(b' '),
            b'%' => match (
                text.get(at + 1).and_then(|&d| hex_digit(d)),
                text.get(at + 2).and_then(|&d| hex_digit(d)),
            ) {
                (Some(high), Some(low)) => {
                    bytes.push(high << 4 | low);
                    at += 2;
                }
                _ => bytes.push(b'%'),
            },
            other => bytes.push(other),
        }
        at += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn hex_digit(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|d| d as u8)
}
