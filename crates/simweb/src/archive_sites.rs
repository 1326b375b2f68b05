//! Archives of corpus photos (`.zip`, `.tar.gz`) linked from simulated sites' pages, as some
//! hosting sites serve images in bulk, with the ground truth of every member.
//!
//! Off unless a scenario asks (`archives` on a site, `archive_share` under `[generate]`), and
//! drawn from their own seeded streams, so existing worlds are unchanged. Archives are always
//! live: notices do not remove them. Must not decide anything about ordinary media items.

use std::sync::Arc;

use serde::Serialize;

use crate::archives::{self, ZipMethod};
use crate::http::Response;
use crate::rng::Rng;
use crate::scenario::SiteSpec;
use crate::world::{Page, Site, Transform, World};
use crate::{RunningWorld, Shared};

/// The container format of a served archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveFormat {
    Zip,
    TarGz,
}

/// One archive a site serves.
#[derive(Debug, Clone)]
pub struct SiteArchive {
    pub path: String,
    pub format: ArchiveFormat,
    pub images: Vec<ArchivedImage>,
    /// A text member that is not an image (crawlers must pass over it).
    pub readme: String,
}

/// One photo inside an archive.
#[derive(Debug, Clone, Serialize)]
pub struct ArchivedImage {
    /// The member's path inside the archive.
    pub member_path: String,
    /// Index into the corpus.
    pub source: usize,
    pub transform: Transform,
    pub known: bool,
}

/// Ground truth for one served archive.
#[derive(Debug, Clone, Serialize)]
pub struct ServedArchive {
    pub url: String,
    pub host: String,
    pub path: String,
    pub format: ArchiveFormat,
    pub members: Vec<ServedArchiveMember>,
}

/// Ground truth for one photo inside a served archive.
#[derive(Debug, Clone, Serialize)]
pub struct ServedArchiveMember {
    pub member_path: String,
    /// The corpus file it is a copy of.
    pub source_file: String,
    pub transform: Transform,
    pub known: bool,
}

/// Draws a site's archives and links each from one of its pages (the first content page, else
/// the home page).
pub(crate) fn build(
    world: &World,
    spec: &SiteSpec,
    seed: u64,
    host: &str,
    pages: &mut [Page],
) -> Vec<SiteArchive> {
    if spec.archives == 0 {
        return Vec::new();
    }
    let mut rng = Rng::derive(seed, &format!("archives:{host}"));
    // Archives on a site that carries known photos always hold some: that is why they exist.
    let known_share = if spec.known_share > 0.0 {
        spec.known_share.max(0.5)
    } else {
        0.0
    };
    let mut out = Vec::new();
    for n in 0..spec.archives {
        let slug = format!("{}-{}", crate::names::word(&mut rng), rng.token(4));
        let format = if n % 2 == 0 {
            ArchiveFormat::Zip
        } else {
            ArchiveFormat::TarGz
        };
        let ext = match format {
            ArchiveFormat::Zip => "zip",
            ArchiveFormat::TarGz => "tar.gz",
        };
        let count = rng.range(3, 6);
        let images = (0..count)
            .map(|k| {
                let source = world.draw_source(&mut rng, known_share);
                let transform = if rng.chance(0.7) {
                    Transform::Original
                } else {
                    Transform::Reencode {
                        quality: rng.range(70, 90) as u8,
                    }
                };
                let ext = transform.ext().unwrap_or(world.corpus.ext(source));
                // Names as cameras and people write them: nested folders, spaces, non-ASCII.
                let member_path = match k % 3 {
                    0 => format!("{slug}/IMG_{:04}.{ext}", rng.range(1, 9999)),
                    1 => format!("{slug}/set {k}/фото {k}.{ext}"),
                    _ => format!("{}.{ext}", rng.token(8)),
                };
                ArchivedImage {
                    member_path,
                    source,
                    known: world.known.binary_search(&source).is_ok(),
                    transform,
                }
            })
            .collect();
        let path = format!("/downloads/{slug}.{ext}");
        let linking = usize::from(pages.len() > 1);
        if let Some(page) = pages.get_mut(linking) {
            page.links.push(path.clone());
        }
        out.push(SiteArchive {
            path,
            format,
            images,
            readme: format!("{slug}/README.txt"),
        });
    }
    out
}

/// Serves an archive of `site` at `path`, if there is one.
pub(crate) async fn respond(shared: &Arc<Shared>, site: &Site, path: &str) -> Option<Response> {
    let archive = site.archives.iter().find(|a| a.path == path)?.clone();
    let task_shared = shared.clone();
    let built = tokio::task::spawn_blocking(move || render(&task_shared, &archive)).await;
    Some(match built {
        Ok(Some((content_type, bytes))) => Response::new(200, Some(content_type), bytes),
        _ => Response::text(500, "archive unavailable"),
    })
}

/// The archive's bytes and content type, members rendered as the site's images are.
fn render(shared: &Shared, archive: &SiteArchive) -> Option<(&'static str, Vec<u8>)> {
    let world = &shared.world;
    let mut members: Vec<(String, Arc<Vec<u8>>)> = Vec::new();
    for image in &archive.images {
        let rendered = shared
            .media
            .render(&world.corpus, image.source, image.transform)
            .ok()?;
        members.push((image.member_path.clone(), rendered.bytes));
    }
    let readme = Arc::new(b"Photos from our trip. Enjoy!\n".to_vec());
    members.push((archive.readme.clone(), readme));
    Some(match archive.format {
        ArchiveFormat::Zip => {
            let list: Vec<(&str, &[u8], ZipMethod)> = members
                .iter()
                .enumerate()
                .map(|(i, (p, b))| {
                    let method = if i % 2 == 0 {
                        ZipMethod::Deflated
                    } else {
                        ZipMethod::Stored
                    };
                    (p.as_str(), b.as_slice(), method)
                })
                .collect();
            ("application/zip", archives::zip(&list))
        }
        ArchiveFormat::TarGz => {
            let list: Vec<(&str, &[u8])> = members
                .iter()
                .map(|(p, b)| (p.as_str(), b.as_slice()))
                .collect();
            ("application/gzip", archives::tar_gz(&list))
        }
    })
}

impl RunningWorld {
    /// Every archive the world's sites serve, with the photos inside (member paths as written
    /// in the archive; each archive also holds one `README.txt` that is not a photo).
    pub fn archives(&self) -> Vec<ServedArchive> {
        let world = &self.shared.world;
        world
            .sites
            .iter()
            .flat_map(|site| {
                site.archives.iter().map(move |a| ServedArchive {
                    url: self.url(&site.host, &a.path),
                    host: site.host.clone(),
                    path: a.path.clone(),
                    format: a.format,
                    members: a
                        .images
                        .iter()
                        .map(|i| ServedArchiveMember {
                            member_path: i.member_path.clone(),
                            source_file: world.corpus.file_name(i.source).to_owned(),
                            transform: i.transform,
                            known: i.known,
                        })
                        .collect(),
                })
            })
            .collect()
    }
}
