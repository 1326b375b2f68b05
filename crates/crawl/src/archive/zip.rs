//! ZIP reading: the central directory when the end record is present (ZIP64 included), the local
//! headers one after another when it is not (a body cut short by the fetch limit still yields its
//! first members).
//!
//! Sizes written in headers only locate data; how much a member unpacks to is found by unpacking
//! it under the limits. Stored (0) and deflate (8) are read; other methods and encrypted members
//! are skipped by name.

use std::io::Read;

use super::{ArchiveError, ArchiveKind, SkipReason, Walk, member_path};

const LOCAL_SIG: &[u8; 4] = b"PK\x03\x04";
const CENTRAL_SIG: &[u8; 4] = b"PK\x01\x02";
const END_SIG: &[u8; 4] = b"PK\x05\x06";
const END64_LOCATOR_SIG: &[u8; 4] = b"PK\x06\x07";
const END64_SIG: &[u8; 4] = b"PK\x06\x06";
const DESCRIPTOR_SIG: &[u8; 4] = b"PK\x07\x08";
const END_LEN: usize = 22;
const LOCAL_LEN: usize = 30;
const CENTRAL_LEN: usize = 46;
/// A field value that means "the real value is in the ZIP64 extra field".
const ZIP64_MARK: u32 = u32::MAX;
const FLAG_ENCRYPTED: u16 = 1;
const FLAG_DESCRIPTOR: u16 = 1 << 3;

fn malformed(what: &'static str) -> ArchiveError {
    ArchiveError::Malformed {
        kind: ArchiveKind::Zip,
        what,
    }
}
const TRUNCATED: ArchiveError = ArchiveError::Truncated {
    kind: ArchiveKind::Zip,
};

/// Whether `bytes` start as a ZIP (a local header, or the end record of an empty archive).
pub(super) fn starts_as_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(LOCAL_SIG) || (bytes.starts_with(END_SIG) && bytes.len() >= END_LEN)
}

/// Whether a ZIP with at least one entry ends `bytes` after other data: a self-extractor, or a
/// polyglot such as a JPEG with an archive appended.
pub(super) fn appended(bytes: &[u8]) -> bool {
    find_directory(bytes).is_some_and(|d| !d.entries.is_empty())
}

/// The central directory, and how far the archive was shifted by data put in front of it.
struct Directory<'a> {
    entries: &'a [u8],
    shift: usize,
}

/// One member as the directory (or its local header) describes it.
struct Entry<'a> {
    flags: u16,
    method: u16,
    crc: u32,
    compressed: &'a [u8],
}

pub(super) fn walk(
    walk: &mut Walk<'_>,
    bytes: &[u8],
    prefix: &str,
    depth: u32,
) -> Result<(), ArchiveError> {
    match find_directory(bytes) {
        Some(directory) => walk_directory(walk, bytes, &directory, prefix, depth),
        // No end record, or one pointing nowhere useful: the local headers still lead from
        // member to member.
        None => walk_local_headers(walk, bytes, prefix, depth),
    }
}

/// Where the central directory lies, from the end record (and its ZIP64 form): where the
/// writer put it or, when data was put in front of the archive, right before the end record.
fn find_directory(bytes: &[u8]) -> Option<Directory<'_>> {
    let last = bytes.len().checked_sub(END_LEN)?;
    let first = last.saturating_sub(usize::from(u16::MAX));
    // The last signature whose comment fits: a comment may itself contain the signature bytes.
    let end = (first..=last).rev().find(|&at| {
        bytes.get(at..at + 4) == Some(END_SIG)
            && le16(bytes, at + 20).is_some_and(|c| at + END_LEN + usize::from(c) <= bytes.len())
    })?;
    let (mut size, mut offset) = (
        u64::from(le32(bytes, end + 12)?),
        u64::from(le32(bytes, end + 16)?),
    );
    let mut directory_end = end;
    if size == u64::from(ZIP64_MARK) || offset == u64::from(ZIP64_MARK) {
        (size, offset, directory_end) = zip64_directory(bytes, end)?;
    }
    let len = usize::try_from(size).ok()?;
    let declared = usize::try_from(offset).ok()?;
    let usable = |entries: &[u8]| entries.is_empty() || entries.starts_with(CENTRAL_SIG);
    if let Some(entries) = declared
        .checked_add(len)
        .and_then(|stop| bytes.get(declared..stop))
        .filter(|e| usable(e))
    {
        return Some(Directory { entries, shift: 0 });
    }
    let actual = directory_end.checked_sub(len)?;
    let entries = bytes.get(actual..directory_end).filter(|e| usable(e))?;
    // The shift is right if the first entry's local header is where it then says; an offset
    // that merely lies is left to the local-header walk.
    let first_local = usize::try_from(le32(entries, 42)?).ok()?;
    [actual.checked_sub(declared), Some(0)]
        .into_iter()
        .flatten()
        .find(|&shift| {
            first_local
                .checked_add(shift)
                .is_some_and(|at| bytes.get(at..at.saturating_add(4)) == Some(LOCAL_SIG))
        })
        .map(|shift| Directory { entries, shift })
}

