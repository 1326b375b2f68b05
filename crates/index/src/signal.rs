//! Signal types and values: what a bank entry holds and what a query asks about.
//!
//! A signal is a (type, value) pair. Cryptographic digests match only exactly; PDQ matches
//! within a Hamming distance. Videos add two types: `video_md5` (the MD5 of a video file, kept
//! apart from image MD5s so lists say what they hold) and `vpdq`, whose value is the SHA-256
//! of the video's vPDQ in the reference text format (an identity for deduplication and exact
//! lookup); the frames themselves travel in the entry's metadata and are matched by
//! [`crate::video::VideoIndex`]. Adding a type means a parse arm, a byte length and a match rule.

use std::fmt;
use std::str::FromStr;

use aranea_hash::PdqHash;
use serde::{Deserialize, Serialize};

/// The kind of hash an entry or query carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SignalType {
    Pdq,
    Md5,
    Sha1,
    Sha256,
    #[serde(rename = "video_md5")]
    VideoMd5,
    Vpdq,
}

impl SignalType {
    pub const ALL: [SignalType; 6] = [
        Self::Pdq,
        Self::Md5,
        Self::Sha1,
        Self::Sha256,
        Self::VideoMd5,
        Self::Vpdq,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Pdq => "pdq",
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::VideoMd5 => "video_md5",
            Self::Vpdq => "vpdq",
        }
    }

    /// Length of the value in bytes.
    pub fn byte_len(self) -> usize {
        match self {
            Self::Pdq | Self::Sha256 | Self::Vpdq => 32,
            Self::Md5 | Self::VideoMd5 => 16,
            Self::Sha1 => 20,
        }
    }

    /// A stable one-byte code for the snapshot format.
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Pdq => 1,
            Self::Md5 => 2,
            Self::Sha1 => 3,
            Self::Sha256 => 4,
            Self::VideoMd5 => 5,
            Self::Vpdq => 6,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }
}

impl fmt::Display for SignalType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a string is not a signal type or a signal value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalParseError {
    #[error("unknown signal type {0:?} (expected pdq, md5, sha1, sha256, video_md5 or vpdq)")]
    UnknownType(String),
    #[error("a {signal_type} value is {expected} hex digits, got {actual}")]
    WrongLength {
        signal_type: SignalType,
        expected: usize,
        actual: usize,
    },
    #[error("invalid hex digit {character:?} at position {position}")]
    InvalidHex { character: char, position: usize },
}

impl FromStr for SignalType {
    type Err = SignalParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.trim().to_ascii_lowercase();
        // HMA and ThreatExchange spell the same types with prefixes and dashes.
        let name = lower
            .strip_prefix("hash_")
            .unwrap_or(&lower)
            .replace(['-', '_'], "");
        match name.as_str() {
            "pdq" => Ok(Self::Pdq),
            "md5" => Ok(Self::Md5),
            "sha1" => Ok(Self::Sha1),
            "sha256" => Ok(Self::Sha256),
            "videomd5" => Ok(Self::VideoMd5),
            "vpdq" => Ok(Self::Vpdq),
            _ => Err(SignalParseError::UnknownType(text.to_string())),
        }
    }
}

/// A signal value: its type and its bytes (PDQ in canonical hex byte order).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    Pdq(PdqHash),
    Md5([u8; 16]),
    Sha1([u8; 20]),
    Sha256([u8; 32]),
    VideoMd5([u8; 16]),
    /// SHA-256 of the vPDQ reference text; see the module docs.
    Vpdq([u8; 32]),
}

impl Signal {
    pub fn signal_type(&self) -> SignalType {
        match self {
            Self::Pdq(_) => SignalType::Pdq,
            Self::Md5(_) => SignalType::Md5,
            Self::Sha1(_) => SignalType::Sha1,
            Self::Sha256(_) => SignalType::Sha256,
            Self::VideoMd5(_) => SignalType::VideoMd5,
            Self::Vpdq(_) => SignalType::Vpdq,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Pdq(hash) => hash.as_bytes(),
            Self::Md5(bytes) => bytes,
            Self::Sha1(bytes) => bytes,
            Self::Sha256(bytes) => bytes,
            Self::VideoMd5(bytes) => bytes,
            Self::Vpdq(bytes) => bytes,
        }
    }

    /// Parse a hex value of the given type. Whitespace is not trimmed: readers trim, so that
    /// a stray character inside a value is reported rather than silently dropped.
    pub fn from_hex(signal_type: SignalType, text: &str) -> Result<Self, SignalParseError> {
        let expected = signal_type.byte_len() * 2;
        let actual = text.chars().count();
        // The right count of characters but not of bytes: one is not a hex digit, and
        // `decode_hex` names the first (every byte before it is ASCII, so it is within reach).
        if actual != expected {
            return Err(SignalParseError::WrongLength {
                signal_type,
                expected,
                actual,
            });
        }
        let mut bytes = [0u8; 32];
        decode_hex(text, &mut bytes[..signal_type.byte_len()])?;
        Ok(Self::from_slice(
            signal_type,
            &bytes[..signal_type.byte_len()],
        ))
    }

