//! PDQ against the reference: Meta's published test vectors (including the eight rotation/flip
//! hashes) and the 400-photo corpus the reference hashed from Pillow-decoded pixels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aranea_hash::{Dihedral, Limits, MediaKind, PdqHash, hash_media};

fn shared(relative: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")).join(relative)
}

/// Rows of a TSV file with a header line, as maps from column name to value.
fn read_tsv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split('\t')
        .map(str::to_string)
        .collect();
    lines
        .map(|line| {
            header
                .iter()
                .cloned()
                .zip(line.split('\t').map(str::to_string))
                .collect()
        })
        .collect()
}

fn hash_file(path: &Path) -> aranea_hash::MediaHashes {
    let bytes = std::fs::read(path).unwrap();
    hash_media(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn published_vectors_reproduce_bit_for_bit() {
    let dir = shared("vectors/pdq");
    let rows = read_tsv(&dir.join("EXPECTED.tsv"));
    assert!(rows.len() >= 13, "EXPECTED.tsv has {} rows", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        let result = hash_file(&dir.join(&row["file"]));
        let pdq = result.pdq.unwrap();
        let expected = PdqHash::from_hex(&row["pdq"]).unwrap();
        let distance = pdq.hash.hamming_distance(&expected);
        let quality: u8 = row["quality"].parse().unwrap();
        println!(
            "{:28} distance {distance:3} quality {} (expected {quality})",
            row["file"], pdq.quality
        );
        if distance != 0 || pdq.quality != quality {
            failures.push(format!(
                "{}: distance {distance}, quality {} vs {quality}",
                row["file"], pdq.quality
            ));
        }
    }
    assert!(failures.is_empty(), "vectors not reproduced: {failures:#?}");
}

fn check_dihedral(file: &str, table: &str, column: &str) {
    let dir = shared("vectors/pdq");
    let pdq = hash_file(&dir.join(file)).pdq.unwrap();
    let rows = read_tsv(&dir.join(table));
    let names = [
        "ORIGINAL",
        "ROTATE90",
        "ROTATE180",
        "ROTATE270",
        "FLIPX",
        "FLIPY",
        "FLIPPLUS1",
        "FLIPMINUS1",
    ];
    let ours = pdq.dihedral();
    assert_eq!(ours[0], pdq.hash, "the plain hash comes first");
    for ((name, transform), hash) in names.iter().zip(Dihedral::ALL).zip(ours) {
        let row = rows.iter().find(|row| row["variant"] == *name).unwrap();
        assert_eq!(hash.to_hex(), row[column], "{file} {name}");
        assert_eq!(pdq.transformed(transform), hash);
    }
}

#[test]
fn dihedral_variants_of_la_png_match_the_reference_dct_derivation() {
    check_dihedral("LA.png", "LA-dihedral.tsv", "from_dct_coefficients");
}

#[test]
fn dihedral_variants_of_the_bridge_photo_match_the_reference_dct_derivation() {
    check_dihedral(
        "bridge-1-original.jpg",
        "bridge-dihedral.tsv",
        "from_dct_coefficients_of_bridge-1-original.jpg",
    );
}

#[test]
fn dihedral_variants_are_close_to_hashes_of_actually_rotated_photos() {
    let dir = shared("vectors/pdq");
    // The bridge files are the photo actually rotated and flipped, then JPEG-encoded again.
    let original = hash_file(&dir.join("bridge-1-original.jpg"))
        .pdq
        .unwrap()
        .dihedral();
    let files = [
        "bridge-1-original.jpg",
        "bridge-2-rotate-90.jpg",
        "bridge-3-rotate-180.jpg",
        "bridge-4-rotate-270.jpg",
        "bridge-5-flipx.jpg",
        "bridge-6-flipy.jpg",
        "bridge-7-flip-plus-1.jpg",
        "bridge-8-flip-minus-1.jpg",
    ];
    for (file, derived) in files.iter().zip(original) {
        let actual = hash_file(&dir.join(file)).pdq.unwrap().hash;
        // Derived and re-hashed variants differ a little (the box filters are not symmetric,
        // and each file was JPEG-encoded again), far inside the usual match threshold of 31.
        assert!(
            derived.hamming_distance(&actual) <= 31,
            "{file}: {}",
            derived.hamming_distance(&actual)
        );
    }
}

#[test]
fn corpus_matches_the_reference_hashes() {
    let corpus = shared("corpus");
    let rows = read_tsv(&corpus.join("MANIFEST.tsv"));
    assert_eq!(rows.len(), 400);
    let mut histogram: BTreeMap<MediaKind, BTreeMap<u32, usize>> = BTreeMap::new();
    let mut failures = Vec::new();
    let (mut lossy, mut lossy_exact) = (0usize, 0usize);
    for row in &rows {
        let path = corpus.join(&row["file"]);
        let result = hash_file(&path);
        assert_eq!(result.sha256_hex(), row["sha256"], "{}", row["file"]);
        assert_eq!(result.width.to_string(), row["width"], "{}", row["file"]);
        assert_eq!(result.height.to_string(), row["height"], "{}", row["file"]);
        let pdq = result.pdq.unwrap();
        let expected = PdqHash::from_hex(&row["pdq_hex"]).unwrap();
        let expected_quality: i32 = row["pdq_quality"].parse().unwrap();
        let distance = pdq.hash.hamming_distance(&expected);
        *histogram
            .entry(result.kind)
            .or_default()
            .entry(distance)
            .or_default() += 1;
        let quality_gap = (i32::from(pdq.quality) - expected_quality).abs();
        match result.kind {
            MediaKind::Png | MediaKind::Gif | MediaKind::Bmp => {
                if distance != 0 || quality_gap != 0 {
                    failures.push(format!(
                        "{}: lossless, distance {distance}, quality {} vs {expected_quality}",
                        row["file"], pdq.quality
                    ));
                }
            }
            _ => {
                lossy += 1;
                lossy_exact += usize::from(distance == 0);
                // A different decoder moves pixels by a level or two; quality may shift by a
                // point where the gradient sum sits at a multiple of 90.
                if distance > 10 || quality_gap > 2 {
                    failures.push(format!(
                        "{}: distance {distance}, quality {} vs {expected_quality}",
                        row["file"], pdq.quality
                    ));
                }
            }
        }
    }
    for (kind, counts) in &histogram {
        let total: usize = counts.values().sum();
        println!("{kind}: {total} files, Hamming distance to the reference -> count: {counts:?}");
    }
    let share = lossy_exact as f64 / lossy as f64;
    println!(
        "JPEG/WebP bit-exact: {lossy_exact}/{lossy} ({:.1}%)",
        share * 100.0
    );
    assert!(
        failures.is_empty(),
        "{} files off: {failures:#?}",
        failures.len()
    );
    assert!(
        share >= 0.90,
        "only {:.1}% of JPEG/WebP files are bit-exact",
        share * 100.0
    );
}

#[test]
fn hashing_decoded_rgb_gives_the_same_hashes_as_hashing_the_file() {
    let corpus = shared("corpus");
    let rows = read_tsv(&corpus.join("MANIFEST.tsv"));
    let limits = Limits::default();
    let mut checked = 0;
    for row in rows
        .iter()
        .filter(|row| row["file"].ends_with(".png") || row["file"].ends_with(".gif"))
    {
        let bytes = std::fs::read(corpus.join(&row["file"])).unwrap();
        let (rgb, width, height) = aranea_hash::decode_rgb8(&bytes, &limits).unwrap();
        let pdq = aranea_hash::pdq_from_rgb8(&rgb, width, height).unwrap();
        assert_eq!(pdq.hash.to_hex(), row["pdq_hex"], "{}", row["file"]);
        assert_eq!(
            pdq.quality.to_string(),
            row["pdq_quality"],
            "{}",
            row["file"]
        );
        checked += 1;
    }
    assert_eq!(checked, 50);
}
