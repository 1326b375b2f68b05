//! TAR reading as one forward stream of 512-byte blocks, from a body or from a gzip decoder, so a
//! `.tar.gz` is never unpacked whole.
//!
//! Headers are accepted only with a valid checksum; sizes are octal or GNU base-256; GNU long
//! names (`L`) and pax `path`/`size` records (`x`) name the next entry. Every byte read from the
//! stream counts against the walk's total (and, under gzip, against the ratio guard), skipped
//! members included, since a gzip bomb can hide in a member nobody wants.

use std::io::{self, Read};

use super::{ArchiveError, ArchiveKind, SkipReason, Walk, member_path};

pub(super) const BLOCK: usize = 512;
/// The most a GNU long name or a pax header may hold; beyond that the entry is malformed.
const MAX_META_BYTES: u64 = 1 << 20;

/// Whether `bytes` starts with a TAR header: not all zeros, and its checksum adds up.
pub(super) fn is_header(bytes: &[u8]) -> bool {
    let Some(header) = bytes.get(..BLOCK) else {
        return false;
    };
    if header.iter().all(|&b| b == 0) {
        return false;
    }
    let Some(stored) = header.get(148..156).and_then(parse_octal) else {
        return false;
    };
    // The checksum field counts as eight spaces; some old writers summed signed bytes.
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in header.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed)
}

/// A reader that refuses to produce more than `limit` bytes and remembers that it did.
struct Budget<R> {
    inner: R,
    read: u64,
    counted: u64,
    limit: u64,
    exceeded: bool,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read >= self.limit {
            self.exceeded = true;
            return Err(io::Error::other("archive byte budget exhausted"));
        }
        let room = usize::try_from(self.limit - self.read).unwrap_or(usize::MAX);
        let n = buf.len().min(room);
        let got = self.inner.read(buf.get_mut(..n).unwrap_or_default())?;
        self.read += got as u64;
        Ok(got)
    }
}

/// The stream and what the walk needs to name its errors.
struct Stream<R> {
    budget: Budget<R>,
    kind: ArchiveKind,
    /// The ratio guard's allowance when it is the tighter bound (gzip only).
    ratio_limit: Option<u32>,
    total_limit: u64,
}

impl<R: Read> Stream<R> {
    /// Maps a read error to what went wrong: the budget, a short stream, or corrupt compression.
    fn error(&self, err: &io::Error) -> ArchiveError {
        if self.budget.exceeded {
            return match self.ratio_limit {
                Some(limit) => ArchiveError::RatioExceeded { limit },
                None => ArchiveError::TooManyBytes {
                    limit: self.total_limit,
                },
            };
        }
        if err.kind() == io::ErrorKind::UnexpectedEof {
            ArchiveError::Truncated { kind: self.kind }
        } else {
            ArchiveError::Malformed {
                kind: self.kind,
                what: "compressed stream corrupt",
            }
        }
    }

    /// Fills `buf`, or reports `Ok(false)` on a clean end before its first byte.
    fn read_block(&mut self, buf: &mut [u8; BLOCK]) -> Result<bool, ArchiveError> {
        let mut filled = 0;
        while filled < BLOCK {
            match self.budget.read(buf.get_mut(filled..).unwrap_or_default()) {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => return Err(ArchiveError::Truncated { kind: self.kind }),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.error(&e)),
            }
        }
        Ok(true)
    }

    /// Reads exactly `len` bytes (the caller has bounded `len`).
    fn read_data(&mut self, len: u64) -> Result<Vec<u8>, ArchiveError> {
        let mut out = Vec::with_capacity(usize::try_from(len.min(1 << 20)).unwrap_or(0));
        match (&mut self.budget).take(len).read_to_end(&mut out) {
            Ok(n) if n as u64 == len => Ok(out),
            Ok(_) => Err(ArchiveError::Truncated { kind: self.kind }),
            Err(e) => Err(self.error(&e)),
        }
    }

    /// Reads and drops `len` bytes.
    fn discard(&mut self, len: u64) -> Result<(), ArchiveError> {
        match io::copy(&mut (&mut self.budget).take(len), &mut io::sink()) {
            Ok(n) if n == len => Ok(()),
            Ok(_) => Err(ArchiveError::Truncated { kind: self.kind }),
            Err(e) => Err(self.error(&e)),
        }
    }

    /// Bytes read since the last call, for the walk's total.
    fn newly_read(&mut self) -> u64 {
        let new = self.budget.read - self.budget.counted;
        self.budget.counted = self.budget.read;
        new
    }
}

/// Names and sizes carried by `L` and `x` entries over to the entry after them.
#[derive(Default)]
struct Carried {
    path: Option<Vec<u8>>,
    size: Option<u64>,
}