/// The directory's size and offset, and where the ZIP64 end record lies, from the locator just
/// before `end`.
fn zip64_directory(bytes: &[u8], end: usize) -> Option<(u64, u64, usize)> {
    let locator = end.checked_sub(20)?;
    if bytes.get(locator..locator + 4) != Some(END64_LOCATOR_SIG) {
        return None;
    }
    let declared = usize::try_from(le64(bytes, locator + 8)?).ok()?;
    // The record sits right before the locator (56 bytes without extensible data), which is
    // where it is found when data was put in front of the archive.
    let record = [Some(declared), locator.checked_sub(56)]
        .into_iter()
        .flatten()
        .find(|&r| bytes.get(r..r.saturating_add(4)) == Some(END64_SIG))?;
    Some((le64(bytes, record + 40)?, le64(bytes, record + 48)?, record))
}

fn walk_directory(
    walk: &mut Walk<'_>,
    bytes: &[u8],
    found: &Directory<'_>,
    prefix: &str,
    depth: u32,
) -> Result<(), ArchiveError> {
    let directory = found.entries;
    // Where the members already read begin: a directory listing one small picture thousands
    // of times would otherwise have it decoded and hashed that many times, within the byte
    // and entry limits.
    let mut read_at = std::collections::HashSet::new();
    let mut at = 0usize;
    while directory.get(at..at + 4) == Some(CENTRAL_SIG) {
        walk.count_entry()?;
        let field16 = |o| le16(directory, at + o).ok_or(malformed("directory entry"));
        let field32 = |o| le32(directory, at + o).ok_or(malformed("directory entry"));
        let (flags, method, crc) = (field16(8)?, field16(10)?, field32(16)?);
        let mut compressed_size = u64::from(field32(20)?);
        let uncompressed_size = field32(24)?;
        let name_len = usize::from(field16(28)?);
        let extra_len = usize::from(field16(30)?);
        let comment_len = usize::from(field16(32)?);
        let mut local = u64::from(field32(42)?);
        let name_at = at + CENTRAL_LEN;
        let name = directory
            .get(name_at..name_at + name_len)
            .ok_or(malformed("directory name"))?;
        let extra = directory
            .get(name_at + name_len..name_at + name_len + extra_len)
            .ok_or(malformed("directory extra field"))?;
        if let Some(zip64) = find_extra(extra, 0x0001) {
            // ZIP64 fields appear only for the fields marked, in this order.
            let mut fields = zip64.chunks_exact(8).filter_map(|c| le64(c, 0));
            if uncompressed_size == ZIP64_MARK {
                fields.next();
            }
            if compressed_size == u64::from(ZIP64_MARK) {
                compressed_size = fields.next().unwrap_or(compressed_size);
            }
            if local == u64::from(ZIP64_MARK) {
                local = fields.next().unwrap_or(local);
            }
        }
        at = name_at + name_len + extra_len + comment_len;
        if is_directory(name) {
            continue;
        }
        let path = member_path(prefix, name);
        let local = local.saturating_add(found.shift as u64);
        if !read_at.insert(local) {
            walk.skip(path, SkipReason::Repeated);
            continue;
        }
        match local_data(bytes, local, compressed_size) {
            Some(compressed) => {
                let entry = Entry {
                    flags,
                    method,
                    crc,
                    compressed,
                };
                unpack(walk, &entry, path, depth)?;
            }
            None => walk.skip(path, SkipReason::Corrupt),
        }
    }
    Ok(())
}

