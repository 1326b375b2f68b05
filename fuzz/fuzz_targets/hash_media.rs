//! Any bytes into the decoder+hasher entry point: it must return (a hash or a typed error),
//! never panic, and stay within small limits so the fuzzer also finds resource blow-ups.
#![no_main]

use aranea_hash::{Limits, hash_media};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_bytes: 1 << 20,
        max_pixels: 4_000_000,
    };
    if let Ok(hashes) = hash_media(data, &limits) {
        if let Some(pdq) = &hashes.pdq {
            assert!(pdq.quality <= 100);
            let variants = pdq.dihedral();
            assert_eq!(variants[0], pdq.hash);
        }
        assert!(u64::from(hashes.width) * u64::from(hashes.height) <= limits.max_pixels);
    }
});