    /// Build from raw bytes; `None` if the length is wrong for the type.
    pub fn from_bytes(signal_type: SignalType, bytes: &[u8]) -> Option<Self> {
        (bytes.len() == signal_type.byte_len()).then(|| Self::from_slice(signal_type, bytes))
    }

    fn from_slice(signal_type: SignalType, bytes: &[u8]) -> Self {
        fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
            let mut out = [0u8; N];
            out.copy_from_slice(&bytes[..N]);
            out
        }
        match signal_type {
            SignalType::Pdq => Self::Pdq(PdqHash::from_bytes(array(bytes))),
            SignalType::Md5 => Self::Md5(array(bytes)),
            SignalType::Sha1 => Self::Sha1(array(bytes)),
            SignalType::Sha256 => Self::Sha256(array(bytes)),
            SignalType::VideoMd5 => Self::VideoMd5(array(bytes)),
            SignalType::Vpdq => Self::Vpdq(array(bytes)),
        }
    }

    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(self.as_bytes().len() * 2);
        for &byte in self.as_bytes() {
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        out
    }
}

fn decode_hex(text: &str, out: &mut [u8]) -> Result<(), SignalParseError> {
    let digit = |position: usize| -> Result<u8, SignalParseError> {
        let byte = text.as_bytes().get(position).copied().unwrap_or(b'?');
        match byte {
            b'0'..=b'9' => Ok(byte - b'0'),
            b'a'..=b'f' => Ok(byte - b'a' + 10),
            b'A'..=b'F' => Ok(byte - b'A' + 10),
            _ => Err(SignalParseError::InvalidHex {
                character: text
                    .get(position..)
                    .and_then(|s| s.chars().next())
                    .unwrap_or('?'),
                position,
            }),
        }
    };
    for (index, slot) in out.iter_mut().enumerate() {
        *slot = (digit(2 * index)? << 4) | digit(2 * index + 1)?;
    }
    Ok(())
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.signal_type(), self.to_hex())
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_hex() {
        for signal_type in SignalType::ALL {
            let hex: String = "a1".repeat(signal_type.byte_len());
            let signal = Signal::from_hex(signal_type, &hex).unwrap();
            assert_eq!(signal.signal_type(), signal_type);
            assert_eq!(signal.to_hex(), hex);
            assert_eq!(
                signal_type.to_string().parse::<SignalType>().unwrap(),
                signal_type
            );
            assert_eq!(SignalType::from_code(signal_type.code()), Some(signal_type));
        }
    }

    #[test]
    fn hostile_values_are_rejected_with_a_reason() {
        assert!(matches!(
            Signal::from_hex(SignalType::Md5, "abc"),
            Err(SignalParseError::WrongLength {
                expected: 32,
                actual: 3,
                ..
            })
        ));
        // A PDQ-length value is not an MD5, and an MD5 is not a PDQ.
        assert!(Signal::from_hex(SignalType::Md5, &"0".repeat(64)).is_err());
        assert!(Signal::from_hex(SignalType::Pdq, &"0".repeat(32)).is_err());
        let bad = format!("{}zz", "0".repeat(30));
        assert_eq!(
            Signal::from_hex(SignalType::Md5, &bad),
            Err(SignalParseError::InvalidHex {
                character: 'z',
                position: 30
            })
        );
        // Multi-byte characters of the right byte length must not panic.
        let unicode = format!("{}é", "0".repeat(30));
        assert!(Signal::from_hex(SignalType::Md5, &unicode).is_err());
        assert!("tmk".parse::<SignalType>().is_err());
        assert_eq!(
            "video-md5".parse::<SignalType>().unwrap(),
            SignalType::VideoMd5
        );
        assert_eq!("VPDQ".parse::<SignalType>().unwrap(), SignalType::Vpdq);
        assert_eq!("HASH_PDQ".parse::<SignalType>().unwrap(), SignalType::Pdq);
        assert_eq!("sha-256".parse::<SignalType>().unwrap(), SignalType::Sha256);
    }

    /// Found by the `signal_text` fuzz target: a value of the right length in characters but
    /// not in bytes was refused as "32 hex digits, got 32".
    #[test]
    fn a_value_of_the_right_length_in_characters_names_its_first_bad_one() {
        let text = "\u{fffd}\u{fffd}\u{3bb}9CD8E900B204980E0998ECF842-7E";
        assert_eq!(text.chars().count(), 32);
        assert_eq!(
            Signal::from_hex(SignalType::Md5, text),
            Err(SignalParseError::InvalidHex {
                character: '\u{fffd}',
                position: 0
            })
        );
        let pdq = format!("{}\u{e9}", "0".repeat(63));
        assert_eq!(
            Signal::from_hex(SignalType::Pdq, &pdq),
            Err(SignalParseError::InvalidHex {
                character: '\u{e9}',
                position: 63
            })
        );
    }
}
