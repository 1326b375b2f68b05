//! Media type from magic bytes.
//!
//! Only the leading bytes decide: never a file name, an extension or a Content-Type, all of which
//! a hostile host controls independently of what a decoder will actually see.

use std::fmt;

/// A media type recognised from its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaKind {
    Jpeg,
    Png,
    Gif,
    Webp,
    Bmp,
    Mp4,
    Webm,
    Matroska,
    Avi,
    Mov,
}

impl MediaKind {
    /// Every kind, images first.
    pub const ALL: [MediaKind; 10] = [
        MediaKind::Jpeg,
        MediaKind::Png,
        MediaKind::Gif,
        MediaKind::Webp,
        MediaKind::Bmp,
        MediaKind::Mp4,
        MediaKind::Webm,
        MediaKind::Matroska,
        MediaKind::Avi,
        MediaKind::Mov,
    ];

    /// True for the container formats that hold moving pictures.
    pub const fn is_video(self) -> bool {
        matches!(
            self,
            Self::Mp4 | Self::Webm | Self::Matroska | Self::Avi | Self::Mov
        )
    }

    /// The IANA media type.
    pub const fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
            Self::Bmp => "image/bmp",
            Self::Mp4 => "video/mp4",
            Self::Webm => "video/webm",
            Self::Matroska => "video/x-matroska",
            Self::Avi => "video/x-msvideo",
            Self::Mov => "video/quicktime",
        }
    }

    /// A short lowercase name, as printed in `aranea hash` records.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::Webp => "webp",
            Self::Bmp => "bmp",
            Self::Mp4 => "mp4",
            Self::Webm => "webm",
            Self::Matroska => "matroska",
            Self::Avi => "avi",
            Self::Mov => "mov",
        }
    }

    /// The inverse of [`MediaKind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The media type of `bytes`, from magic bytes only; `None` if it matches nothing known.
pub fn sniff(bytes: &[u8]) -> Option<MediaKind> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(MediaKind::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(MediaKind::Png);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Some(MediaKind::Gif);
    }
    if bytes.starts_with(b"RIFF") {
        return match bytes.get(8..12) {
            Some(b"WEBP") => Some(MediaKind::Webp),
            Some(b"AVI ") => Some(MediaKind::Avi),
            _ => None,
        };
    }
    if bytes.starts_with(b"BM") && is_bmp_info_header(bytes) {
        return Some(MediaKind::Bmp);
    }
    if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Some(matroska_flavour(bytes));
    }
    iso_media_kind(bytes)
}

/// "BM" alone is too weak a signature (plain text starts with it); the DIB header size that
/// follows the 14-byte file header takes one of a handful of values.
fn is_bmp_info_header(bytes: &[u8]) -> bool {
    let Some(size) = bytes.get(14..18) else {
        return false;
    };
    let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]);
    matches!(size, 12 | 16 | 40 | 52 | 56 | 64 | 108 | 124)
}

/// WebM is Matroska with DocType "webm"; the DocType sits in the EBML header near the start.
fn matroska_flavour(bytes: &[u8]) -> MediaKind {
    let head = &bytes[..bytes.len().min(64)];
    if head.windows(4).any(|window| window == b"webm") {
        MediaKind::Webm
    } else {
        MediaKind::Matroska
    }
}

/// ISO base media files (MP4, QuickTime) start with a box whose type is at offset 4.
fn iso_media_kind(bytes: &[u8]) -> Option<MediaKind> {
    match bytes.get(4..8)? {
        b"ftyp" => match bytes.get(8..12)? {
            b"qt  " => Some(MediaKind::Mov),
            _ => Some(MediaKind::Mp4),
        },
        // Old QuickTime files have no ftyp box and open with one of these.
        b"moov" | b"mdat" | b"wide" | b"free" | b"skip" | b"pnot" => Some(MediaKind::Mov),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_decide_the_kind() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Some(MediaKind::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some(MediaKind::Png));
        assert_eq!(sniff(b"GIF89a...."), Some(MediaKind::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(MediaKind::Webp));
        assert_eq!(sniff(b"RIFF\0\0\0\0AVI LIST"), Some(MediaKind::Avi));
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), None);
        let mut bmp = b"BM\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
        bmp.extend_from_slice(&40u32.to_le_bytes());
        assert_eq!(sniff(&bmp), Some(MediaKind::Bmp));
        assert_eq!(sniff(b"BMW is a car brand, not a bitmap"), None);
        assert_eq!(sniff(b"\0\0\0\x18ftypisom\0\0\0\0"), Some(MediaKind::Mp4));
        assert_eq!(sniff(b"\0\0\0\x14ftypqt  \0\0\0\0"), Some(MediaKind::Mov));
        assert_eq!(
            sniff(b"\x1A\x45\xDF\xA3\x9f\x42\x82\x84webm"),
            Some(MediaKind::Webm)
        );
        assert_eq!(
            sniff(b"\x1A\x45\xDF\xA3\x9f\x42\x82\x88matroska"),
            Some(MediaKind::Matroska)
        );
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"<html>"), None);
    }

    #[test]
    fn names_round_trip_and_videos_are_flagged() {
        for kind in MediaKind::ALL {
            assert_eq!(MediaKind::from_name(kind.name()), Some(kind));
            assert_eq!(kind.is_video(), kind.mime().starts_with("video/"));
        }
    }
}
