//! The 256-bit PDQ hash value: parsing, printing and Hamming distance.
//!
//! Byte order is the canonical ThreatExchange hex order: the reference stores the hash as
//! sixteen 16-bit words and prints word 15 first, so byte 0 of [`PdqHash::as_bytes`] holds
//! the high byte of word 15. Keeping bytes in print order means hex, base64 (as the
//! Shield API sends PDQ hashes) and the index all share one layout without conversion.

use std::fmt;

/// A PDQ hash: 256 bits, in canonical (hex) byte order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PdqHash([u8; 32]);

/// Why a string is not a PDQ hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdqHashParseError {
    #[error("a PDQ hash is 64 hex digits, got {0} characters")]
    WrongLength(usize),
    #[error("invalid hex digit {character:?} at position {position}")]
    InvalidDigit { character: char, position: usize },
}

impl PdqHash {
    /// Number of bits in a PDQ hash.
    pub const BITS: u32 = 256;

    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The hash as four little-endian-independent 64-bit words (word 0 = hex digits 0..16),
    /// the form the index compares with `popcount`.
    pub fn to_words(&self) -> [u64; 4] {
        let mut words = [0u64; 4];
        for (word, chunk) in words.iter_mut().zip(self.0.chunks_exact(8)) {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(chunk);
            *word = u64::from_be_bytes(eight);
        }
        words
    }

    pub fn from_words(words: [u64; 4]) -> Self {
        let mut bytes = [0u8; 32];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        Self(bytes)
    }

    /// Parse 64 hex digits (either case). Surrounding whitespace is not accepted: callers
    /// that read files trim first, so that a stray character is reported, not ignored.
    pub fn from_hex(text: &str) -> Result<Self, PdqHashParseError> {
        let characters = text.chars().count();
        if characters != 64 {
            return Err(PdqHashParseError::WrongLength(characters));
        }
        // 64 characters in more than 64 bytes: the first wide one is found within the first
        // 64 bytes (all bytes before it are ASCII) and refused as a digit.
        let digits = text.as_bytes().get(..64).unwrap_or(text.as_bytes());
        let mut bytes = [0u8; 32];
        for (index, pair) in digits.chunks_exact(2).enumerate() {
            let high = hex_value(pair[0], index * 2, text)?;
            let low = hex_value(pair[1], index * 2 + 1, text)?;
            bytes[index] = (high << 4) | low;
        }
        Ok(Self(bytes))
    }

    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(DIGITS[usize::from(byte >> 4)] as char);
            out.push(DIGITS[usize::from(byte & 0x0f)] as char);
        }
        out
    }

    /// Number of differing bits.
    pub fn hamming_distance(&self, other: &PdqHash) -> u32 {
        self.to_words()
            .iter()
            .zip(other.to_words())
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    }

    /// Bit `index` in the reference's numbering (bit k of 16-bit word k/16).
    pub fn bit(&self, index: usize) -> bool {
        let word = index / 16;
        let bit_in_word = index % 16;
        // Word 15 is printed first, so word w occupies bytes 2*(15-w) (high) and 2*(15-w)+1.
        let byte = 2 * (15 - word) + usize::from(bit_in_word < 8);
        (self.0[byte] >> (bit_in_word % 8)) & 1 == 1
    }

    /// Set bit `index` in the reference's numbering.
    pub fn set_bit(&mut self, index: usize) {
        let word = index / 16;
        let bit_in_word = index % 16;
        let byte = 2 * (15 - word) + usize::from(bit_in_word < 8);
        self.0[byte] |= 1 << (bit_in_word % 8);
    }
}

fn hex_value(digit: u8, position: usize, text: &str) -> Result<u8, PdqHashParseError> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        b'A'..=b'F' => Ok(digit - b'A' + 10),
        _ => Err(PdqHashParseError::InvalidDigit {
            character: text[position..].chars().next().unwrap_or('?'),
            position,
        }),
    }
}

impl fmt::Display for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PdqHash({})", self.to_hex())
    }
}

impl std::str::FromStr for PdqHash {
    type Err = PdqHashParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

    #[test]
    fn hex_round_trips_in_either_case() {
        let hash = PdqHash::from_hex(SAMPLE).unwrap();
        assert_eq!(hash.to_hex(), SAMPLE);
        assert_eq!(PdqHash::from_hex(&SAMPLE.to_uppercase()).unwrap(), hash);
        assert_eq!(PdqHash::from_words(hash.to_words()), hash);
    }

    #[test]
    fn bad_hex_is_rejected_with_its_position() {
        assert_eq!(
            PdqHash::from_hex("abc"),
            Err(PdqHashParseError::WrongLength(3))
        );
        let mut bad = SAMPLE.to_string();
        bad.replace_range(10..11, "g");
        assert_eq!(
            PdqHash::from_hex(&bad),
            Err(PdqHashParseError::InvalidDigit {
                character: 'g',
                position: 10
            })
        );
        // A multi-byte character must not panic on slicing.
        let accented = format!("é{}", &SAMPLE[2..]);
        assert!(PdqHash::from_hex(&accented).is_err());
    }

    /// Found by the `signal_text` fuzz target: 64 characters that are more than 64 bytes were
    /// refused as "64 hex digits, got 64 characters".
    #[test]
    fn sixty_four_characters_with_a_wide_one_name_it() {
        let text = format!("{}\u{e9}{}", &SAMPLE[..5], &SAMPLE[6..]);
        assert_eq!(text.chars().count(), 64);
        assert_eq!(
            PdqHash::from_hex(&text),
            Err(PdqHashParseError::InvalidDigit {
                character: '\u{e9}',
                position: 5
            })
        );
    }

    #[test]
    fn distance_counts_differing_bits() {
        let a = PdqHash::from_hex(SAMPLE).unwrap();
        let mut b = a;
        assert_eq!(a.hamming_distance(&b), 0);
        b = PdqHash::from_bytes({
            let mut bytes = *a.as_bytes();
            bytes[0] ^= 0b1010_0000;
            bytes[31] ^= 0b1;
            bytes
        });
        assert_eq!(a.hamming_distance(&b), 3);
    }

    #[test]
    fn bit_numbering_follows_the_reference_word_order() {
        let mut hash = PdqHash::default();
        hash.set_bit(0);
        // Bit 0 is the lowest bit of word 0, which is printed last.
        assert!(hash.to_hex().ends_with("0001"));
        assert!(hash.bit(0));
        let mut high = PdqHash::default();
        high.set_bit(255);
        assert!(high.to_hex().starts_with("8000"));
    }
}
