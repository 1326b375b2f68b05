//! Hostile and unusual input: a folder of generated files, each of which must give a typed
//! error or a correct hash, never a panic, and never allocate for pixels it was not allowed.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use aranea_hash::{HashError, Limits, MediaHashes, MediaKind, PdqHash, hash_media};
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb};

fn shared(relative: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")).join(relative)
}

fn corpus_file(kind: &str) -> Vec<u8> {
    let manifest = std::fs::read_to_string(shared("corpus/MANIFEST.tsv")).unwrap();
    let name = manifest
        .lines()
        .skip(1)
        .map(|line| line.split('\t').next().unwrap())
        .find(|name| name.ends_with(kind))
        .unwrap_or_else(|| panic!("no .{kind} in the corpus"));
    std::fs::read(shared("corpus").join(name)).unwrap()
}

/// A folder of its own under cargo's per-test temporary directory.
fn hostile_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("hostile")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Write `bytes` into the folder and hash the file back from disk, as `aranea hash` would.
fn hash_written(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    limits: &Limits,
) -> Result<MediaHashes, HashError> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    hash_media(&std::fs::read(&path).unwrap(), limits)
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A PNG chunk with its CRC.
fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    chunk.extend_from_slice(&crc.finalize().to_be_bytes());
    chunk
}

/// An 8-bit greyscale PNG declaring `width`×`height`, whose IDAT holds `rows` rows of zeroes.
fn grey_png(width: u32, height: u32, rows: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    png.extend(png_chunk(b"IHDR", &ihdr));
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let row = vec![0u8; width as usize + 1];
    for _ in 0..rows {
        zlib.write_all(&row).unwrap();
    }
    png.extend(png_chunk(b"IDAT", &zlib.finish().unwrap()));
    png.extend(png_chunk(b"IEND", &[]));
    png
}

#[test]
fn empty_and_unknown_input_are_typed_errors() {
    let dir = hostile_dir("magic");
    let limits = Limits::default();
    assert_eq!(
        hash_written(&dir, "empty.jpg", b"", &limits),
        Err(HashError::Empty)
    );
    assert_eq!(
        hash_written(&dir, "text.png", b"<html>not an image</html>", &limits),
        Err(HashError::UnknownFormat)
    );
    let mut jpeg = corpus_file("jpg");
    jpeg[0] = 0;
    assert_eq!(
        hash_written(&dir, "wrong-magic.jpg", &jpeg, &limits),
        Err(HashError::UnknownFormat)
    );
    // A PNG signature in front of JPEG data: the magic says PNG, the PNG decoder must refuse.
    let mut polyglot = b"\x89PNG\r\n\x1a\n".to_vec();
    polyglot.extend_from_slice(&corpus_file("jpg"));
    assert!(matches!(
        hash_written(&dir, "polyglot.png", &polyglot, &limits),
        Err(HashError::Decode {
            kind: MediaKind::Png,
            ..
        } | HashError::Truncated {
            kind: MediaKind::Png
        })
    ));
}

#[test]
fn truncated_files_give_typed_errors_or_hashes_never_panics() {
    let dir = hostile_dir("truncated");
    let limits = Limits::default();
    for kind in ["jpg", "png", "gif", "webp"] {
        let whole = corpus_file(kind);
        let complete = hash_media(&whole, &limits).unwrap();
        for cut in [
            1,
            3,
            8,
            12,
            20,
            40,
            100,
            whole.len() / 4,
            whole.len() / 2,
            whole.len() - 1,
        ] {
            let name = format!("cut-{cut}.{kind}");
            match hash_written(&dir, &name, &whole[..cut], &limits) {
                Err(
                    HashError::UnknownFormat
                    | HashError::Truncated { .. }
                    | HashError::Decode { .. },
                ) => {}
                // Some decoders (zune-jpeg, like libjpeg) fill missing scans with grey and
                // carry on; the result must still be a well-formed hash of the declared size.
                Ok(partial) => {
                    assert_eq!(
                        (partial.width, partial.height),
                        (complete.width, complete.height),
                        "{name}"
                    );
                    assert!(partial.pdq.is_some(), "{name}");
                }
                Err(other) => panic!("{name}: unexpected error {other:?}"),
            }
        }
    }
}

#[test]
fn a_png_declaring_100k_by_100k_is_refused_before_allocation() {
    let dir = hostile_dir("huge-header");
    let png = grey_png(100_000, 100_000, 1);
    assert!(png.len() < 1000);
    assert_eq!(
        hash_written(&dir, "100k.png", &png, &Limits::default()),
        Err(HashError::TooManyPixels {
            width: 100_000,
            height: 100_000,
            limit: 64_000_000
        })
    );
}

