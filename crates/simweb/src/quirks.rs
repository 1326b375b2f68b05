//! Misbehaving endpoints of hostile sites (`/quirks/…`): what a crawler's limits and guards
//! must survive (the crawler traps are in `traps`).
//!
//! Bodies are bounded on our side too (endless stops at a cap, bombs are built once).
//! Must not send traffic anywhere: redirects to private addresses are only Location headers.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::Shared;
use crate::http::{Body, Request, Response};
use crate::pages::broken_html;
use crate::world::{Site, Transform};

/// Decompressed size of the gzip bomb.
pub const GZIP_BOMB_INFLATED: u64 = 256 * 1024 * 1024;
/// Bytes actually sent by the lying-length endpoint (it claims 1,024).
pub const LENGTH_LIE_ACTUAL: usize = 8 * 1024 * 1024;

const LINKS: &[&str] = &[
    "length-lie.jpg",
    "short-body.jpg",
    "drip.html",
    "endless.html",
    "gzip-bomb.html",
    "no-type.jpg",
    "wrong-type.html",
    "html-as-image.jpg",
    "broken.html",
    "redirect/chain/5",
    "redirect/loop-a",
    "redirect/private",
    "redirect/metadata",
    "redirect/loopback",
    "redirect/other-host",
    "redirect/relative",
];

pub async fn respond(shared: &Arc<Shared>, site: &Site, request: &Request) -> Response {
    let path = request.path();
    let Some(rest) = path.strip_prefix("/quirks/") else {
        return not_found();
    };
    match rest {
        "" => {
            let links: String = LINKS
                .iter()
                .map(|l| format!("<li><a href=\"/quirks/{l}\">{l}</a></li>\n"))
                .collect();
            Response::html(
                200,
                format!("<html><body><h1>Odd corners</h1><ul>\n{links}</ul></body></html>"),
            )
        }
        "length-lie.jpg" => Response {
            body: Body::LyingLength {
                claimed: 1024,
                actual: Arc::new(vec![0xFF; LENGTH_LIE_ACTUAL]),
            },
            ..Response::new(200, Some("image/jpeg"), Vec::new())
        },
        "short-body.jpg" => Response {
            body: Body::LyingLength {
                claimed: 100_000,
                actual: Arc::new(vec![0xD8; 1000]),
            },
            ..Response::new(200, Some("image/jpeg"), Vec::new())
        },
        "drip.html" => Response {
            body: Body::Drip {
                total: 4096,
                chunk: 16,
                every: Duration::from_millis(250),
            },
            ..Response::new(200, Some("text/html"), Vec::new())
        },
        "endless.html" => Response {
            body: Body::Endless,
            ..Response::new(200, Some("text/html"), Vec::new())
        },
        "gzip-bomb.html" => {
            let bomb = gzip_bomb(shared).await;
            Response::shared(200, "text/html", bomb).with_header("Content-Encoding", "gzip")
        }
        "no-type.jpg" => match known_image(shared).await {
            Some(bytes) => Response {
                body: Body::Full(bytes),
                ..Response::new(200, None, Vec::new())
            },
            None => not_found(),
        },
        "wrong-type.html" => match known_image(shared).await {
            Some(bytes) => Response::shared(200, "text/html; charset=utf-8", bytes),
            None => not_found(),
        },
        "html-as-image.jpg" => Response::new(
            200,
            Some("image/jpeg"),
            b"<html><body><a href=\"/\">not an image</a></body></html>".to_vec(),
        ),
        "broken.html" => {
            let first = site.pages.iter().flat_map(|p| p.items.iter()).next();
            let img = first
                .and_then(|&id| shared.world.items.get(id))
                .map(|i| i.path.clone());
            Response::html(200, broken_html(img.as_deref()))
        }
        "redirect/loop-a" => Response::redirect(302, "/quirks/redirect/loop-b"),
        "redirect/loop-b" => Response::redirect(302, "/quirks/redirect/loop-a"),
        "redirect/private" => Response::redirect(302, "http://10.0.0.1/admin"),
        "redirect/metadata" => Response::redirect(302, "http://169.254.169.254/latest/meta-data/"),
        "redirect/loopback" => Response::redirect(301, "http://127.0.0.1/"),
        "redirect/relative" => Response::redirect(302, "../broken.html"),
        "redirect/other-host" => {
            let other = shared.world.sites.iter().find(|s| s.id != site.id);
            match other {
                Some(o) => Response::redirect(301, &format!("http://{}:{}/", o.host, shared.port)),
                None => not_found(),
            }
        }
        other => match other
            .strip_prefix("redirect/chain/")
            .and_then(|n| n.parse::<u32>().ok())
        {
            Some(0) => Response::redirect(302, "/"),
            Some(n) => Response::redirect(
                if n % 2 == 0 { 301 } else { 307 },
                &format!("/quirks/redirect/chain/{}", n - 1),
            ),
            None => not_found(),
        },
    }
}

fn not_found() -> Response {
    Response::html(404, "<h1>Not Found</h1>".to_owned())
}

/// The first known photo as served unchanged, so a content-type lie still hides a real match.
async fn known_image(shared: &Arc<Shared>) -> Option<Arc<Vec<u8>>> {
    let source = *shared.world.known.first()?;
    let task = shared.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        task.media
            .render(&task.world.corpus, source, Transform::Original)
    });
    rendered.await.ok()?.ok().map(|r| r.bytes)
}

async fn gzip_bomb(shared: &Arc<Shared>) -> Arc<Vec<u8>> {
    if let Some(bomb) = shared.gzip_bomb.get() {
        return bomb.clone();
    }
    let built = tokio::task::spawn_blocking(build_gzip_bomb)
        .await
        .unwrap_or_default();
    shared.gzip_bomb.get_or_init(|| Arc::new(built)).clone()
}

fn build_gzip_bomb() -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..GZIP_BOMB_INFLATED / zeros.len() as u64 {
        if encoder.write_all(&zeros).is_err() {
            break;
        }
    }
    encoder.finish().unwrap_or_default()
}
