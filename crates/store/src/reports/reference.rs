//! A report's public reference: what a public reporter is told instead of the report's
//! sequential id, which would tell anyone how many reports the hotline gets. 60 random bits
//! in Crockford's base32 (digits and capitals without I, L, O and U, so it reads aloud and
//! copies by hand without mix-ups), three groups of four: `7KQ3-M9XD-2FHA`.

use std::fmt;

use crate::error::StoreError;

/// Crockford's base32 alphabet.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Symbols in a reference, without its dashes.
const SYMBOLS: usize = 12;
/// Symbols between dashes.
const GROUP: usize = 4;

/// A report's public reference, in its canonical form (`XXXX-XXXX-XXXX`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReportReference(String);

impl ReportReference {
    /// A new random reference, from the system's randomness.
    pub(crate) fn random() -> Result<ReportReference, StoreError> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|_| StoreError::NoRandomness)?;
        let mut bits = u64::from_le_bytes(bytes);
        let mut symbols = [0u8; SYMBOLS];
        for symbol in &mut symbols {
            *symbol = ALPHABET[(bits & 31) as usize];
            bits >>= 5;
        }
        Ok(ReportReference::from_symbols(&symbols))
    }

    fn from_symbols(symbols: &[u8]) -> ReportReference {
        let mut text = String::with_capacity(SYMBOLS + SYMBOLS / GROUP);
        for (n, symbol) in symbols.iter().enumerate() {
            if n > 0 && n % GROUP == 0 {
                text.push('-');
            }
            text.push(char::from(*symbol));
        }
        ReportReference(text)
    }

    /// A reference as someone typed it: case, dashes and spaces do not matter, and the
    /// letters Crockford's base32 reads as digits (O as 0, I and L as 1) are taken as them.
    /// `None` when it cannot be a reference.
    pub fn parse(text: &str) -> Option<ReportReference> {
        let mut symbols = Vec::with_capacity(SYMBOLS);
        for c in text.chars() {
            let symbol = match c.to_ascii_uppercase() {
                '-' | ' ' => continue,
                'O' => b'0',
                'I' | 'L' => b'1',
                c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c as u8,
                _ => return None,
            };
            if symbols.len() == SYMBOLS {
                return None;
            }
            symbols.push(symbol);
        }
        (symbols.len() == SYMBOLS).then(|| ReportReference::from_symbols(&symbols))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As stored: only the store's own rows are read this way.
    pub(crate) fn from_stored(text: String) -> ReportReference {
        ReportReference(text)
    }
}

impl fmt::Display for ReportReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_random_and_of_the_documented_shape() {
        let a = ReportReference::random().unwrap();
        let b = ReportReference::random().unwrap();
        assert_ne!(a, b);
        for r in [&a, &b] {
            let text = r.as_str();
            assert_eq!(text.len(), 14, "{text}");
            assert_eq!((&text[4..5], &text[9..10]), ("-", "-"), "{text}");
            assert!(
                text.bytes().all(|c| c == b'-' || ALPHABET.contains(&c)),
                "{text}"
            );
            assert_eq!(ReportReference::parse(text).as_ref(), Some(r));
        }
    }

    #[test]
    fn a_typed_reference_is_read_leniently_but_nothing_else_is_one() {
        let canonical = ReportReference::parse("7KQ3-M9XD-2FHA").unwrap();
        assert_eq!(canonical.as_str(), "7KQ3-M9XD-2FHA");
        assert_eq!(ReportReference::parse(" 7kq3 m9xd 2fha "), Some(canonical));
        assert_eq!(
            ReportReference::parse("o1il-0000-0000").unwrap().as_str(),
            "0111-0000-0000"
        );
        for bad in [
            "",
            "42",
            "7KQ3-M9XD-2FH",
            "7KQ3-M9XD-2FHA0",
            "7KQ3-M9XD-2FHU",
            "7KQ3-M9XD-2FH\u{e9}",
        ] {
            assert_eq!(ReportReference::parse(bad), None, "{bad}");
        }
    }
}