/// The compressed bytes of the member whose local header is at `local`.
fn local_data(bytes: &[u8], local: u64, compressed_size: u64) -> Option<&[u8]> {
    let local = usize::try_from(local).ok()?;
    if bytes.get(local..local.checked_add(4)?) != Some(LOCAL_SIG) {
        return None;
    }
    let name_len = usize::from(le16(bytes, local + 26)?);
    let extra_len = usize::from(le16(bytes, local + 28)?);
    let start = local
        .checked_add(LOCAL_LEN)?
        .checked_add(name_len)?
        .checked_add(extra_len)?;
    let stop = start.checked_add(usize::try_from(compressed_size).ok()?)?;
    bytes.get(start..stop)
}

/// Without an end record: members in the order their local headers appear, until the bytes end
/// or stop making sense. Always ends in [`ArchiveError::Truncated`], after what could be read.
fn walk_local_headers(
    walk: &mut Walk<'_>,
    bytes: &[u8],
    prefix: &str,
    depth: u32,
) -> Result<(), ArchiveError> {
    let mut at = 0usize;
    while bytes.get(at..at + 4) == Some(LOCAL_SIG) {
        walk.count_entry()?;
        let field16 = |o| le16(bytes, at + o).ok_or(TRUNCATED);
        let field32 = |o| le32(bytes, at + o).ok_or(TRUNCATED);
        let (flags, method, crc) = (field16(6)?, field16(8)?, field32(14)?);
        let mut compressed_size = u64::from(field32(18)?);
        let uncompressed_size = field32(22)?;
        let name_len = usize::from(field16(26)?);
        let extra_len = usize::from(field16(28)?);
        let name_at = at + LOCAL_LEN;
        let name = bytes.get(name_at..name_at + name_len).ok_or(TRUNCATED)?;
        let extra = bytes
            .get(name_at + name_len..name_at + name_len + extra_len)
            .ok_or(TRUNCATED)?;
        if let Some(zip64) = find_extra(extra, 0x0001) {
            let mut fields = zip64.chunks_exact(8).filter_map(|c| le64(c, 0));
            if uncompressed_size == ZIP64_MARK {
                fields.next();
            }
            if compressed_size == u64::from(ZIP64_MARK) {
                compressed_size = fields.next().unwrap_or(compressed_size);
            }
        }
        let data_at = name_at + name_len + extra_len;
        let path = member_path(prefix, name);
        let sizes_follow = flags & FLAG_DESCRIPTOR != 0 && compressed_size == 0;
        let (compressed, crc) = if sizes_follow {
            // Only deflate marks its own end; a stored member of unknown size cannot be found.
            if method != 8 || flags & FLAG_ENCRYPTED != 0 {
                return Err(TRUNCATED);
            }
            let consumed = deflate_stream_len(bytes.get(data_at..).unwrap_or_default(), walk)?;
            let data = bytes.get(data_at..data_at + consumed).ok_or(TRUNCATED)?;
            let (descriptor_len, crc) =
                read_descriptor(bytes, data_at + consumed).ok_or(TRUNCATED)?;
            at = data_at + consumed + descriptor_len;
            (data, crc)
        } else {
            let len = usize::try_from(compressed_size).map_err(|_| TRUNCATED)?;
            let stop = data_at.checked_add(len).ok_or(TRUNCATED)?;
            let data = bytes.get(data_at..stop).ok_or(TRUNCATED)?;
            at = stop;
            (data, crc)
        };
        if is_directory(name) {
            continue;
        }
        let entry = Entry {
            flags,
            method,
            crc,
            compressed,
        };
        unpack(walk, &entry, path, depth)?;
    }
    Err(TRUNCATED)
}

