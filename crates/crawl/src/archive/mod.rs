//! Opening archive bodies (ZIP, TAR, gzip-compressed TAR) so the media inside them can be hashed
//! and recorded as sightings of the archive URL with the member's path.
//!
//! The kind is decided by magic bytes only ([`sniff`]), never by a name or a Content-Type. Every
//! archive is hostile input: the walk is bounded by [`ArchiveLimits`] (entries, unpacked bytes in
//! total and per member, nesting depth, compression ratio), never trusts a size written in a
//! header (inflation stops at the limit whatever the header claims), and never panics on
//! malformed structures. Members are handed to the caller one at a time ([`visit`]) so that no
//! more than one member's bytes are held at once; archives inside archives are opened in place
//! up to [`ArchiveLimits::max_depth`], their members named `outer/path!/inner/path`.
//!
//! This module must never write a member to disk, follow a link member, or interpret a member
//! path as a file-system path: paths are text for the record, however absurd (`../../etc`).
//! It decides nothing about what a member is beyond "is it itself an archive".
//!
//! ```
//! use aranea_crawl::archive::{self, ArchiveLimits};
//! # fn demo(body: &[u8]) -> Result<(), archive::ArchiveError> {
//! if archive::sniff(body).is_some() {
//!     let summary = archive::visit(body, &ArchiveLimits::default(), |member| {
//!         println!("{} ({} bytes)", member.path, member.bytes.len());
//!         std::ops::ControlFlow::Continue(())
//!     })?;
//!     println!("{} members, {} skipped", summary.members, summary.skipped.len());
//! }
//! # Ok(()) }
//! ```

#[cfg(test)]
mod hostile_tests;
mod tar;
#[cfg(test)]
mod tests;
mod zip;

use std::io::Read;
use std::ops::ControlFlow;

use serde::Deserialize;

/// The separator between an archive member's path and the path of a member of an archive inside
/// it (as in `jar:` URLs).
pub const NESTED_SEPARATOR: &str = "!/";

/// Paths longer than this many bytes are cut (on a character boundary) and end in `…`.
pub const MAX_PATH_BYTES: usize = 1024;

/// What kind of archive a body is, from its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// PKZIP: stored and deflated members are read; the central directory is preferred, local
    /// headers are walked when it is missing (a truncated download).
    Zip,
    /// POSIX ustar, GNU or old V7 TAR (GNU long names and pax `path`/`size` records honoured).
    Tar,
    /// A TAR inside gzip (`.tar.gz`, `.tgz`), read as one stream without unpacking it whole.
    TarGz,
}

/// Bounds on the work one archive body (with everything nested in it) may cause.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveLimits {
    /// Entries of every kind (files, directories, links, nested members) across the whole walk.
    /// Default 10,000.
    pub max_members: u32,
    /// Bytes unpacked across the whole walk, whether handed out or skipped. Default 1 GiB.
    pub max_total_bytes: u64,
    /// Bytes of one member; larger members are skipped ([`SkipReason::TooLarge`]). Default
    /// 64 MiB.
    pub max_member_bytes: u64,
    /// Archive layers opened, the body itself counting as 1; an archive found deeper is skipped
    /// ([`SkipReason::TooDeep`]). Default 3.
    pub max_depth: u32,
    /// Unpacked bytes per compressed byte, per ZIP member and over a whole gzip stream, beyond
    /// [`ratio_free_bytes`](Self::ratio_free_bytes). Default 200 (photos barely compress; bombs
    /// reach 1,000:1 and more).
    pub max_ratio: u32,
    /// Bytes any member or stream may unpack to regardless of the ratio (small files of text
    /// compress well). Default 1 MiB.
    pub ratio_free_bytes: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        Self {
            max_members: 10_000,
            max_total_bytes: 1 << 30,
            max_member_bytes: 64 << 20,
            max_depth: 3,
            max_ratio: 200,
            ratio_free_bytes: 1 << 20,
        }
    }
}

/// One file member: its path inside the archive (nested archives joined by
/// [`NESTED_SEPARATOR`]) and its unpacked bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveMember {
    /// The member's name as text: lossily decoded, control characters replaced by `�`, at most
    /// [`MAX_PATH_BYTES`] per layer. Never a file-system path.
    pub path: String,
    /// The member's unpacked bytes (at most [`ArchiveLimits::max_member_bytes`]).
    pub bytes: Vec<u8>,
}

/// A file member that was seen but not handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedMember {
    /// As [`ArchiveMember::path`].
    pub path: String,
    /// Why it was not handed out.
    pub reason: SkipReason,
}

