//! Any text as vPDQ reference-format frames (`frame,quality,hash,timestamp` lines), as import
//! metadata and `aranea bank add-video` files carry them: parsing must give frames or an error
//! naming a line, never panic. Frames read must satisfy their documented ranges (quality 0-100,
//! a finite non-negative timestamp), be the file's non-blank lines one for one (each the same
//! as `parse_vpdq_line` reads it), and round-trip through `write_vpdq_text` (timestamps to the
//! three decimals it writes, after which the text is a fixed point). An error's line is the
//! first line that does not parse.
#![no_main]

use aranea_hash::{HashError, VpdqFeature, parse_vpdq_line, parse_vpdq_text, write_vpdq_text};
use libfuzzer_sys::fuzz_target;

/// Below this many seconds (some 30 years) an f64 holds every millisecond exactly enough for
/// the written text to read back to itself at once; above it a second round settles it.
const EXACT_SECONDS: f64 = 1e9;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.lines().collect();
    match parse_vpdq_text(&text) {
        Ok(features) => {
            let non_blank: Vec<&str> = lines
                .iter()
                .map(|line| line.trim())
                .filter(|line| !line.is_empty())
                .collect();
            assert_eq!(features.len(), non_blank.len());
            for (feature, line) in features.iter().zip(&non_blank) {
                assert!(feature.quality <= 100);
                assert!(feature.timestamp.is_finite() && feature.timestamp >= 0.0);
                assert_eq!(parse_vpdq_line(line).as_ref(), Ok(feature));
            }
            round_trip(&features);
        }
        Err(HashError::VpdqFormat { line, message }) => {
            assert!(!message.is_empty());
            let line = usize::try_from(line).unwrap();
            assert!(line >= 1 && line <= lines.len(), "line {line}");
            assert!(parse_vpdq_line(lines[line - 1]).is_err());
            for earlier in &lines[..line - 1] {
                assert!(earlier.trim().is_empty() || parse_vpdq_line(earlier).is_ok());
            }
        }
        Err(other) => panic!("not a VpdqFormat error: {other}"),
    }
});

fn round_trip(features: &[VpdqFeature]) {
    let written = write_vpdq_text(features);
    let again = parse_vpdq_text(&written).expect("written frames read back");
    assert_eq!(again.len(), features.len());
    for (before, after) in features.iter().zip(&again) {
        assert_eq!(
            (before.frame, before.quality, before.hash),
            (after.frame, after.quality, after.hash)
        );
        let tolerance = 0.0005 + before.timestamp * 4.0 * f64::EPSILON;
        assert!(
            (before.timestamp - after.timestamp).abs() <= tolerance,
            "{} written as {}",
            before.timestamp,
            after.timestamp
        );
    }
    let rewritten = write_vpdq_text(&again);
    if features.iter().all(|f| f.timestamp < EXACT_SECONDS) {
        assert_eq!(rewritten, written);
    } else {
        let settled = parse_vpdq_text(&rewritten).expect("rewritten frames read back");
        assert_eq!(write_vpdq_text(&settled), rewritten);
    }
}
