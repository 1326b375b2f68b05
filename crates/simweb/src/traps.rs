//! Crawler traps: an endless calendar (`/calendar/`), a shop that puts a fresh session id in
//! every link (`/shop/`), and a path that repeats itself ever deeper (`/topics/`). Each mints
//! new URLs forever; only a crawler's budgets, depth limit and URL canonicalisation end them.
//!
//! With `trap_images` on a site, every trap page shows photos from a small pool of the site's
//! own (the first one known when the site carries known photos at all), as a real trap on a
//! site of interest does: then matching does not take the trap out of a crawler's scope.
//!
//! Trap pages are minted from the URL alone, never stored. Must not serve the pool photos
//! themselves (they are ordinary media items, served by `site`).

use std::fmt::Write;

use crate::http::Response;
use crate::pages::escape;
use crate::rng::{Rng, fnv1a};
use crate::scenario::{SiteSpec, Trap};
use crate::world::{ItemId, Site, SiteId, Transform, World};

/// How deep `/topics/` goes before it answers 404 (so the server's own work stays bounded).
pub const DEEP_PATH_LEVELS: usize = 64;

/// Adds the site's trap photo pool to the world, from a stream of its own so that worlds
/// without trap photos stay what they were.
pub(crate) fn build_pool(
    world: &mut World,
    site: SiteId,
    spec: &SiteSpec,
    seed: u64,
) -> Vec<ItemId> {
    if spec.traps.is_empty() || spec.trap_images == 0 {
        return Vec::new();
    }
    let mut rng = Rng::derive(seed, &format!("trap-media:{}", spec.host));
    let interesting = spec.known_share > 0.0 && !world.known.is_empty();
    (0..spec.trap_images)
        .map(|n| {
            let share = if n == 0 && interesting {
                1.0
            } else {
                spec.known_share
            };
            let source = world.draw_source(&mut rng, share);
            let path = format!(
                "/media/events/{}.{}",
                rng.token(10),
                world.corpus.ext(source)
            );
            world.new_item(site, path, source, Transform::Original)
        })
        .collect()
}

/// The trap page at `path` (`target`: path and query), if the site carries that trap.
pub(crate) fn respond(world: &World, site: &Site, path: &str, target: &str) -> Option<Response> {
    let trap = trap_at(path)?;
    if !site.traps.contains(&trap) {
        return None;
    }
    let photos = photos(world, site, target);
    Some(match trap {
        Trap::Calendar => calendar(path, &photos),
        Trap::SessionId => session_shop(target, &photos),
        Trap::DeepPath => deep_path(path, &photos),
    })
}

/// The trap whose pages live under `path`.
fn trap_at(path: &str) -> Option<Trap> {
    if path.starts_with("/calendar/") {
        Some(Trap::Calendar)
    } else if path.starts_with("/shop/") {
        Some(Trap::SessionId)
    } else if path.starts_with("/topics/") {
        Some(Trap::DeepPath)
    } else {
        None
    }
}

/// The pool's first photo and one more chosen by the URL, as `<img>` tags.
fn photos(world: &World, site: &Site, target: &str) -> String {
    let pool = &site.trap_media;
    let mut chosen: Vec<ItemId> = pool.first().copied().into_iter().collect();
    if pool.len() > 1 {
        let n = fnv1a(target.as_bytes()) as usize % (pool.len() - 1);
        chosen.extend(pool.get(1 + n).copied());
    }
    chosen
        .iter()
        .filter_map(|&id| world.items.get(id))
        .fold(String::new(), |mut out, item| {
            let _ = write!(
                out,
                "<p><img src=\"{}\" alt=\"event photo\"></p>",
                escape(&item.path)
            );
            out
        })
}

fn not_found() -> Response {
    Response::html(404, "<h1>Not Found</h1>".to_owned())
}

/// An endless calendar: every month links to the next and previous one and to its 28 days
/// (the same month under another query), forever.
fn calendar(path: &str, photos: &str) -> Response {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (Some(&"calendar"), Some(y), Some(m)) = (parts.first(), parts.get(1), parts.get(2)) else {
        return not_found();
    };
    let (Ok(year), Ok(month)) = (y.parse::<u32>(), m.parse::<u32>()) else {
        return not_found();
    };
    if !(1..=12).contains(&month) || !(1..=99_999).contains(&year) {
        return not_found();
    }
    let (py, pm) = if month == 1 {
        (year.saturating_sub(1).max(1), 12)
    } else {
        (year, month - 1)
    };
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let days: String = (1..=28)
        .map(|d| format!("<a href=\"/calendar/{year}/{month:02}/?day={d}\">{d}</a> "))
        .collect();
    Response::html(
        200,
        format!(
            "<html><body><h1>Events {year}-{month:02}</h1><a href=\"/calendar/{py}/{pm:02}/\">previous</a> \
             <a href=\"/calendar/{ny}/{nm:02}/\">next</a><p>{days}</p>{photos}<p>No events.</p></body></html>"
        ),
    )
}

/// A shop whose links each carry a fresh session id (as `sid`, `PHPSESSID` or a
/// `;jsessionid=` path parameter): the same few pages under endless URLs.
fn session_shop(target: &str, photos: &str) -> Response {
    let mut rng = Rng::new(fnv1a(target.as_bytes()));
    let links: String = (1..=5)
        .map(|n| {
            let token = rng.token(16);
            let href = match n % 3 {
                0 => format!("/shop/item/{n};jsessionid={token}"),
                1 => format!("/shop/item/{n}?sid={token}"),
                _ => format!("/shop/item/{n}?PHPSESSID={token}"),
            };
            format!("<li><a href=\"{href}\">Item {n}</a></li>")
        })
        .collect();
    Response::html(
        200,
        format!(
            "<html><body><h1>Shop</h1><p>Welcome back, visitor!</p><ul>{links}</ul>{photos}</body></html>"
        ),
    )
}

/// A page under `/topics/` whose relative links repeat the path one level deeper
/// (`/topics/topics/older/…`), up to [`DEEP_PATH_LEVELS`].
fn deep_path(path: &str, photos: &str) -> Response {
    let levels = path.trim_matches('/').split('/').count();
    if levels > DEEP_PATH_LEVELS || !path.ends_with('/') {
        return not_found();
    }
    Response::html(
        200,
        format!(
            "<html><body><h1>Topics</h1><a href=\"topics/\">related topics</a> \
             <a href=\"older/\">older posts</a>{photos}</body></html>"
        ),
    )
}