#[test]
fn a_decompression_bomb_is_refused_by_its_declared_size() {
    let dir = hostile_dir("bomb");
    // 12000×12000 zero pixels really compressed: ~140 KB that would inflate to 144 MB.
    let bomb = grey_png(12_000, 12_000, 12_000);
    assert!(bomb.len() < 1_000_000, "bomb is {} bytes", bomb.len());
    assert_eq!(
        hash_written(&dir, "bomb.png", &bomb, &Limits::default()),
        Err(HashError::TooManyPixels {
            width: 12_000,
            height: 12_000,
            limit: 64_000_000
        })
    );
    // Under a tighter limit, a smaller bomb is refused the same way.
    let small_bomb = grey_png(3000, 3000, 3000);
    let tight = Limits {
        max_pixels: 4_000_000,
        ..Limits::default()
    };
    assert!(matches!(
        hash_written(&dir, "small-bomb.png", &small_bomb, &tight),
        Err(HashError::TooManyPixels { .. })
    ));
    // And within the limits it decodes: a uniform image hashes to all zero bits.
    let fine = hash_written(&dir, "small-bomb-ok.png", &small_bomb, &Limits::default()).unwrap();
    assert_eq!((fine.width, fine.height), (3000, 3000));
    assert_eq!(fine.pdq.unwrap().quality, 0);
}

#[test]
fn too_many_bytes_and_zero_dimensions_are_refused() {
    let dir = hostile_dir("sizes");
    let jpeg = corpus_file("jpg");
    let small = Limits {
        max_bytes: 100,
        ..Limits::default()
    };
    assert_eq!(
        hash_written(&dir, "big.jpg", &jpeg, &small),
        Err(HashError::TooLarge {
            size: jpeg.len() as u64,
            limit: 100
        })
    );
    assert!(matches!(
        hash_written(&dir, "zero.png", &grey_png(0, 10, 0), &Limits::default()),
        Err(HashError::ZeroDimension { .. } | HashError::Decode { .. })
    ));
}

#[test]
fn a_one_pixel_image_hashes_to_zero_with_quality_zero() {
    let dir = hostile_dir("tiny");
    let pixel = DynamicImage::ImageRgb8(ImageBuffer::from_pixel(1, 1, Rgb([10, 200, 30])));
    for format in [
        ImageFormat::Png,
        ImageFormat::Gif,
        ImageFormat::Bmp,
        ImageFormat::Jpeg,
        ImageFormat::WebP,
    ] {
        let bytes = encode(&pixel, format);
        let result = hash_written(
            &dir,
            &format!("1x1.{}", format.extensions_str()[0]),
            &bytes,
            &Limits::default(),
        )
        .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!((result.width, result.height), (1, 1));
        let pdq = result.pdq.unwrap();
        assert_eq!((pdq.hash, pdq.quality), (PdqHash::default(), 0));
    }
}

