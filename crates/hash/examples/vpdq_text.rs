//! Print a video's vPDQ in the reference text format, for comparison with Meta's
//! implementation (see `benches/vpdq_reference.py`).
//!
//! `cargo run --release -p aranea-hash --example vpdq_text -- VIDEO [SECONDS_PER_HASH [WIDTH HEIGHT]]`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: vpdq_text VIDEO [SECONDS_PER_HASH [WIDTH HEIGHT]]")?;
    let seconds_per_hash = args.next().map_or(Ok(1.0), |s| s.parse::<f64>())?;
    let width = args.next().map(|s| s.parse::<u32>()).transpose()?;
    let height = args.next().map(|s| s.parse::<u32>()).transpose()?;
    let options = aranea_hash::VideoOptions {
        seconds_per_hash,
        downsample: width.zip(height),
        ..aranea_hash::VideoOptions::default()
    };
    let hashes = aranea_hash::vpdq_hash(&std::fs::read(path)?, &options)?;
    print!("{}", aranea_hash::write_vpdq_text(&hashes.features));
    Ok(())
}
