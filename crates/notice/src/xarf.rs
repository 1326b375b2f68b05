//! XARF v4 reports (`content` / `csam`): one per URL, as the schema wants one `url` per
//! report. They carry URLs, hashes and ids — never media, never thumbnails.
//!
//! The report id is a UUID v4 in form, derived from the notice's idempotency key and the
//! item, so composing the same notice twice yields the same reports.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::clock::{UnixMillis, rfc3339};
use crate::config::HotlineConfig;

/// The XARF schema version written.
pub const XARF_VERSION: &str = "4.2.0";

/// What one report says about one URL.
#[derive(Debug, Clone)]
pub struct ReportItem<'a> {
    pub url: &'a str,
    pub host: &'a str,
    pub ip: Option<String>,
    pub sha256: &'a str,
    pub md5: &'a str,
    pub sha1: &'a str,
    pub media_kind: &'a str,
    pub classification: &'a str,
    pub first_seen_at: UnixMillis,
    pub provider: &'a str,
    pub asn: Option<i64>,
    pub country: Option<&'a str>,
}

/// A UUID v4-shaped id from `seed` (deterministic).
pub fn uuid_from(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    let mut b = [0u8; 16];
    for (dst, src) in b.iter_mut().zip(digest.iter()) {
        *dst = *src;
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// XARF's classification enum; bank classifications outside it are reported as `baseline`
/// (the bank's own label goes in `description`).
fn classification(label: &str) -> &'static str {
    match label {
        "A1" | "a1" => "A1",
        "A2" | "a2" => "A2",
        "B1" | "b1" => "B1",
        "B2" | "b2" => "B2",
        _ => "baseline",
    }
}

fn media_type(kind: &str) -> &'static str {
    match kind {
        "mp4" | "webm" | "mov" | "avi" | "mkv" | "video" => "video",
        _ => "image",
    }
}

/// A lowercase DNS name XARF's `domain` pattern accepts, if the host is one.
fn xarf_domain(host: &str) -> Option<String> {
    let host = host.to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    let ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_lowercase()));
    ok.then_some(host)
}

/// One report.
pub fn report(
    report_id: &str,
    now: UnixMillis,
    hotline: &HotlineConfig,
    item: &ReportItem<'_>,
    test: bool,
) -> Value {
    let contact = json!({"org": hotline.name, "contact": hotline.email, "domain": hotline.domain});
    let mut report = json!({
        "xarf_version": XARF_VERSION,
        "report_id": report_id,
        "timestamp": rfc3339(item.first_seen_at),
        "reporter": contact,
        "sender": contact,
        "source_identifier": item.ip.clone().unwrap_or_else(|| item.host.to_owned()),
        "category": "content",
        "type": "csam",
        "url": item.url,
        "classification": classification(item.classification),
        "detection_method": "hash_match",
        "media_type": media_type(item.media_kind),
        "hash_values": {"md5": item.md5, "sha1": item.sha1, "sha256": item.sha256},
        "evidence_source": "crawler",
        "verification_method": "automated_crawler",
        "verified_at": rfc3339(now),
        "content_removed": false,
        "confidence": 1.0,
        "description": format!("Known material (bank classification: {}) matched by hash.",
            if item.classification.is_empty() { "unspecified" } else { item.classification }),
        "hosting_provider": item.provider,
        "legal_basis": hotline.legal_basis,
        "first_seen": rfc3339(item.first_seen_at),
        "test": test,
    });
    if let Some(map) = report.as_object_mut() {
        if let Some(domain) = xarf_domain(item.host) {
            map.insert("domain".to_owned(), json!(domain));
        }
        if let Some(asn) = item.asn.filter(|a| *a >= 1) {
            map.insert("asn".to_owned(), json!(asn));
        }
        if let Some(country) = item.country.filter(|c| c.len() == 2) {
            map.insert(
                "country_code".to_owned(),
                json!(country.to_ascii_uppercase()),
            );
        }
        if test {
            map.insert("tags".to_owned(), json!(["drill:test"]));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_v4_shaped_and_stable() {
        let a = uuid_from("k");
        assert_eq!(a, uuid_from("k"));
        assert_ne!(a, uuid_from("j"));
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert!(matches!(a.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
    }

    #[test]
    fn domain_only_when_xarf_accepts_it() {
        assert_eq!(
            xarf_domain("Sunny-Gallery.sim").as_deref(),
            Some("sunny-gallery.sim")
        );
        assert_eq!(xarf_domain("127.0.0.1"), None);
        assert_eq!(xarf_domain("localhost"), None);
        assert_eq!(xarf_domain("a_b.example"), None);
    }
}