/// Why a file member was skipped. The walk goes on after each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Larger than [`ArchiveLimits::max_member_bytes`] (declared or found while unpacking).
    TooLarge,
    /// Unpacked beyond [`ArchiveLimits::max_ratio`] of its compressed size.
    RatioExceeded,
    /// Encrypted (ZIP flag bit 0).
    Encrypted,
    /// A ZIP compression method other than stored (0) or deflate (8).
    UnsupportedMethod(u16),
    /// A TAR entry kind that is neither a file, a directory nor a link (sparse, device, fifo).
    UnsupportedEntry,
    /// Its compressed data is corrupt or lies outside the archive.
    Corrupt,
    /// An archive nested deeper than [`ArchiveLimits::max_depth`].
    TooDeep,
    /// A ZIP directory entry pointing at a member an earlier entry already pointed at: one
    /// member's data is read once, however often the directory lists it.
    Repeated,
}

/// What a completed walk saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// The outermost archive's kind.
    pub kind: ArchiveKind,
    /// Entries of every kind seen, nested ones included.
    pub entries: u32,
    /// File members handed to the visitor.
    pub members: u32,
    /// Bytes unpacked in total.
    pub unpacked_bytes: u64,
    /// File members not handed out, with the reason (at most [`ArchiveLimits::max_members`]).
    pub skipped: Vec<SkippedMember>,
    /// Members handed out whose CRC-32 did not match the archive's (ZIP only). Still handed out:
    /// a corrupted checksum must not hide a member from the crawl.
    pub checksum_mismatches: u32,
}

/// Why a walk stopped before the end. Members handed out before the error stay valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// The body is not a ZIP, TAR or gzip-compressed TAR.
    #[error("not a ZIP, TAR or gzip-compressed TAR")]
    NotAnArchive,
    /// The structure ends before it should (after the members already handed out).
    #[error("{kind:?} archive truncated")]
    Truncated { kind: ArchiveKind },
    /// The structure itself is invalid (not one member's data, which is skipped instead).
    #[error("{kind:?} archive malformed: {what}")]
    Malformed {
        kind: ArchiveKind,
        what: &'static str,
    },
    /// More entries than [`ArchiveLimits::max_members`].
    #[error("more than {limit} archive entries")]
    TooManyMembers { limit: u32 },
    /// More unpacked bytes than [`ArchiveLimits::max_total_bytes`].
    #[error("more than {limit} bytes unpacked from the archive")]
    TooManyBytes { limit: u64 },
    /// A gzip stream unpacked beyond [`ArchiveLimits::max_ratio`].
    #[error("gzip stream unpacks beyond {limit}:1")]
    RatioExceeded { limit: u32 },
    /// The visitor returned [`ControlFlow::Break`].
    #[error("stopped by the caller")]
    Stopped,
}

/// The archive kind of `bytes` from magic numbers, or `None`. Cheap: reads a ZIP signature, one
/// TAR header checksum, or inflates at most one 512-byte block of a gzip stream; and looks for a
/// ZIP end record in the last 64 KiB, so that a ZIP appended to other data (a self-extractor, a
/// JPEG with an archive behind it) is recognised too: call it on media bodies as well.
pub fn sniff(bytes: &[u8]) -> Option<ArchiveKind> {
    sniff_start(bytes).or_else(|| zip::appended(bytes).then_some(ArchiveKind::Zip))
}

/// The archive kind announced by the first bytes.
fn sniff_start(bytes: &[u8]) -> Option<ArchiveKind> {
    if zip::starts_as_zip(bytes) {
        return Some(ArchiveKind::Zip);
    }
    if tar::is_header(bytes) {
        return Some(ArchiveKind::Tar);
    }
    if bytes.starts_with(&[0x1F, 0x8B, 0x08]) {
        let mut head = Vec::with_capacity(tar::BLOCK);
        let decoder = flate2::read::MultiGzDecoder::new(bytes);
        // A decoding error just means "not something we open".
        let _ = decoder.take(tar::BLOCK as u64).read_to_end(&mut head);
        if tar::is_header(&head) {
            return Some(ArchiveKind::TarGz);
        }
    }
    None
}

/// Hands every file member of the archive in `bytes` (and of archives nested in it) to
/// `on_member`, one at a time, within `limits`. Members handed out before an error are valid.
pub fn visit<F>(
    bytes: &[u8],
    limits: &ArchiveLimits,
    mut on_member: F,
) -> Result<ArchiveSummary, ArchiveError>
where
    F: FnMut(ArchiveMember) -> ControlFlow<()>,
{
    let kind = sniff(bytes).ok_or(ArchiveError::NotAnArchive)?;
    let mut walk = Walk {
        limits,
        on_member: &mut on_member,
        summary: ArchiveSummary {
            kind,
            entries: 0,
            members: 0,
            unpacked_bytes: 0,
            skipped: Vec::new(),
            checksum_mismatches: 0,
        },
    };
    walk.open(kind, bytes, "", 1)?;
    Ok(walk.summary)
}

/// Every file member of the archive in `bytes`, all held at once: for small archives and tests.
/// Prefer [`visit`], which holds one member at a time and keeps what came before an error.
pub fn members(bytes: &[u8], limits: &ArchiveLimits) -> Result<Vec<ArchiveMember>, ArchiveError> {
    let mut found = Vec::new();
    visit(bytes, limits, |member| {
        found.push(member);
        ControlFlow::Continue(())
    })?;
    Ok(found)
}

