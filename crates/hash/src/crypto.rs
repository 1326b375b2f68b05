//! MD5, SHA-1 and SHA-256 of the exact bytes, computed together in one pass.
//!
//! Each chunk is fed to all three digests while it is still in cache, so hashing a large body
//! reads it once; [`CryptoHasher`] lets a streaming fetcher do the same without buffering.

use md5::Digest as _;

/// The three cryptographic digests hotlines exchange (MD5 and SHA-1 for legacy hash lists,
/// SHA-256 for new ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CryptoHashes {
    pub md5: [u8; 16],
    pub sha1: [u8; 20],
    pub sha256: [u8; 32],
}

impl CryptoHashes {
    pub fn md5_hex(&self) -> String {
        to_hex(&self.md5)
    }
    pub fn sha1_hex(&self) -> String {
        to_hex(&self.sha1)
    }
    /// SHA-1 in RFC 4648 base32 (uppercase, no padding: 160 bits are exactly 32 characters), the
    /// form the Arachnid Shield API uses for `sha1_base32`.
    pub fn sha1_base32(&self) -> String {
        base32(&self.sha1)
    }
    pub fn sha256_hex(&self) -> String {
        to_hex(&self.sha256)
    }
}

/// Incremental form of [`crypto_hashes`]: `update` with each chunk as it arrives, then `finish`.
#[derive(Clone, Default)]
pub struct CryptoHasher {
    md5: md5::Md5,
    sha1: sha1::Sha1,
    sha256: sha2::Sha256,
}

impl CryptoHasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.md5.update(chunk);
        self.sha1.update(chunk);
        self.sha256.update(chunk);
    }

    pub fn finish(self) -> CryptoHashes {
        CryptoHashes {
            md5: self.md5.finalize().into(),
            sha1: self.sha1.finalize().into(),
            sha256: self.sha256.finalize().into(),
        }
    }
}

/// Chunk size for the one-pass loop: small enough to stay in L1/L2 between the three digests.
const CHUNK: usize = 16 * 1024;

/// MD5, SHA-1 and SHA-256 of `bytes`, reading each chunk once for all three.
pub fn crypto_hashes(bytes: &[u8]) -> CryptoHashes {
    let mut hasher = CryptoHasher::new();
    for chunk in bytes.chunks(CHUNK) {
        hasher.update(chunk);
    }
    hasher.finish()
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// RFC 4648 base32, uppercase, without padding: Shield's `sha1_base32`, and how
/// authenticator apps take a TOTP secret.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_published_values() {
        // "abc" vectors from RFC 1321, FIPS 180-1 and FIPS 180-2.
        let abc = crypto_hashes(b"abc");
        assert_eq!(abc.md5_hex(), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(abc.sha1_hex(), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            abc.sha256_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let empty = crypto_hashes(b"");
        assert_eq!(empty.md5_hex(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(empty.sha1_hex(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }

    #[test]
    fn chunked_pass_equals_single_update_across_chunk_boundaries() {
        let data: Vec<u8> = (0..(3 * CHUNK + 17))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let mut whole = CryptoHasher::new();
        whole.update(&data);
        assert_eq!(crypto_hashes(&data), whole.finish());
        // One million 'a' (FIPS 180 long-message vector), crossing many chunk boundaries.
        let million = vec![b'a'; 1_000_000];
        assert_eq!(
            crypto_hashes(&million).sha1_hex(),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    #[test]
    fn sha1_base32_uses_the_rfc4648_alphabet() {
        // SHA-1("abc") = a9993e36...; its base32 as produced by Python's base64.b32encode.
        assert_eq!(
            crypto_hashes(b"abc").sha1_base32(),
            "VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5"
        );
        // RFC 4648 section 10 test vectors exercise the partial final group.
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"fooba"), "MZXW6YTB");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }
}