/// How many bytes the deflate stream at the start of `data` occupies, found by inflating it (the
/// output counted against the total, since a bomb can hide here too).
fn deflate_stream_len(data: &[u8], walk: &mut Walk<'_>) -> Result<usize, ArchiveError> {
    let cap = walk.limits.max_member_bytes.min(walk.remaining_bytes());
    let mut decoder = flate2::read::DeflateDecoder::new(data);
    let produced = std::io::copy(
        &mut (&mut decoder).take(cap.saturating_add(1)),
        &mut std::io::sink(),
    )
    .map_err(|_| TRUNCATED)?;
    walk.add_unpacked(produced)?;
    if produced > cap {
        // Too large to find its end within the limits: the rest cannot be located.
        return Err(TRUNCATED);
    }
    usize::try_from(decoder.total_in()).map_err(|_| TRUNCATED)
}

/// The length and CRC of the data descriptor at `at`: with or without its signature, 32- or
/// 64-bit sizes, judged by what follows it.
fn read_descriptor(bytes: &[u8], at: usize) -> Option<(usize, u32)> {
    let signed = bytes.get(at..at + 4) == Some(DESCRIPTOR_SIG);
    let crc_at = if signed { at + 4 } else { at };
    let crc = le32(bytes, crc_at)?;
    let base = crc_at + 4 - at;
    [base + 8, base + 16].into_iter().find_map(|len| {
        let next = bytes.get(at + len..at + len + 4);
        let fits = at + len <= bytes.len();
        (fits && (next.is_none() || next == Some(LOCAL_SIG) || next == Some(CENTRAL_SIG)))
            .then_some((len, crc))
    })
}

/// Unpacks one file member under the limits and hands it on, or records why not.
fn unpack(
    walk: &mut Walk<'_>,
    entry: &Entry<'_>,
    path: String,
    depth: u32,
) -> Result<(), ArchiveError> {
    if entry.flags & FLAG_ENCRYPTED != 0 {
        walk.skip(path, SkipReason::Encrypted);
        return Ok(());
    }
    let max_member = walk.limits.max_member_bytes;
    let bytes = match entry.method {
        0 => {
            if entry.compressed.len() as u64 > max_member {
                walk.skip(path, SkipReason::TooLarge);
                return Ok(());
            }
            walk.add_unpacked(entry.compressed.len() as u64)?;
            entry.compressed.to_vec()
        }
        8 => {
            let ratio_cap = walk.ratio_allowance(entry.compressed.len() as u64);
            let cap = max_member.min(ratio_cap);
            // One byte past the remaining total proves the total exceeded.
            let read_cap = cap.min(walk.remaining_bytes()).saturating_add(1);
            let mut out = Vec::with_capacity(entry.compressed.len().min(1 << 20));
            let decoder = flate2::read::DeflateDecoder::new(entry.compressed);
            // On an error the bytes read so far are in `out` and are counted all the same.
            let result = decoder.take(read_cap).read_to_end(&mut out);
            walk.add_unpacked(out.len() as u64)?;
            if out.len() as u64 > cap {
                let reason = if ratio_cap < max_member {
                    SkipReason::RatioExceeded
                } else {
                    SkipReason::TooLarge
                };
                walk.skip(path, reason);
                return Ok(());
            }
            if result.is_err() {
                walk.skip(path, SkipReason::Corrupt);
                return Ok(());
            }
            out
        }
        other => {
            walk.skip(path, SkipReason::UnsupportedMethod(other));
            return Ok(());
        }
    };
    let mut crc = flate2::Crc::new();
    crc.update(&bytes);
    if crc.sum() != entry.crc {
        walk.summary.checksum_mismatches += 1;
    }
    walk.deliver(path, bytes, depth)
}

fn is_directory(name: &[u8]) -> bool {
    name.ends_with(b"/") || name.ends_with(b"\\")
}

/// The data of the first extra-field record with `id`.
fn find_extra(mut extra: &[u8], id: u16) -> Option<&[u8]> {
    while let (Some(tag), Some(len)) = (le16(extra, 0), le16(extra, 2)) {
        let data = extra.get(4..4 + usize::from(len))?;
        if tag == id {
            return Some(data);
        }
        extra = extra.get(4 + usize::from(len)..)?;
    }
    None
}

fn le16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([
        b.first().copied()?,
        b.get(1).copied()?,
    ]))
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

fn le64(bytes: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}
