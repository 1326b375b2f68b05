//! Re-upload matching: is newly matched media the same as an item already removed? Exact
//! SHA-256 first, then PDQ within the configured distance through the index crate's exact
//! Hamming range index, so a batch of new sightings costs one probe each instead of a scan
//! over every removed item. Must not decide anything else: the engine opens the linked item.

use std::collections::HashMap;

use aranea_index::pdq_index::{Code, CodeHit, IndexParams, PdqIndex, SearchScratch};
use aranea_store::{ItemId, WatchedItem};

use crate::recheck::hash32_from_hex;

/// The removed items' media, indexed.
pub struct RemovedMedia {
    by_sha256: HashMap<String, i64>,
    pdq: Option<PdqIndex>,
    /// Item id of each PDQ code, by its position in the index.
    pdq_items: Vec<i64>,
}

fn code(pdq: &[u8; 32]) -> Code {
    let mut words = [0u64; 4];
    for (word, chunk) in words.iter_mut().zip(pdq.chunks_exact(8)) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        *word = u64::from_be_bytes(bytes);
    }
    words
}

impl RemovedMedia {
    /// Indexes `watched` (removed items); the first item wins when several share a SHA-256.
    /// PDQ strings that are not 64 hex digits are left out of the PDQ index.
    pub fn new(watched: &[WatchedItem]) -> RemovedMedia {
        let mut by_sha256 = HashMap::with_capacity(watched.len());
        let mut codes = Vec::new();
        let mut pdq_items = Vec::new();
        for item in watched {
            by_sha256
                .entry(item.sha256.to_ascii_lowercase())
                .or_insert(item.id);
            if let Some(pdq) = item.pdq.as_deref().and_then(hash32_from_hex) {
                codes.push(code(&pdq));
                pdq_items.push(item.id);
            }
        }
        // An index over more codes than it can hold is a scan's job; there is none here: the
        // limit (2^28) is far above any hotline's removed items, and past it PDQ matching of
        // re-uploads stops while SHA-256 matching goes on.
        let pdq = (!codes.is_empty())
            .then(|| PdqIndex::build(codes, IndexParams::default()).ok())
            .flatten();
        RemovedMedia {
            by_sha256,
            pdq,
            pdq_items,
        }
    }

    /// The removed item this media re-uploads: same SHA-256, else the nearest PDQ within
    /// `threshold` (lowest item id on ties).
    pub fn find(&self, sha256: &str, pdq: Option<&str>, threshold: u32) -> Option<ItemId> {
        if let Some(id) = self.by_sha256.get(&sha256.to_ascii_lowercase()) {
            return Some(ItemId(*id));
        }
        let index = self.pdq.as_ref()?;
        let query = code(&hash32_from_hex(pdq?)?);
        let mut hits: Vec<CodeHit> = Vec::new();
        index.search(&query, threshold, &mut SearchScratch::default(), &mut hits);
        hits.iter()
            .filter_map(|hit| {
                let item = self.pdq_items.get(usize::try_from(hit.id).ok()?)?;
                Some((hit.distance, *item))
            })
            .min()
            .map(|(_, item)| ItemId(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(id: i64, sha: &str, pdq: Option<String>) -> WatchedItem {
        WatchedItem {
            id,
            url: format!("http://x.example/{id}"),
            sha256: sha.to_owned(),
            pdq,
            next_check_at: None,
        }
    }

    /// A PDQ hex string with the first `flipped` bits of `base` inverted.
    fn near(base: &[u8; 32], flipped: usize) -> String {
        let mut bytes = *base;
        for bit in 0..flipped {
            bytes[bit / 8] ^= 0x80 >> (bit % 8);
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn finds_by_sha256_then_nearest_pdq_within_the_threshold_and_agrees_with_a_scan() {
        let base = [0x5au8; 32];
        let mut items = vec![
            watched(1, "AA", Some(near(&base, 0))),
            watched(2, "bb", Some(near(&base, 20))),
            watched(3, "cc", Some("not hex".to_owned())),
            watched(4, "dd", None),
        ];
        // Many unrelated removed items, so the index is not trivially small.
        for i in 0..2000u32 {
            let mut pdq = [0u8; 32];
            for (j, b) in pdq.iter_mut().enumerate() {
                *b = (i.wrapping_mul(2_654_435_761) >> (j % 24)) as u8 ^ (j as u8);
            }
            items.push(watched(
                100 + i64::from(i),
                &format!("s{i}"),
                Some(near(&pdq, 0)),
            ));
        }
        let removed = RemovedMedia::new(&items);
        assert_eq!(removed.find("aa", None, 31), Some(ItemId(1)));
        assert_eq!(removed.find("DD", None, 31), Some(ItemId(4)));
        assert_eq!(
            removed.find("zz", Some(&near(&base, 25)), 31),
            Some(ItemId(2))
        );
        assert_eq!(
            removed.find("zz", Some(&near(&base, 3)), 31),
            Some(ItemId(1))
        );
        assert_eq!(removed.find("zz", Some(&near(&base, 60)), 31), None);
        assert_eq!(removed.find("zz", Some("garbage"), 256), None);
        assert_eq!(removed.find("zz", None, 256), None);
        // The answer agrees with the scan the engine used before.
        for flipped in [0, 5, 10, 16, 31, 45, 64] {
            let query = near(&base, flipped);
            let scanned = items
                .iter()
                .filter(|w| {
                    crate::recheck::same_media(&w.sha256, w.pdq.as_deref(), "q", Some(&query), 31)
                })
                .count();
            assert_eq!(
                removed.find("q", Some(&query), 31).is_some(),
                scanned > 0,
                "{flipped} bits"
            );
        }
        assert!(
            RemovedMedia::new(&[])
                .find("aa", Some(&near(&base, 0)), 31)
                .is_none()
        );
    }
}
