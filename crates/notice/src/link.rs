//! Signed, expiring links that let a provider acknowledge or dispute a notice without an
//! account. The token names the notice and the expiry and carries an HMAC-SHA256 over both;
//! the server crate's HTTP handler calls [`verify`] and then [`crate::respond`].
//!
//! Must not accept a token whose signature, expiry or shape is wrong, and must compare
//! signatures in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::clock::UnixMillis;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is malformed")]
    Malformed,
    #[error("the link's signature does not match")]
    BadSignature,
    #[error("the link expired at {expired_at}")]
    Expired { expired_at: UnixMillis },
}

fn mac(secret: &[u8], reference: &str, expires: UnixMillis) -> HmacSha256 {
    // An empty key is valid for HMAC; `new_from_slice` accepts any length.
    let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| {
        HmacSha256::new_from_slice(b"-").unwrap_or_else(|_| unreachable!("HMAC takes any key"))
    });
    mac.update(format!("aranea-notice-respond:{reference}:{expires}").as_bytes());
    mac
}

/// The token for the notice with `reference` (its report id), valid until `expires`.
pub fn sign(secret: &[u8], reference: &str, expires: UnixMillis) -> String {
    let tag = mac(secret, reference, expires).finalize().into_bytes();
    format!("{reference}.{expires}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// The notice reference a token names, if it is genuine and not expired at `now`.
pub fn verify(secret: &[u8], token: &str, now: UnixMillis) -> Result<String, LinkError> {
    if token.len() > 200 {
        return Err(LinkError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(id), Some(expires), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(LinkError::Malformed);
    };
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(LinkError::Malformed);
    }
    let expires: i64 = expires.parse().map_err(|_| LinkError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| LinkError::Malformed)?;
    mac(secret, id, expires)
        .verify_slice(&tag)
        .map_err(|_| LinkError::BadSignature)?;
    if now > expires {
        return Err(LinkError::Expired {
            expired_at: expires,
        });
    }
    Ok(id.to_owned())
}

/// The HMAC-SHA256 webhook signature header value: `t=TIMESTAMP,v1=HEX` over
/// `TIMESTAMP.BODY`, so a receiver can refuse replays of old bodies.
pub fn webhook_signature(secret: &[u8], timestamp_secs: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| {
        HmacSha256::new_from_slice(b"-").unwrap_or_else(|_| unreachable!("HMAC takes any key"))
    });
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={timestamp_secs},v1={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let token = sign(b"k", "ab-42", 1_000);
        assert_eq!(verify(b"k", &token, 999), Ok("ab-42".to_owned()));
        assert_eq!(
            verify(b"k", &token, 1_001),
            Err(LinkError::Expired { expired_at: 1_000 })
        );
        assert_eq!(verify(b"other", &token, 999), Err(LinkError::BadSignature));
    }

    #[test]
    fn tampered_or_garbage_tokens_are_refused() {
        let token = sign(b"k", "ab-42", 1_000);
        let forged = token.replacen("42.", "43.", 1);
        assert_eq!(verify(b"k", &forged, 0), Err(LinkError::BadSignature));
        let later = token.replacen(".1000.", ".9999.", 1);
        assert_eq!(verify(b"k", &later, 0), Err(LinkError::BadSignature));
        for garbage in [
            "",
            ".",
            "a.b.c",
            "1.2",
            "1.2.3.4",
            "1.2.!!!",
            &"9".repeat(500),
        ] {
            assert!(verify(b"k", garbage, 0).is_err(), "{garbage:?}");
        }
    }

    #[test]
    fn webhook_signature_covers_time_and_body() {
        let a = webhook_signature(b"s", 10, b"{}");
        assert!(a.starts_with("t=10,v1="));
        assert_ne!(a, webhook_signature(b"s", 11, b"{}"));
        assert_ne!(a, webhook_signature(b"s", 10, b"{ }"));
    }
}
