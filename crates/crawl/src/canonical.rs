//! URL canonicalisation for the frontier's dedup, and the registrable domain for its budgets.
//!
//! Two URLs that name the same resource should canonicalise to the same string, so the
//! frontier fetches it once: lowercase scheme and host (the `url` crate's WHATWG parsing does
//! that, removes default ports and resolves dot segments), no fragment, no session-id
//! parameters (a trap that mints a fresh URL per visit), optionally sorted query parameters.
//! This module must not fetch anything and must not change what a URL names beyond these
//! rules (no `www.` stripping, no case folding of paths: servers may treat them differently).

use url::{Host, Url};

/// Canonicalisation rules.
#[derive(Debug, Clone)]
pub struct CanonicalConfig {
    /// Query and path (`;name=…`) parameters removed, compared without case. Default:
    /// `jsessionid`, `phpsessid`, `sid`, `sessionid`, `session_id`, `aspsessionid`, `cfid`,
    /// `cftoken`.
    pub session_params: Vec<String>,
    /// Sort query parameters by name (stable, so repeated names keep their order). Off by
    /// default: some servers give parameter order a meaning.
    pub sort_query: bool,
    /// Longest canonical URL accepted, in bytes. Default: 4,096.
    pub max_length: usize,
}

impl Default for CanonicalConfig {
    fn default() -> Self {
        CanonicalConfig {
            session_params: [
                "jsessionid",
                "phpsessid",
                "sid",
                "sessionid",
                "session_id",
                "aspsessionid",
                "cfid",
                "cftoken",
            ]
            .map(str::to_owned)
            .to_vec(),
            sort_query: false,
            max_length: 4096,
        }
    }
}

/// Why a URL has no canonical form. The message is kept as a refused URL's reason, so it
/// names the parser's complaint itself; the complaint is therefore not also the error's
/// source (a chain printer would print it twice).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("not a URL: {0}")]
    Parse(url::ParseError),
    #[error("scheme {scheme:?} is not crawled")]
    NotHttp { scheme: String },
    #[error("URL has no host")]
    NoHost,
    #[error("URL is {length} bytes long (limit {limit})")]
    TooLong { length: usize, limit: usize },
}

/// Parses and canonicalises `text`.
pub fn canonicalize_str(text: &str, config: &CanonicalConfig) -> Result<Url, CanonicalError> {
    if text.len() > config.max_length.saturating_mul(4) {
        // Do not even parse absurdly long input.
        return Err(CanonicalError::TooLong {
            length: text.len(),
            limit: config.max_length,
        });
    }
    canonicalize(&Url::parse(text).map_err(CanonicalError::Parse)?, config)
}

/// The canonical form of `url`.
pub fn canonicalize(url: &Url, config: &CanonicalConfig) -> Result<Url, CanonicalError> {
    let scheme = url.scheme();
    if scheme != "http" && scheme != "https" {
        return Err(CanonicalError::NotHttp {
            scheme: scheme.to_owned(),
        });
    }
    let mut out = url.clone();
    out.set_fragment(None);
    // http(s) URLs always have a host; a trailing dot names the same host.
    match out.host() {
        None => return Err(CanonicalError::NoHost),
        Some(Host::Domain(domain)) if domain.ends_with('.') && domain.len() > 1 => {
            let trimmed = domain.trim_end_matches('.').to_owned();
            if trimmed.is_empty() || out.set_host(Some(&trimmed)).is_err() {
                return Err(CanonicalError::NoHost);
            }
        }
        Some(_) => {}
    }
    let path = strip_path_params(out.path(), &config.session_params);
    if path != out.path() {
        out.set_path(&path);
    }
    let kept: Vec<(String, String)> = out
        .query_pairs()
        .filter(|(name, _)| !is_session_param(name, &config.session_params))
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        out.set_query(None);
    } else if config.sort_query || removed_any(&out, &kept) {
        // Rewritten only when something changes, so untouched queries keep their encoding.
        let mut kept = kept;
        if config.sort_query {
            kept.sort_by(|a, b| a.0.cmp(&b.0));
        }
        out.query_pairs_mut().clear().extend_pairs(kept);
    }
    let length = out.as_str().len();
    if length > config.max_length {
        return Err(CanonicalError::TooLong {
            length,
            limit: config.max_length,
        });
    }
    Ok(out)
}

fn removed_any(url: &Url, kept: &[(String, String)]) -> bool {
    url.query_pairs().count() != kept.len()
}

fn is_session_param(name: &str, params: &[String]) -> bool {
    params.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// Removes `;jsessionid=…`-style parameters from each path segment.
fn strip_path_params(path: &str, params: &[String]) -> String {
    if !path.contains(';') {
        return path.to_owned();
    }
    path.split('/')
        .map(|segment| {
            let mut parts = segment.split(';');
            let head = parts.next().unwrap_or_default();
            let kept: Vec<&str> = parts
                .filter(|p| {
                    let name = p.split('=').next().unwrap_or_default();
                    !is_session_param(name, params)
                })
                .collect();
            std::iter::once(head)
                .chain(kept)
                .collect::<Vec<_>>()
                .join(";")
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The registrable domain ("eTLD+1") of a URL's host from the public suffix list: the unit of
/// per-domain budgets. IP hosts are their own domain; names under an unknown suffix (such as
/// the simulated web's `.sim`) count the last label as the suffix.
pub fn registrable_domain(url: &Url) -> Option<String> {
    match url.host()? {
        Host::Ipv4(ip) => Some(ip.to_string()),
        Host::Ipv6(ip) => Some(ip.to_string()),
        Host::Domain(domain) => {
            let domain = domain.trim_end_matches('.');
            psl::domain_str(domain).map(str::to_owned)
        }
    }
}

#[cfg(test)]
#[path = "canonical_tests.rs"]
mod tests;
