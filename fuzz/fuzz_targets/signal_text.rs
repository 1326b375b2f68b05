//! Any text as a signal type name and as a hash value of each type (as lists, the API and the
//! CLI give them): parsing must accept or refuse with a typed error, never panic. An accepted
//! value is its text (hex, either case) exactly, prints back as it in lower case and
//! round-trips through its bytes; a refusal says truly why (a wrong length only when the
//! length is wrong, an invalid digit where the first one is); `PdqHash` and `Signal` agree on
//! PDQ text; an accepted type name is one of the types and its own name reads back as it.
#![no_main]

use aranea_hash::{PdqHash, PdqHashParseError};
use aranea_index::signal::{Signal, SignalParseError, SignalType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(signal_type) = text.parse::<SignalType>() {
        assert_eq!(signal_type.name().parse::<SignalType>(), Ok(signal_type));
        assert_eq!(signal_type.to_string(), signal_type.name());
    }
    for signal_type in SignalType::ALL {
        check_value(signal_type, &text);
        let from_bytes = Signal::from_bytes(signal_type, data);
        assert_eq!(from_bytes.is_some(), data.len() == signal_type.byte_len());
        if let Some(signal) = from_bytes {
            assert_eq!(signal.as_bytes(), data);
            assert_eq!(Signal::from_hex(signal_type, &signal.to_hex()), Ok(signal));
        }
    }
    let pdq = PdqHash::from_hex(&text);
    match (&pdq, Signal::from_hex(SignalType::Pdq, &text)) {
        (Ok(hash), Ok(signal)) => {
            assert_eq!(signal, Signal::Pdq(*hash));
            assert_eq!(hash.to_hex(), text.to_ascii_lowercase());
            assert_eq!(PdqHash::from_words(hash.to_words()), *hash);
            assert_eq!(text.parse::<PdqHash>().as_ref(), Ok(hash));
        }
        (
            Err(PdqHashParseError::InvalidDigit {
                character,
                position,
            }),
            Err(SignalParseError::InvalidHex {
                character: c,
                position: p,
            }),
        ) => assert_eq!((character, position), (&c, &p)),
        (
            Err(PdqHashParseError::WrongLength(a)),
            Err(SignalParseError::WrongLength { actual, .. }),
        ) => {
            assert_eq!(*a, actual);
        }
        (pdq, signal) => panic!("PdqHash says {pdq:?}, Signal says {signal:?}"),
    }
    if let Err(PdqHashParseError::WrongLength(actual)) = pdq {
        assert_ne!(actual, 64, "a wrong length reported as the right one");
    }
});

fn check_value(signal_type: SignalType, text: &str) {
    let expected = 2 * signal_type.byte_len();
    match Signal::from_hex(signal_type, text) {
        Ok(signal) => {
            assert_eq!(signal.signal_type(), signal_type);
            assert_eq!(signal.to_hex(), text.to_ascii_lowercase());
            assert_eq!(
                signal.to_string(),
                format!("{signal_type}:{}", signal.to_hex())
            );
            assert_eq!(
                Signal::from_bytes(signal_type, signal.as_bytes()),
                Some(signal)
            );
        }
        Err(SignalParseError::WrongLength {
            signal_type: reported,
            expected: reported_expected,
            actual,
        }) => {
            assert_eq!((reported, reported_expected), (signal_type, expected));
            assert_eq!(actual, text.chars().count());
            assert_ne!(actual, expected, "a wrong length reported as the right one");
        }
        Err(SignalParseError::InvalidHex {
            character,
            position,
        }) => {
            assert_eq!(text.chars().count(), expected);
            assert!(text[..position].bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(text[position..].starts_with(character));
            assert!(!character.is_ascii_hexdigit());
        }
        Err(SignalParseError::UnknownType(_)) => panic!("a value is not a type name"),
    }
}