/// Insert `count` APPn segments of maximal length right after SOI.
fn with_app_segments(jpeg: &[u8], marker: u8, prefix: &[u8], count: usize) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let body_len = 65533 - prefix.len();
    for i in 0..count {
        out.extend_from_slice(&[0xFF, marker, 0xFF, 0xFF]);
        out.extend_from_slice(prefix);
        out.extend((0..body_len).map(|b| (b + i) as u8));
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn enormous_icc_and_exif_segments_do_not_change_the_hash() {
    let dir = hostile_dir("metadata");
    let jpeg = corpus_file("jpg");
    let plain = hash_media(&jpeg, &Limits::default())
        .unwrap()
        .pdq
        .unwrap()
        .hash;
    // 200 maximal EXIF segments (13 MB of garbage TIFF) and 200 ICC chunks claiming a profile.
    let exif = with_app_segments(&jpeg, 0xE1, b"Exif\0\0MM\0\x2a", 200);
    let icc = with_app_segments(&jpeg, 0xE2, b"ICC_PROFILE\0\x01\xC8", 200);
    for (name, bytes) in [("exif.jpg", exif), ("icc.jpg", icc)] {
        assert!(bytes.len() > 13_000_000);
        let result = hash_written(&dir, name, &bytes, &Limits::default()).unwrap();
        assert_eq!(result.pdq.unwrap().hash, plain, "{name}");
    }
    // A PNG with a 20 MB (compressed to little) iCCP chunk before its image data.
    let png = corpus_file("png");
    let plain = hash_media(&png, &Limits::default())
        .unwrap()
        .pdq
        .unwrap()
        .hash;
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    zlib.write_all(&vec![7u8; 20_000_000]).unwrap();
    let mut iccp = b"huge\0\0".to_vec();
    iccp.extend(zlib.finish().unwrap());
    let mut with_icc = png[..33].to_vec();
    with_icc.extend(png_chunk(b"iCCP", &iccp));
    with_icc.extend_from_slice(&png[33..]);
    let result = hash_written(&dir, "icc.png", &with_icc, &Limits::default());
    match result {
        Ok(hashes) => assert_eq!(hashes.pdq.unwrap().hash, plain),
        Err(error) => assert!(
            matches!(
                error,
                HashError::Decode { .. } | HashError::MemoryLimit { .. }
            ),
            "{error:?}"
        ),
    }
}

#[test]
fn a_cmyk_jpeg_hashes_close_to_the_reference() {
    let fixtures = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"));
    let expected = std::fs::read_to_string(fixtures.join("EXPECTED.tsv")).unwrap();
    let row: Vec<&str> = expected
        .lines()
        .find(|l| l.starts_with("cmyk.jpg"))
        .unwrap()
        .split('\t')
        .collect();
    let result = hash_media(
        &std::fs::read(fixtures.join("cmyk.jpg")).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(
        (result.kind, result.width, result.height),
        (MediaKind::Jpeg, 96, 64)
    );
    let pdq = result.pdq.unwrap();
    let distance = pdq
        .hash
        .hamming_distance(&PdqHash::from_hex(row[1]).unwrap());
    println!("CMYK JPEG: distance {distance} to Pillow + pdqhash");
    assert!(distance <= 31, "distance {distance}");
}

#[test]
fn sixteen_bit_pngs_follow_pillow_conversion() {
    let dir = hostile_dir("sixteen-bit");
    let rgb8 = image::load_from_memory(&corpus_file("png"))
        .unwrap()
        .to_rgb8();
    let (width, height) = rgb8.dimensions();
    let reference_rgb = hash_media(
        &encode(&DynamicImage::ImageRgb8(rgb8.clone()), ImageFormat::Png),
        &Limits::default(),
    )
    .unwrap()
    .pdq
    .unwrap();
    // RGB: Pillow keeps the high byte, so v*257 (high byte v, low byte v) hashes as v.
    let rgb16: ImageBuffer<Rgb<u16>, Vec<u16>> = ImageBuffer::from_fn(width, height, |x, y| {
        Rgb(rgb8.get_pixel(x, y).0.map(|v| u16::from(v) * 257))
    });
    let rgb16 = hash_written(
        &dir,
        "rgb16.png",
        &encode(&DynamicImage::ImageRgb16(rgb16), ImageFormat::Png),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(rgb16.pdq.unwrap(), reference_rgb);
    // Grey: Pillow's "I;16" to RGB clips at 255, so values above 255 all become white.
    let grey8 = DynamicImage::ImageRgb8(rgb8).to_luma8();
    let clipped = ImageBuffer::from_fn(width, height, |x, y| {
        Luma([if grey8.get_pixel(x, y).0[0] > 128 {
            255u8
        } else {
            grey8.get_pixel(x, y).0[0]
        }])
    });
    let grey16 = ImageBuffer::from_fn(width, height, |x, y| {
        let v = grey8.get_pixel(x, y).0[0];
        Luma([if v > 128 {
            300 + u16::from(v) * 200
        } else {
            u16::from(v)
        }])
    });
    let from16 = hash_written(
        &dir,
        "grey16.png",
        &encode(&DynamicImage::ImageLuma16(grey16), ImageFormat::Png),
        &Limits::default(),
    )
    .unwrap();
    let from8 = hash_media(
        &encode(&DynamicImage::ImageLuma8(clipped), ImageFormat::Png),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(from16.pdq.unwrap(), from8.pdq.unwrap());
}

#[test]
fn videos_are_recognised_and_get_crypto_hashes_only() {
    let dir = hostile_dir("video");
    let mut mp4 = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    mp4.extend_from_slice(&[0u8; 100]);
    let result = hash_written(&dir, "clip.mp4", &mp4, &Limits::default()).unwrap();
    assert_eq!(result.kind, MediaKind::Mp4);
    assert!(result.pdq.is_none());
    assert_eq!(
        result.require_pdq(),
        Err(HashError::VideoNotSupportedYet {
            kind: MediaKind::Mp4
        })
    );
    assert_eq!(result.sha256, aranea_hash::crypto_hashes(&mp4).sha256);
}

#[test]
fn mutated_corpus_files_never_panic() {
    let limits = Limits {
        max_pixels: 4_000_000,
        ..Limits::default()
    };
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for kind in ["jpg", "png", "gif", "webp"] {
        let original = corpus_file(kind);
        for _ in 0..60 {
            let mut bytes = original.clone();
            for _ in 0..(1 + next() % 8) {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            // Outcome may be anything typed; the point is returning at all.
            let _ = hash_media(&bytes, &limits);
        }
    }
}

#[test]
fn an_animated_gif_is_hashed_by_its_first_frame() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, RgbaImage};
    let dir = hostile_dir("animated");
    let first = image::load_from_memory(&corpus_file("png"))
        .unwrap()
        .thumbnail_exact(96, 64)
        .to_rgba8();
    let second = RgbaImage::from_fn(96, 64, |x, y| {
        image::Rgba([(x * 2) as u8, (y * 3) as u8, 90, 255])
    });
    let gif = |frames: Vec<RgbaImage>| {
        let mut out = Vec::new();
        {
            let mut encoder = GifEncoder::new(&mut out);
            for frame in frames {
                encoder
                    .encode_frame(Frame::from_parts(
                        frame,
                        0,
                        0,
                        Delay::from_numer_denom_ms(100, 1),
                    ))
                    .unwrap();
            }
        }
        out
    };
    let animated = hash_written(
        &dir,
        "animated.gif",
        &gif(vec![first.clone(), second.clone()]),
        &Limits::default(),
    )
    .unwrap();
    let only_first = hash_media(&gif(vec![first]), &Limits::default()).unwrap();
    let only_second = hash_media(&gif(vec![second]), &Limits::default()).unwrap();
    assert_eq!(animated.pdq, only_first.pdq);
    assert_ne!(animated.pdq, only_second.pdq);
}

/// An animated WebP (VP8X + ANIM + one ANMF per frame) around lossless single-frame encodings.
fn animated_webp(frames: &[DynamicImage]) -> Vec<u8> {
    let chunk = |kind: &[u8; 4], data: &[u8]| {
        let mut out = kind.to_vec();
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(0);
        }
        out
    };
    let u24 = |v: u32| v.to_le_bytes()[..3].to_vec();
    let (width, height) = (frames[0].width(), frames[0].height());
    let mut vp8x = vec![0x02, 0, 0, 0];
    vp8x.extend(u24(width - 1));
    vp8x.extend(u24(height - 1));
    let mut body = b"WEBP".to_vec();
    body.extend(chunk(b"VP8X", &vp8x));
    body.extend(chunk(b"ANIM", &[0, 0, 0, 0, 0, 0]));
    for frame in frames {
        let single = encode(frame, ImageFormat::WebP);
        // A single-frame lossless file is RIFF, size, "WEBP", then the VP8L chunk.
        assert_eq!(&single[12..16], b"VP8L");
        let mut anmf = [u24(0), u24(0), u24(width - 1), u24(height - 1), u24(100)].concat();
        anmf.push(0b10); // do not blend, do not dispose
        anmf.extend_from_slice(&single[12..]);
        body.extend(chunk(b"ANMF", &anmf));
    }
    let mut file = b"RIFF".to_vec();
    file.extend_from_slice(&(body.len() as u32).to_le_bytes());
    file.extend(body);
    file
}

#[test]
fn an_animated_webp_is_hashed_by_its_first_frame() {
    let dir = hostile_dir("animated-webp");
    let first = image::load_from_memory(&corpus_file("png"))
        .unwrap()
        .thumbnail_exact(96, 64)
        .to_rgb8();
    let second = ImageBuffer::from_fn(96, 64, |x, y| Rgb([(x * 2) as u8, (y * 3) as u8, 90]));
    let (first, second) = (
        DynamicImage::ImageRgb8(first),
        DynamicImage::ImageRgb8(second),
    );
    let animated = hash_written(
        &dir,
        "animated.webp",
        &animated_webp(&[first.clone(), second.clone()]),
        &Limits::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (animated.kind, animated.width, animated.height),
        (MediaKind::Webp, 96, 64)
    );
    let only_first = hash_media(&encode(&first, ImageFormat::WebP), &Limits::default()).unwrap();
    let only_second = hash_media(&encode(&second, ImageFormat::WebP), &Limits::default()).unwrap();
    let first_hash = only_first.pdq.unwrap().hash;
    assert_eq!(animated.pdq.unwrap().hash, first_hash);
    assert_ne!(first_hash, only_second.pdq.unwrap().hash);
}
