//! Files the world writes for its clients: the bank of known hashes (Hasher-Matcher-Actioner
//! CSV) and the IP-to-ASN table (iptoasn.com TSV).
//!
//! Only originals of known photos go in the bank: transformed copies must be found by PDQ
//! distance, as in the real world. Must not write anything outside the output directory.

use std::fmt::Write;
use std::path::Path;

use crate::error::SimWebError;
use crate::world::World;

pub fn write_bank(world: &World, path: &Path) -> Result<(), SimWebError> {
    let known = &world.known;
    // Hash on two threads: the demo declares dozens of known photos.
    let half = known.len().div_ceil(2);
    let rows: Vec<Result<String, SimWebError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = known
            .chunks(half.max(1))
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|&i| bank_rows(world, i))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut text = String::from("signal_type,signal_value\n");
    for row in rows {
        text.push_str(&row?);
    }
    std::fs::write(path, text).map_err(|source| SimWebError::Io {
        what: format!("writing {}", path.display()),
        source,
    })
}

fn bank_rows(world: &World, source: usize) -> Result<String, SimWebError> {
    let bytes = world.corpus.bytes(source)?;
    let hashes = aranea_hash::hash_media(&bytes, &aranea_hash::Limits::default()).map_err(|e| {
        SimWebError::CorpusImage {
            file: world.corpus.file_name(source).to_owned(),
            reason: e.to_string(),
        }
    })?;
    let mut rows = String::new();
    if let Some(pdq) = &hashes.pdq {
        let _ = writeln!(rows, "pdq,{}", pdq.hash.to_hex());
    }
    let _ = writeln!(rows, "md5,{}", hashes.md5_hex());
    let _ = writeln!(rows, "sha256,{}", hashes.sha256_hex());
    Ok(rows)
}

/// One row per provider block: `range_start range_end AS_number country_code AS_description`.
pub fn write_ip_to_asn(world: &World, path: &Path) -> Result<(), SimWebError> {
    let mut rows: Vec<(u32, String)> = world
        .providers
        .iter()
        .flat_map(|p| {
            p.blocks.iter().map(move |b| {
                (
                    u32::from(b.base),
                    format!(
                        "{}\t{}\t{}\t{}\t{}\n",
                        b.base,
                        b.last(),
                        p.asn,
                        p.country,
                        p.name.to_uppercase().replace(' ', "-")
                    ),
                )
            })
        })
        .collect();
    rows.sort();
    let text: String = rows.into_iter().map(|(_, row)| row).collect();
    std::fs::write(path, text).map_err(|source| SimWebError::Io {
        what: format!("writing {}", path.display()),
        source,
    })
}
