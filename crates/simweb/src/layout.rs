//! URL shapes per site kind (so a forum looks like a forum to a crawler) and the draw of how
//! each image is transformed. Must not allocate ids or touch the world: `world` does that.

use crate::rng::Rng;
use crate::scenario::SiteKind;
use crate::world::Transform;

/// URL shapes per site kind, so a forum looks like a forum to a crawler.
pub struct Layout {
    kind: SiteKind,
    pub noun: &'static str,
}

impl Layout {
    pub fn for_kind(kind: SiteKind) -> Layout {
        let noun = match kind {
            SiteKind::Gallery => "Album",
            SiteKind::Forum => "Thread",
            SiteKind::Directory => "Index of",
            SiteKind::Imageboard => "Thread",
            SiteKind::Plain => "Post",
        };
        Layout { kind, noun }
    }

    pub fn page_path(&self, section: u32, slug: &str, k: u32) -> String {
        let base = match self.kind {
            SiteKind::Gallery => format!("/album/{slug}/"),
            SiteKind::Forum => format!("/thread/{section}-{slug}/"),
            SiteKind::Directory => format!("/files/{slug}/"),
            SiteKind::Imageboard => format!("/b/res/{}.html", 1000 + section),
            SiteKind::Plain => format!("/blog/{slug}.html"),
        };
        match (k, self.kind) {
            (0, _) => base,
            (_, SiteKind::Directory) => {
                format!("{base}?C=M&O={}", if k % 2 == 1 { "D" } else { "A" })
            }
            _ => format!("{base}?page={}", k + 1),
        }
    }

    pub fn item_path(&self, section: u32, slug: &str, name: &str, ext: &str) -> String {
        match self.kind {
            SiteKind::Gallery => format!("/images/{name}.{ext}"),
            SiteKind::Forum => format!("/attachments/{section}/{name}.{ext}"),
            SiteKind::Directory => format!("/files/{slug}/{name}.{ext}"),
            SiteKind::Imageboard => format!("/b/src/{name}.{ext}"),
            SiteKind::Plain => format!("/static/{name}.{ext}"),
        }
    }

    pub fn thumb_path(&self, _section: u32, _slug: &str, name: &str) -> Option<String> {
        match self.kind {
            SiteKind::Gallery => Some(format!("/thumbs/{name}.jpg")),
            SiteKind::Imageboard => Some(format!("/b/thumb/{name}s.jpg")),
            _ => None,
        }
    }
}

pub fn draw_transform(rng: &mut Rng) -> Transform {
    match rng.below(100) {
        0..=49 => Transform::Original,
        50..=64 => Transform::Reencode {
            quality: rng.range(45, 85) as u8,
        },
        65..=74 => Transform::Resize {
            percent: rng.range(50, 90) as u8,
        },
        75..=84 => Transform::Crop {
            percent: rng.range(1, 2) as u8,
        },
        85..=94 => Transform::Watermark,
        _ => Transform::ConvertPng,
    }
}