pub(super) fn walk<R: Read>(
    walk: &mut Walk<'_>,
    kind: ArchiveKind,
    reader: R,
    compressed_len: Option<u64>,
    prefix: &str,
    depth: u32,
) -> Result<(), ArchiveError> {
    let total = walk.remaining_bytes();
    let ratio = compressed_len.map(|len| walk.ratio_allowance(len));
    let (limit, ratio_limit) = match ratio {
        Some(r) if r < total => (r, Some(walk.limits.max_ratio)),
        _ => (total, None),
    };
    let mut stream = Stream {
        budget: Budget {
            inner: reader,
            read: 0,
            counted: 0,
            limit,
            exceeded: false,
        },
        kind,
        ratio_limit,
        total_limit: walk.limits.max_total_bytes,
    };
    let mut carried = Carried::default();
    let mut header = [0u8; BLOCK];
    loop {
        if !stream.read_block(&mut header)? || header.iter().all(|&b| b == 0) {
            walk.add_unpacked(stream.newly_read())?;
            return Ok(());
        }
        if !is_header(&header) {
            return Err(ArchiveError::Malformed {
                kind,
                what: "header checksum",
            });
        }
        walk.count_entry()?;
        let size = match carried.size.take() {
            Some(size) => size,
            None => parse_size(header.get(124..136).unwrap_or_default()).ok_or(
                ArchiveError::Malformed {
                    kind,
                    what: "entry size",
                },
            )?,
        };
        let padding = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        let typeflag = header.get(156).copied().unwrap_or(0);
        match typeflag {
            b'L' | b'x' => {
                if size > MAX_META_BYTES {
                    return Err(ArchiveError::Malformed {
                        kind,
                        what: "long name or pax header too large",
                    });
                }
                let data = stream.read_data(size)?;
                if typeflag == b'L' {
                    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                    carried.path = Some(data.get(..end).unwrap_or_default().to_vec());
                } else {
                    read_pax(&data, &mut carried);
                }
                stream.discard(padding)?;
            }
            b'0' | b'\0' | b'7' if !header_name(&header).ends_with(b"/") => {
                let raw = carried.path.take().unwrap_or_else(|| header_name(&header));
                let path = member_path(prefix, &raw);
                if size > walk.limits.max_member_bytes {
                    stream.discard(size.saturating_add(padding))?;
                    walk.add_unpacked(stream.newly_read())?;
                    walk.skip(path, SkipReason::TooLarge);
                    continue;
                }
                let data = stream.read_data(size)?;
                stream.discard(padding)?;
                walk.add_unpacked(stream.newly_read())?;
                walk.deliver(path, data, depth)?;
            }
            b'S' | b'M' | b'3' | b'4' | b'6' => {
                let raw = carried.path.take().unwrap_or_else(|| header_name(&header));
                if matches!(typeflag, b'S' | b'M') {
                    walk.skip(member_path(prefix, &raw), SkipReason::UnsupportedEntry);
                }
                stream.discard(size.saturating_add(padding))?;
            }
            _ => {
                // Directories, links, long link names, global pax headers, volume labels and
                // unknown kinds: nothing to hand out, their data (if any) dropped.
                if !matches!(typeflag, b'K' | b'g') {
                    carried.path = None;
                }
                stream.discard(size.saturating_add(padding))?;
            }
        }
        walk.add_unpacked(stream.newly_read())?;
    }
}

/// The header's name, with the POSIX ustar prefix when there is one.
fn header_name(header: &[u8; BLOCK]) -> Vec<u8> {
    let name = until_nul(header.get(..100).unwrap_or_default());
    let posix = header.get(257..263) == Some(b"ustar\0");
    let prefix = until_nul(header.get(345..500).unwrap_or_default());
    if posix && !prefix.is_empty() {
        [prefix, b"/", name].concat()
    } else {
        name.to_vec()
    }
}

fn until_nul(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    field.get(..end).unwrap_or_default()
}

/// A size field: octal text, or GNU base-256 when the high bit of the first byte is set
/// (negative values refused).
fn parse_size(field: &[u8]) -> Option<u64> {
    match field.first() {
        Some(&first) if first & 0x80 != 0 => {
            if first & 0x40 != 0 {
                return None;
            }
            let mut value = u64::from(first & 0x3F);
            for &b in field.get(1..)? {
                value = value.checked_mul(256)?.checked_add(u64::from(b))?;
            }
            Some(value)
        }
        _ => parse_octal(field),
    }
}

/// Octal digits, padded by spaces or NULs on either side; an empty field is 0.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let trimmed = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ' || b == 0)
        .take_while(|&b| b != b' ' && b != 0);
    let mut value = 0u64;
    for b in trimmed {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

/// The `path` and `size` records of a pax header (`"<len> <key>=<value>\n"` each).
fn read_pax(mut data: &[u8], carried: &mut Carried) {
    while let Some(space) = data.iter().position(|&b| b == b' ') {
        let Some(len) = std::str::from_utf8(data.get(..space).unwrap_or_default())
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
        else {
            return;
        };
        let Some(record) = data.get(space + 1..len) else {
            return;
        };
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(path) = record.strip_prefix(b"path=") {
            carried.path = Some(path.to_vec());
        } else if let Some(size) = record.strip_prefix(b"size=") {
            carried.size = std::str::from_utf8(size).ok().and_then(|s| s.parse().ok());
        }
        data = data.get(len..).unwrap_or_default();
    }
}
