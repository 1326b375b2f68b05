//! The seam between the crawler and the review room: media entering the review queue is
//! sealed into the vault with the public key from `[review] vault_public_key`. Without a
//! key the bytes are dropped (the review entry stays; analysts then see "purged").

use std::sync::Arc;

use aranea_crawl::{DiscardMedia, ReviewMediaSink};
use aranea_review::{MediaVault, Review, ReviewConfig};

/// Seals media for review; the crawler calls it from its blocking pool.
struct VaultSink(MediaVault);

impl ReviewMediaSink for VaultSink {
    fn keep(&self, sha256: &[u8; 32], bytes: &[u8]) -> Result<(), String> {
        self.0
            .keep_blocking(sha256, bytes)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The sink `aranea crawl` and `aranea demo` hand to the crawler.
pub fn review_sink(
    store: &aranea_store::Store,
    config: &ReviewConfig,
) -> anyhow::Result<Arc<dyn ReviewMediaSink>> {
    Ok(match Review::media_vault(store.clone(), config)? {
        Some(vault) => Arc::new(VaultSink(vault)),
        None => Arc::new(DiscardMedia),
    })
}
