//! One re-check of a noticed URL: re-fetch through the crawler's guarded fetcher, re-hash,
//! and say whether the same media is still there.
//!
//! "Removed" outcomes are 404/410, NXDOMAIN, connection refused, and a 200 that now serves
//! different media (`changed`), or an image far from the original by PDQ that the caller
//! may record as a placeholder. Anything else (timeouts, 5xx, 429, refusals by the guard
//! other than NXDOMAIN) is `inconclusive` and never counts toward removal. Must not keep the
//! fetched bytes beyond hashing them.

use aranea_crawl::fetch::{FetchError, Fetcher};
use aranea_crawl::ssrf::GuardError;
use aranea_hash::{Limits, hash_media};

/// What a re-check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    Present,
    Gone,
    Changed,
    Placeholder,
    Nxdomain,
    Refused,
    Inconclusive,
}

impl CheckOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckOutcome::Present => "present",
            CheckOutcome::Gone => "gone",
            CheckOutcome::Changed => "changed",
            CheckOutcome::Placeholder => "placeholder",
            CheckOutcome::Nxdomain => "nxdomain",
            CheckOutcome::Refused => "refused",
            CheckOutcome::Inconclusive => "inconclusive",
        }
    }

    /// Outcomes that count toward removal.
    pub fn is_removal(self) -> bool {
        matches!(
            self,
            CheckOutcome::Gone
                | CheckOutcome::Changed
                | CheckOutcome::Placeholder
                | CheckOutcome::Nxdomain
                | CheckOutcome::Refused
        )
    }
}

/// A re-check's result with its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub outcome: CheckOutcome,
    pub http_status: Option<u16>,
    pub detail: String,
}

fn hamming(a: &[u8; 32], b: &[u8; 32]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// Parses 64 hex digits: a PDQ or a SHA-256 as items hold them.
pub fn hash32_from_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Whether two hashes are the same media: equal SHA-256, or PDQ within `threshold`.
pub fn same_media(
    sha256_a: &str,
    pdq_a: Option<&str>,
    sha256_b: &str,
    pdq_b: Option<&str>,
    threshold: u32,
) -> bool {
    if sha256_a.eq_ignore_ascii_case(sha256_b) {
        return true;
    }
    match (
        pdq_a.and_then(hash32_from_hex),
        pdq_b.and_then(hash32_from_hex),
    ) {
        (Some(a), Some(b)) => hamming(&a, &b) <= threshold,
        _ => false,
    }
}

/// Hashes of fetched bytes: lowercase hex SHA-256 and PDQ.
pub struct Rehash {
    pub sha256: String,
    pub pdq: Option<String>,
}

/// Hashes bytes on the blocking pool (decoding is CPU work).
pub async fn rehash(bytes: bytes::Bytes) -> Option<Rehash> {
    tokio::task::spawn_blocking(move || {
        let hashes = hash_media(&bytes, &Limits::default()).ok()?;
        Some(Rehash {
            sha256: crate::engine::hex(&hashes.sha256),
            pdq: hashes.pdq.map(|p| crate::engine::hex(p.hash.as_bytes())),
        })
    })
    .await
    .ok()
    .flatten()
}

/// Re-fetches `url` and compares with the item's hashes.
pub async fn check(
    fetcher: &Fetcher,
    url: &str,
    sha256: &str,
    pdq: Option<&str>,
    threshold: u32,
) -> Check {
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            return Check {
                outcome: CheckOutcome::Inconclusive,
                http_status: None,
                detail: format!("unparsable URL: {e}"),
            };
        }
    };
    let fetched = fetcher.fetch(&parsed).await;
    let response = match fetched.outcome {
        Ok(r) => r,
        Err(error) => return failed(error),
    };
    let status = response.status;
    let outcome = |outcome, detail: String| Check {
        outcome,
        http_status: Some(status),
        detail,
    };
    match status {
        404 | 410 => return outcome(CheckOutcome::Gone, format!("HTTP {status}")),
        200..=299 => {}
        _ => return outcome(CheckOutcome::Inconclusive, format!("HTTP {status}")),
    }
    let Some(now) = rehash(response.body.clone()).await else {
        return outcome(
            CheckOutcome::Changed,
            format!(
                "HTTP {status} serving {} bytes that are not a decodable image",
                response.body.len()
            ),
        );
    };
    if same_media(sha256, pdq, &now.sha256, now.pdq.as_deref(), threshold) {
        return outcome(CheckOutcome::Present, "same media".to_owned());
    }
    // A small image where the material was is the classic placeholder; anything else
    // decodable is different media. Both count as removed.
    let kind = if response.body.len() < 16 * 1024 {
        CheckOutcome::Placeholder
    } else {
        CheckOutcome::Changed
    };
    outcome(
        kind,
        format!("HTTP {status}: different media (sha256 {})", now.sha256),
    )
}

fn failed(error: FetchError) -> Check {
    let detail = error.to_string();
    let outcome = match &error {
        FetchError::Refused(GuardError::Resolution {
            no_such_name: true, ..
        }) => CheckOutcome::Nxdomain,
        FetchError::Refused(GuardError::NoAddresses { .. }) => CheckOutcome::Nxdomain,
        FetchError::Connect { message } if message.to_ascii_lowercase().contains("refused") => {
            CheckOutcome::Refused
        }
        _ => CheckOutcome::Inconclusive,
    };
    Check {
        outcome,
        http_status: None,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_media_by_sha_or_pdq_distance() {
        let a = "00".repeat(32);
        let b = format!("{}{}", "ff", "00".repeat(31));
        assert!(same_media("AA", None, "aa", None, 31));
        assert!(same_media("x", Some(&a), "y", Some(&b), 31));
        assert!(!same_media("x", Some(&a), "y", Some(&b), 7));
        assert!(!same_media("x", Some("zz"), "y", Some(&b), 256));
        assert!(!same_media("x", None, "y", Some(&b), 256));
    }

    #[test]
    fn a_missing_name_is_gone_a_failing_name_server_proves_nothing() {
        let resolution = |no_such_name| {
            failed(FetchError::Refused(GuardError::Resolution {
                host: "files.example".into(),
                message: "no records found".into(),
                no_such_name,
            }))
            .outcome
        };
        assert_eq!(resolution(true), CheckOutcome::Nxdomain);
        assert_eq!(resolution(false), CheckOutcome::Inconclusive);
    }

    #[test]
    fn hash_hex_rejects_garbage() {
        assert!(hash32_from_hex("").is_none());
        assert!(hash32_from_hex(&"g".repeat(64)).is_none());
        assert!(hash32_from_hex(&"é".repeat(32)).is_none());
        assert_eq!(hash32_from_hex(&"0f".repeat(32)), Some([15u8; 32]));
    }
}
