//! The media vault: bytes of media waiting for review, sealed to the vault's public key
//! before they are stored, opened only in the review service's memory, and purged after a
//! decision or when retention ends.
//!
//! Sealing is age's construction without age's dependency tree: a fresh X25519 key per
//! media, the shared secret through HKDF-SHA-256 (salted with both public keys) into a
//! ChaCha20-Poly1305 key; the media's SHA-256 is the associated data, so ciphertext moved
//! to another row does not open. A fresh key per message makes a fixed nonce safe.
//! Writers (crawl workers) hold only the public key: they can store media but never read
//! the vault back.
//!
//! This module must never write plaintext anywhere: not to disk, not to temp files, not to logs.

use aranea_store::{Store, UnixMillis};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::error::ReviewError;

const MAGIC: &[u8; 4] = b"ARV1";
const INFO: &[u8] = b"aranea-vault-v1";
const HEADER: usize = MAGIC.len() + 32;
/// Largest media the vault takes (bytes); the crawler's own limits are lower.
pub const MAX_MEDIA_BYTES: usize = 512 * 1024 * 1024;

/// The key media is sealed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VaultPublicKey([u8; 32]);

/// The key that opens the vault.
pub struct VaultSecretKey(StaticSecret);

impl std::fmt::Debug for VaultSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultSecretKey(..)")
    }
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], ReviewError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| ReviewError::Vault("no system randomness"))?;
    Ok(bytes)
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.trim();
    if text.len() != N * 2 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

impl VaultPublicKey {
    pub fn from_hex(text: &str) -> Result<Self, ReviewError> {
        from_hex::<32>(text)
            .map(VaultPublicKey)
            .ok_or(ReviewError::Vault("public key must be 64 hex digits"))
    }

    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl VaultSecretKey {
    /// A new random key.
    pub fn generate() -> Result<Self, ReviewError> {
        Ok(VaultSecretKey(StaticSecret::from(random_bytes::<32>()?)))
    }

    pub fn from_hex(text: &str) -> Result<Self, ReviewError> {
        let bytes = Zeroizing::new(
            from_hex::<32>(text).ok_or(ReviewError::Vault("secret key must be 64 hex digits"))?,
        );
        Ok(VaultSecretKey(StaticSecret::from(*bytes)))
    }

    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(to_hex(self.0.as_bytes()))
    }

    pub fn public_key(&self) -> VaultPublicKey {
        VaultPublicKey(*PublicKey::from(&self.0).as_bytes())
    }
}

fn cipher(shared: &[u8; 32], ephemeral: &[u8; 32], recipient: &[u8; 32]) -> ChaCha20Poly1305 {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(recipient);
    let hk = Hkdf::<Sha256>::new(Some(&salt), shared);
    let mut key = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA-256's output limit: expand cannot fail.
    let _ = hk.expand(INFO, &mut key[..]);
    ChaCha20Poly1305::new(&Key::from(*key))
}

/// Seals media to the vault key, bound to its SHA-256.
pub fn seal(
    recipient: &VaultPublicKey,
    sha256: &[u8; 32],
    plaintext: &[u8],
) -> Result<Vec<u8>, ReviewError> {
    seal_bound(recipient, sha256, plaintext)
}