/// The state of one walk through an archive tree: limits, running totals, the caller's visitor.
struct Walk<'a> {
    limits: &'a ArchiveLimits,
    on_member: &'a mut dyn FnMut(ArchiveMember) -> ControlFlow<()>,
    summary: ArchiveSummary,
}

impl Walk<'_> {
    /// Opens one archive layer; `prefix` is the path of the member it came from (empty for the
    /// body itself), `depth` its layer (1 for the body).
    fn open(
        &mut self,
        kind: ArchiveKind,
        bytes: &[u8],
        prefix: &str,
        depth: u32,
    ) -> Result<(), ArchiveError> {
        match kind {
            ArchiveKind::Zip => zip::walk(self, bytes, prefix, depth),
            ArchiveKind::Tar => tar::walk(self, kind, bytes, None, prefix, depth),
            ArchiveKind::TarGz => {
                let decoder = flate2::read::MultiGzDecoder::new(bytes);
                tar::walk(self, kind, decoder, Some(bytes.len() as u64), prefix, depth)
            }
        }
    }

    /// Counts one entry of any kind against the member limit.
    fn count_entry(&mut self) -> Result<(), ArchiveError> {
        if self.summary.entries >= self.limits.max_members {
            return Err(ArchiveError::TooManyMembers {
                limit: self.limits.max_members,
            });
        }
        self.summary.entries += 1;
        Ok(())
    }

    /// Bytes that may still be unpacked before the total limit is reached.
    fn remaining_bytes(&self) -> u64 {
        self.limits
            .max_total_bytes
            .saturating_sub(self.summary.unpacked_bytes)
    }

    /// Counts unpacked bytes against the total limit.
    fn add_unpacked(&mut self, n: u64) -> Result<(), ArchiveError> {
        self.summary.unpacked_bytes = self.summary.unpacked_bytes.saturating_add(n);
        if self.summary.unpacked_bytes > self.limits.max_total_bytes {
            return Err(ArchiveError::TooManyBytes {
                limit: self.limits.max_total_bytes,
            });
        }
        Ok(())
    }

    /// Bytes `compressed` input bytes may unpack to under the ratio guard.
    fn ratio_allowance(&self, compressed: u64) -> u64 {
        compressed
            .saturating_mul(u64::from(self.limits.max_ratio))
            .max(self.limits.ratio_free_bytes)
    }

    fn skip(&mut self, path: String, reason: SkipReason) {
        if self.summary.skipped.len() < self.limits.max_members as usize {
            self.summary.skipped.push(SkippedMember { path, reason });
        }
    }

    /// Hands out one unpacked file member, or opens it in place when it is itself an archive.
    /// A media member with a ZIP behind it (a polyglot) is handed out and opened both.
    fn deliver(&mut self, path: String, bytes: Vec<u8>, depth: u32) -> Result<(), ArchiveError> {
        let (kind, polyglot) = match sniff_start(&bytes) {
            Some(kind) => (Some(kind), false),
            // Only media is worth the look for a ZIP behind it (the polyglot trick).
            None if aranea_hash::sniff(&bytes).is_some() && zip::appended(&bytes) => {
                (Some(ArchiveKind::Zip), true)
            }
            None => (None, false),
        };
        let Some(kind) = kind else {
            return self.hand_out(path, bytes);
        };
        if depth >= self.limits.max_depth {
            self.skip(path.clone(), SkipReason::TooDeep);
            return if polyglot {
                self.hand_out(path, bytes)
            } else {
                Ok(())
            };
        }
        let prefix = format!("{path}{NESTED_SEPARATOR}");
        let opened = match self.open(kind, &bytes, &prefix, depth + 1) {
            // A broken inner archive loses its own rest, not the outer archive's.
            Err(ArchiveError::Truncated { .. } | ArchiveError::Malformed { .. }) => {
                self.skip(path.clone(), SkipReason::Corrupt);
                Ok(())
            }
            Err(ArchiveError::RatioExceeded { .. }) => {
                self.skip(path.clone(), SkipReason::RatioExceeded);
                Ok(())
            }
            other => other,
        };
        opened?;
        if polyglot {
            return self.hand_out(path, bytes);
        }
        Ok(())
    }

    fn hand_out(&mut self, path: String, bytes: Vec<u8>) -> Result<(), ArchiveError> {
        self.summary.members += 1;
        match (self.on_member)(ArchiveMember { path, bytes }) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(ArchiveError::Stopped),
        }
    }
}

/// A member name as text for the record: lossy UTF-8, control characters replaced, length cut,
/// prefixed by the enclosing member's path.
fn member_path(prefix: &str, raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut path = String::with_capacity(prefix.len() + text.len().min(MAX_PATH_BYTES + 3));
    path.push_str(prefix);
    let mut used = 0;
    for c in text.chars() {
        if used + c.len_utf8() > MAX_PATH_BYTES {
            path.push('…');
            break;
        }
        used += c.len_utf8();
        path.push(if c.is_control() { '\u{FFFD}' } else { c });
    }
    path
}
