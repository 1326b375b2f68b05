//! TOTP second factor (RFC 6238: HMAC-SHA-1, 30-second steps, 6 digits), as authenticator
//! apps implement it. One step of clock skew either way is accepted.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

const STEP_SECONDS: u64 = 30;

/// The 6-digit code for a secret at a Unix time (seconds).
pub fn code_at(secret: &[u8], unix_seconds: u64) -> u32 {
    hotp(secret, unix_seconds / STEP_SECONDS)
}

fn hotp(secret: &[u8], counter: u64) -> u32 {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return u32::MAX;
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let word = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    word % 1_000_000
}

/// Whether `code` (as typed: spaces allowed) is valid for the secret at or one step around
/// `unix_seconds`. A caller that logs someone in must use [`verify_step`] and accept each
/// step once, or a code seen over a shoulder works again within its window.
pub fn verify(secret: &[u8], code: &str, unix_seconds: u64) -> bool {
    verify_step(secret, code, unix_seconds).is_some()
}

/// The time step (Unix seconds / 30) at which `code` is valid for the secret, at or one
/// step around `unix_seconds`.
pub fn verify_step(secret: &[u8], code: &str, unix_seconds: u64) -> Option<u64> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value = digits.parse::<u32>().ok()?;
    let step = unix_seconds / STEP_SECONDS;
    [step.saturating_sub(1), step, step + 1]
        .into_iter()
        .find(|&s| hotp(secret, s) == value)
}

/// The `otpauth://` URI authenticator apps import (Key Uri Format): issuer and account
/// name percent-encoded, SHA-1, 6 digits, 30 seconds.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits=6&period=30",
        percent_encode(account),
        base32(secret)
    )
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// How authenticator apps take the secret (RFC 4648 base32 without padding).
pub use aranea_hash::base32;

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B, SHA-1 rows (8 digits there; the last 6 here).
    #[test]
    fn rfc6238_vectors() {
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59), 287_082);
        assert_eq!(code_at(secret, 1_111_111_109), 81_804);
        assert_eq!(code_at(secret, 1_234_567_890), 5_924);
        assert_eq!(code_at(secret, 2_000_000_000), 279_037);
    }

    #[test]
    fn verify_accepts_one_step_of_skew_and_nothing_malformed() {
        let secret = b"12345678901234567890";
        assert!(verify(secret, "287 082", 59));
        assert!(verify(secret, "287082", 59 + 30));
        assert!(!verify(secret, "287082", 59 + 90));
        for bad in ["", "28708", "2870822", "abcdef", "+87082", "２８７０８２"] {
            assert!(!verify(secret, bad, 59), "{bad}");
        }
    }

    #[test]
    fn verify_step_names_the_step_that_matched() {
        let secret = b"12345678901234567890";
        assert_eq!(verify_step(secret, "287082", 59), Some(1));
        assert_eq!(verify_step(secret, "287082", 59 + 30), Some(1));
        assert_eq!(verify_step(secret, "000000", 59), None);
    }

    #[test]
    fn otpauth_uri_encodes_names() {
        assert_eq!(
            otpauth_uri("Aranea gb", "ana&co", b"foobar"),
            "otpauth://totp/Aranea%20gb:ana%26co?secret=MZXW6YTBOI&issuer=Aranea%20gb\
             &algorithm=SHA1&digits=6&period=30"
        );
    }
}