/// Opens sealed media; fails on a wrong key, a different SHA-256, or any altered byte.
pub fn open(
    key: &VaultSecretKey,
    sha256: &[u8; 32],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ReviewError> {
    open_bound(key, sha256, sealed)
}

/// What a thumbnail's ciphertext is bound to: its media, and being a thumbnail, so neither
/// another media's thumbnail nor the media's own bytes open in its place.
fn thumbnail_binding(sha256: &[u8; 32]) -> Vec<u8> {
    [&b"aranea-thumbnail-v1:"[..], &sha256[..]].concat()
}

/// Seals `plaintext` to the vault key, bound to the associated data `aad`.
fn seal_bound(
    recipient: &VaultPublicKey,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, ReviewError> {
    let ephemeral = StaticSecret::from(random_bytes::<32>()?);
    let ephemeral_public = *PublicKey::from(&ephemeral).as_bytes();
    let shared = ephemeral.diffie_hellman(&PublicKey::from(recipient.0));
    if !shared.was_contributory() {
        return Err(ReviewError::Vault("vault public key is a low-order point"));
    }
    let sealed = cipher(shared.as_bytes(), &ephemeral_public, &recipient.0)
        .encrypt(
            &Nonce::from([0u8; 12]),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| ReviewError::Vault("encryption failed"))?;
    let mut out = Vec::with_capacity(HEADER + sealed.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&ephemeral_public);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn open_bound(
    key: &VaultSecretKey,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ReviewError> {
    if sealed.len() < HEADER + 16 || !sealed.starts_with(MAGIC) {
        return Err(ReviewError::Vault("not vault ciphertext"));
    }
    let mut ephemeral = [0u8; 32];
    ephemeral.copy_from_slice(&sealed[MAGIC.len()..HEADER]);
    let shared = key.0.diffie_hellman(&PublicKey::from(ephemeral));
    if !shared.was_contributory() {
        return Err(ReviewError::Vault("ciphertext names a low-order point"));
    }
    let recipient = key.public_key();
    cipher(shared.as_bytes(), &ephemeral, &recipient.0)
        .decrypt(
            &Nonce::from([0u8; 12]),
            Payload {
                msg: &sealed[HEADER..],
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| ReviewError::Vault("ciphertext does not open with this key"))
}

/// The writer's side: what a crawl worker holds to keep media for review.
#[derive(Clone, Debug)]
pub struct MediaVault {
    store: Store,
    key: VaultPublicKey,
    retention_ms: i64,
}

impl MediaVault {
    pub fn new(store: Store, key: VaultPublicKey, retention_days: u32) -> Self {
        MediaVault {
            store,
            key,
            retention_ms: i64::from(retention_days) * 86_400_000,
        }
    }

    /// Seals and stores media entering the review queue; returns false if the vault held
    /// (or once held and purged) it already. The bytes must hash to `sha256`.
    pub async fn keep(
        &self,
        sha256: &[u8; 32],
        bytes: &[u8],
        now: UnixMillis,
    ) -> Result<bool, ReviewError> {
        if bytes.len() > MAX_MEDIA_BYTES {
            return Err(ReviewError::invalid(
                "media",
                "larger than the vault accepts",
            ));
        }
        if Sha256::digest(bytes).as_slice() != sha256 {
            return Err(ReviewError::invalid(
                "media",
                "bytes do not match their SHA-256",
            ));
        }
        let sealed = seal(&self.key, sha256, bytes)?;
        Ok(self
            .store
            .review_desk()
            .vault_put(
                sha256,
                &sealed,
                bytes.len() as u64,
                now,
                now.saturating_add(self.retention_ms),
            )
            .await?)
    }
}

impl MediaVault {
    /// [`MediaVault::keep`] for callers on a blocking thread inside a Tokio runtime (the
    /// crawler's media pipeline): blocks that thread, never the reactor.
    pub fn keep_blocking(&self, sha256: &[u8; 32], bytes: &[u8]) -> Result<bool, ReviewError> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| ReviewError::Task("keep_blocking needs a Tokio runtime".into()))?;
        handle.block_on(self.keep(sha256, bytes, crate::now_millis()))
    }
}

/// The reader's side, in the review service only.
pub struct VaultReader {
    store: Store,
    key: VaultSecretKey,
}

impl VaultReader {
    pub fn new(store: Store, key: VaultSecretKey) -> Self {
        VaultReader { store, key }
    }

    /// The media's bytes, in memory only; `None` when absent or purged.
    pub async fn open_media(
        &self,
        sha256: &[u8; 32],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, ReviewError> {
        match self.store.review_desk().vault_ciphertext(sha256).await? {
            Some(sealed) => open(&self.key, sha256, &sealed).map(Some),
            None => Ok(None),
        }
    }
}

impl VaultReader {
    /// The media's blurred grayscale thumbnail (PNG): the sealed one made before, else made
    /// now from the opened bytes (in memory) and sealed into the vault beside them, so the
    /// original is decoded once, not at every page load. `None` when the media is absent
    /// or purged (the thumbnail goes with the bytes).
    pub async fn thumbnail(&self, sha256: &[u8; 32]) -> Result<Option<Vec<u8>>, ReviewError> {
        let desk = self.store.review_desk();
        if let Some(sealed) = desk.vault_thumbnail(sha256).await? {
            let png = open_bound(&self.key, &thumbnail_binding(sha256), &sealed)?;
            return Ok(Some(png.to_vec()));
        }
        let Some(bytes) = self.open_media(sha256).await? else {
            return Ok(None);
        };
        let png = tokio::task::spawn_blocking(move || crate::thumbnail::blurred(&bytes))
            .await
            .map_err(|e| ReviewError::Task(e.to_string()))??;
        let sealed = seal_bound(&self.key.public_key(), &thumbnail_binding(sha256), &png)?;
        // Two first views racing both make one; the store keeps the first.
        desk.vault_put_thumbnail(sha256, &sealed).await?;
        Ok(Some(png))
    }
}

/// Purges media whose retention ended; returns how many were purged.
pub async fn purge_expired(store: &Store, now: UnixMillis) -> Result<usize, ReviewError> {
    let desk = store.review_desk();
    let mut purged = 0;
    loop {
        let batch = desk.vault_expired(now, 500).await?;
        if batch.is_empty() {
            return Ok(purged);
        }
        for sha in &batch {
            if desk.vault_purge(sha, "retention", now).await? {
                purged += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_media_opens_only_with_its_key_and_hash() {
        let key = VaultSecretKey::generate().unwrap();
        let sha = [7u8; 32];
        let sealed = seal(&key.public_key(), &sha, b"pixels").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"pixels"));
        assert_eq!(&open(&key, &sha, &sealed).unwrap()[..], b"pixels");
        assert!(open(&key, &[8u8; 32], &sealed).is_err());
        let other = VaultSecretKey::generate().unwrap();
        assert!(open(&other, &sha, &sealed).is_err());
        for i in [0, 5, HEADER, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[i] ^= 1;
            assert!(open(&key, &sha, &tampered).is_err(), "byte {i}");
        }
    }

    #[test]
    fn hostile_ciphertext_is_refused() {
        let key = VaultSecretKey::generate().unwrap();
        let sha = [1u8; 32];
        for bad in [&b""[..], b"ARV1", &[0u8; 100], &[b'A'; 10_000]] {
            assert!(open(&key, &sha, bad).is_err());
        }
        let mut zero_point = MAGIC.to_vec();
        zero_point.extend_from_slice(&[0u8; 64]);
        assert!(open(&key, &sha, &zero_point).is_err());
        assert!(seal(&VaultPublicKey([0u8; 32]), &sha, b"x").is_err());
    }

    #[test]
    fn keys_round_trip_through_hex() {
        let key = VaultSecretKey::generate().unwrap();
        let again = VaultSecretKey::from_hex(&key.to_hex()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let public = VaultPublicKey::from_hex(&key.public_key().to_hex()).unwrap();
        assert_eq!(public, key.public_key());
        assert!(VaultPublicKey::from_hex("zz").is_err());
        assert!(VaultSecretKey::from_hex(&"é".repeat(32)).is_err());
    }
}
