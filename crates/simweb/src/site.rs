//! The web servers of the simulated hosts: routes a request by Host header and local address
//! to a site's pages, images, robots.txt, traps and misbehaviours, applying the provider's
//! serving behaviour (rate limits, slowness) and the state at the current simulated time.
//!
//! Every request is logged. Must not change the world's state except the request log.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use crate::Shared;
use crate::clock::real_unix_millis;
use crate::http::{Request, Response, Service};
use crate::pages;
use crate::quirks;
use crate::scenario::RobotsVariant;
use crate::state::{ItemStatus, RequestRecord};
use crate::traps;
use crate::world::Site;

pub struct HostService {
    pub shared: Arc<Shared>,
}

impl Service for HostService {
    async fn call(&self, request: Request) -> Response {
        let response = self.route(&request).await;
        let shared = &self.shared;
        if let Ok(mut state) = shared.state.lock() {
            state.log(RequestRecord {
                host: request.host(),
                local: request.local,
                peer: request.peer,
                method: request.method.clone(),
                target: request.target.clone(),
                status: response.status,
                unix_millis: real_unix_millis(),
                sim_at: shared.clock.now(),
            });
        }
        response
    }
}

impl HostService {
    async fn route(&self, request: &Request) -> Response {
        let shared = &self.shared;
        let world = &shared.world;
        let now = shared.clock.now();
        let IpAddr::V4(local_ip) = request.local.ip() else {
            return Response::text(421, "IPv4 only");
        };
        let Some(site) = world.site_by_host(&request.host()) else {
            return Response::html(
                404,
                "<h1>Unknown site</h1><p>No site with this name on this server.</p>".to_owned(),
            );
        };
        if !self.serves_here(site, local_ip, now) {
            return Response::html(
                404,
                "<h1>Site not found</h1><p>This server does not host that site.</p>".to_owned(),
            );
        }
        if site.https && !request.tls {
            let location = format!(
                "https://{}:{}{}",
                site.host,
                shared.https_port.unwrap_or(443),
                request.target
            );
            return Response::redirect(301, &location);
        }
        if request.method != "GET" && request.method != "HEAD" {
            return Response::text(405, "method not allowed").with_header("Allow", "GET, HEAD");
        }
        let serving = world
            .provider_of_ip(local_ip)
            .map(|(p, _)| p.serving.clone())
            .unwrap_or_default();
        let admitted = shared.state.lock().map_or(true, |mut s| {
            s.admit(
                local_ip,
                serving.rate_limit_per_second,
                real_unix_millis() / 1000,
            )
        });
        if !admitted {
            return Response::text(429, "slow down").with_header("Retry-After", "2");
        }
        let mut response = self.content(site, request, now).await;
        response.delay = Duration::from_millis(serving.slow_ms);
        response
    }

    /// A site answers on its current DNS address and, like real origins, on its origin address.
    fn serves_here(&self, site: &Site, ip: Ipv4Addr, now: Duration) -> bool {
        let Ok(state) = self.shared.state.lock() else {
            return false;
        };
        let world = &self.shared.world;
        state.site_address(world, site.id, now) == Some(ip)
            || state.site_origin(world, site.id, now).map(|(_, o)| o) == Some(ip)
    }

    async fn content(&self, site: &Site, request: &Request, now: Duration) -> Response {
        let path = request.path();
        if path == "/robots.txt" {
            return robots(site);
        }
        if let Some((content_type, bytes)) =
            (self.shared.extra_files).get(&(site.host.clone(), path.to_owned()))
        {
            return Response::shared(200, content_type, bytes.clone());
        }
        if site.hostile && path.starts_with("/quirks/") {
            return quirks::respond(&self.shared, site, request).await;
        }
        if let Some(response) = traps::respond(&self.shared.world, site, path, &request.target) {
            return response;
        }
        if let Some(response) = crate::archive_sites::respond(&self.shared, site, path).await {
            return response;
        }
        if let Some(response) = self.media(site, path, now).await {
            return response;
        }
        self.page(site, &request.target, now)
            .unwrap_or_else(|| match path {
                "/style.css" => Response::new(
                    200,
                    Some("text/css"),
                    b"body{font-family:sans-serif}img{max-width:100%}".to_vec(),
                ),
                "/about.html" => Response::html(
                    200,
                    format!(
                        "<h1>About {}</h1><p><a href=\"/\">home</a></p>",
                        pages::escape(&site.host)
                    ),
                ),
                _ => Response::html(404, "<h1>Not Found</h1>".to_owned()),
            })
    }

    async fn media(&self, site: &Site, path: &str, now: Duration) -> Option<Response> {
        let shared = &self.shared;
        let (item, status) = {
            let state = shared.state.lock().ok()?;
            let item = state.item_at(&shared.world, site.id, path)?.clone();
            let status = state.status(&shared.world, item.id, now);
            (item, status)
        };
        Some(match status {
            ItemStatus::Live => {
                // Rendering decodes and encodes an image: off the reactor. A cached copy
                // needs no thread handoff (two context switches per image served).
                let rendered = match shared.media.cached(item.source, item.transform) {
                    Some(copy) => Ok(Ok(copy)),
                    None => {
                        let task_shared = shared.clone();
                        tokio::task::spawn_blocking(move || {
                            task_shared.media.render(
                                &task_shared.world.corpus,
                                item.source,
                                item.transform,
                            )
                        })
                        .await
                    }
                };
                match rendered {
                    Ok(Ok(r)) => Response::shared(200, r.content_type, r.bytes)
                        .with_header("Cache-Control", "max-age=3600"),
                    _ => Response::text(500, "image unavailable"),
                }
            }
            ItemStatus::Placeholder => {
                Response::shared(200, "image/png", shared.media.placeholder())
            }
            ItemStatus::Gone | ItemStatus::NotYetUp => {
                Response::html(404, "<h1>Not Found</h1>".to_owned())
            }
        })
    }

    fn page(&self, site: &Site, target: &str, now: Duration) -> Option<Response> {
        let world = &self.shared.world;
        let page = world
            .page(site.id, target)
            .or_else(|| world.page(site.id, target.split('?').next()?))?;
        let state = self.shared.state.lock().ok()?;
        let mut items: Vec<_> = page
            .items
            .iter()
            .filter_map(|&id| state.item(world, id))
            .collect();
        items.extend(state.reuploads_on(site.id, &page.path, now));
        Some(Response::html(200, pages::render(site, page, &items)))
    }
}

fn robots(site: &Site) -> Response {
    let text = match site.robots {
        RobotsVariant::Allow => "User-agent: *\nDisallow:\n",
        RobotsVariant::DisallowAll => "User-agent: *\nDisallow: /\n",
        RobotsVariant::DisallowPrivate => {
            "User-agent: *\nDisallow: /private/\nDisallow: /files/\nDisallow: /b/\n"
        }
        RobotsVariant::CrawlDelay => "User-agent: *\nCrawl-delay: 2\nDisallow: /private/\n",
        RobotsVariant::Garbage => {
            return Response::html(200, "<html><body>\u{0}\u{7f}User-agent * Disallow = yes please;;;\n\n\u{feff}Crawl-delay: banana</body></html>".to_owned());
        }
        RobotsVariant::Missing => return Response::html(404, "<h1>Not Found</h1>".to_owned()),
    };
    Response::text(200, text)
}
