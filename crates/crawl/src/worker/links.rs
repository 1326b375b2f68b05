//! From links found (or URLs given) to frontier entries: canonical form, the deny-list,
//! host key and registrable domain, depth and priority.

use aranea_store::{NewUrl, Priority, ReportId, UnixMillis, UrlId, UrlSource};
use url::Url;

use crate::canonical::{CanonicalConfig, canonicalize, registrable_domain};

/// Names the service a URL belongs to if the deny-list keeps the crawler off it.
pub(crate) type DenyRule = dyn Fn(&Url) -> Option<String> + Send + Sync;

/// A URL ready to enqueue, or why it is not crawled.
pub(crate) fn frontier_entry(
    url: &Url,
    canonical: &CanonicalConfig,
    deny: &DenyRule,
) -> Result<(Url, String, String), String> {
    let url = canonicalize(url, canonical).map_err(|e| e.to_string())?;
    if let Some(service) = deny(&url) {
        return Err(format!("deny-listed service: {service}"));
    }
    let host_key = url.origin().ascii_serialization();
    let domain = registrable_domain(&url)
        .or_else(|| url.host_str().map(str::to_owned))
        .unwrap_or_default();
    Ok((url, host_key, domain))
}

/// Where a new frontier entry comes from.
pub(crate) struct Origin {
    pub source: UrlSource,
    pub priority: Priority,
    pub depth: u32,
    pub parent: Option<UrlId>,
    pub report: Option<ReportId>,
    pub not_before: UnixMillis,
}

pub(crate) fn new_url(url: &Url, host_key: String, domain: String, origin: &Origin) -> NewUrl {
    NewUrl {
        url: url.as_str().to_owned(),
        host_key,
        registrable_domain: domain,
        source: origin.source,
        priority: origin.priority,
        depth: origin.depth,
        next_fetch_at: origin.not_before,
        report_id: origin.report,
        parent: origin.parent,
    }
}

/// The per-path budget key of `url`: its origin and first `segments` directory segments.
pub(crate) fn path_prefix(url: &Url, segments: usize) -> String {
    let path = url.path();
    let mut end = 1;
    for _ in 0..segments {
        match path.get(end..).and_then(|rest| rest.find('/')) {
            Some(slash) => end += slash + 1,
            None => break,
        }
    }
    let dir = path.get(..end).unwrap_or("/");
    format!("{}{}", url.origin().ascii_serialization(), dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_prefix_keeps_the_leading_directories() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            path_prefix(&url("http://a.sim:8080/calendar/2024/01/"), 1),
            "http://a.sim:8080/calendar/"
        );
        assert_eq!(
            path_prefix(&url("http://a.sim/calendar/2024/01/"), 2),
            "http://a.sim/calendar/2024/"
        );
        assert_eq!(
            path_prefix(&url("http://a.sim/page.html"), 1),
            "http://a.sim/"
        );
        assert_eq!(path_prefix(&url("http://a.sim/"), 3), "http://a.sim/");
    }
}
