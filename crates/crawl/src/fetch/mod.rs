//! Fetching one URL within limits: the SSRF guard on every hop, a total deadline, a body cap
//! counted after decompression, redirects followed by hand, and the body's type by sniffing.
//!
//! [`Fetcher::fetch`] never panics on what a server sends and always returns a [`Fetch`]: the
//! hops it followed and either a [`Response`] (any status) or a typed [`FetchError`]. It must
//! not retry, wait for politeness or decide what to fetch next: that is the frontier's job.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, LOCATION};
use tokio::time::{Instant, timeout_at};
use url::Url;

use crate::ssrf::{AddressPolicy, GuardConfig, GuardError, GuardedResolver};

mod kind;
pub use kind::{BodyKind, body_kind};

/// How the fetcher behaves; every limit has a default.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Addresses, ports, schemes and name servers. Default: [`GuardConfig::default`] (public
    /// addresses only, system resolver).
    pub guard: GuardConfig,
    /// Time to open a TCP (and TLS) connection. Default: 10 s.
    pub connect_timeout: Duration,
    /// Longest silence while reading. Default: 15 s.
    pub read_timeout: Duration,
    /// The whole fetch — every redirect hop and the full body — must end within this. It is
    /// what defeats servers that drip a byte at a time. Default: 30 s.
    pub total_timeout: Duration,
    /// Largest body kept, counted after decompression. Default: 32 MiB.
    pub max_body_bytes: u64,
    /// Redirects followed before giving up. Default: 10.
    pub max_redirects: usize,
    /// Sent as `User-Agent`. Default: `aranea-crawler/VERSION`.
    pub user_agent: String,
    /// Certificate trust.
    pub tls: TlsConfig,
    /// Follow no redirect: a redirect ends the fetch with [`FetchError::Redirected`] (after
    /// the guard has checked the target), so the frontier can queue the target as a URL of
    /// its own, with politeness between hops and dedup ending loops. Default: false.
    pub redirects_to_caller: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            guard: GuardConfig::default(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(15),
            total_timeout: Duration::from_secs(30),
            max_body_bytes: 32 * 1024 * 1024,
            max_redirects: 10,
            user_agent: concat!("aranea-crawler/", env!("CARGO_PKG_VERSION")).to_owned(),
            tls: TlsConfig::default(),
            redirects_to_caller: false,
        }
    }
}

/// Which certificates are trusted.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Trust the operating system's roots. Default: true.
    pub system_roots: bool,
    /// Further root certificates (PEM), e.g. the simulated web's CA. Default: none.
    pub extra_roots_pem: Vec<String>,
    /// Hosts whose certificate problems are recorded but do not stop the fetch (evidence
    /// collection on sites with broken TLS). Default: none — every problem is an error.
    pub accept_invalid_certs_for: Vec<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            system_roots: true,
            extra_roots_pem: Vec::new(),
            accept_invalid_certs_for: Vec::new(),
        }
    }
}

/// Why building a [`Fetcher`] failed.
#[derive(Debug, thiserror::Error)]
pub enum FetcherSetupError {
    #[error(transparent)]
    Guard(#[from] GuardError),
    #[error("root certificate is not valid PEM: {message}")]
    BadRootCertificate { message: String },
    /// reqwest's error is the source, left out of the message (see [`crate::config::ConfigError`]).
    #[error("building the HTTP client")]
    Client(#[from] reqwest::Error),
}

/// Why a fetch ended without a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("refused by the SSRF guard: {0}")]
    Refused(GuardError),
    #[error("connected to {ip}, which the guard does not admit ({range})")]
    ConnectedToForbiddenAddress { ip: IpAddr, range: &'static str },
    #[error("more than {limit} redirects")]
    TooManyRedirects { limit: usize },
    #[error("redirected ({status}) to {location}")]
    Redirected { status: u16, location: Url },
    #[error("redirect with a missing or unusable Location {location:?}")]
    BadRedirect { location: Option<String> },
    #[error("no connection within the connect timeout")]
    ConnectTimeout,
    #[error("server silent for longer than the read timeout")]
    ReadTimeout,
    #[error("fetch not finished within the total deadline of {limit:?}")]
    TotalDeadline { limit: Duration },
    #[error("body larger than {limit} bytes (after decompression)")]
    BodyTooLarge { limit: u64 },
    #[error("body ended after {received} bytes of the {declared:?} declared: {message}")]
    BodyIncomplete {
        received: u64,
        declared: Option<u64>,
        message: String,
    },
    #[error("certificate rejected: {reason}")]
    Certificate { reason: String },
    #[error("could not connect: {message}")]
    Connect { message: String },
    #[error("HTTP error: {message}")]
    Protocol { message: String },
}

/// One redirect followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub url: Url,
    pub status: u16,
    pub server_ip: Option<IpAddr>,
}

/// The outcome of [`Fetcher::fetch`].
#[derive(Debug, Clone)]
pub struct Fetch {
    /// The URL asked for.
    pub requested: Url,
    /// Redirect responses, in order (the final response is not among them).
    pub redirects: Vec<Hop>,
    pub outcome: Result<Response, FetchError>,
    /// Wall time of the whole fetch (the frontier scales its politeness delay by it).
    pub elapsed: Duration,
}

/// How the certificate was judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsStatus {
    /// Plain HTTP.
    None,
    /// Verified against the trusted roots.
    Verified,
    /// Failed verification for `reason` and was accepted because the host is configured so.
    AcceptedInvalid { reason: String },
}

/// The HTTP version a response came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    Http1,
    Http2,
    Other,
}

/// A complete response (any status) with its body.
#[derive(Debug, Clone)]
pub struct Response {
    pub final_url: Url,
    pub status: u16,
    pub server_ip: Option<IpAddr>,
    pub http_version: HttpVersion,
    /// `Content-Type` as the server claimed it (never trusted for the type).
    pub content_type: Option<String>,
    /// `Retry-After` as sent (seconds or an HTTP date); see [`Response::retry_after_seconds`].
    pub retry_after: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub body: Bytes,
    /// Only the first bytes were kept ([`Fetcher::fetch_prefix`]).
    pub truncated: bool,
    pub kind: BodyKind,
    pub tls: TlsStatus,
}

impl Response {
    /// `Retry-After` when given in seconds (the HTTP-date form is left to the caller).
    pub fn retry_after_seconds(&self) -> Option<u64> {
        self.retry_after.as_deref()?.trim().parse().ok()
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What to do with a body over the limit.
#[derive(Debug, Clone, Copy)]
enum BodyLimit {
    Fail(u64),
    Truncate(u64),
}

/// The limits one fetch runs under, across all its hops.
#[derive(Debug, Clone, Copy)]
struct Budget {
    deadline: Instant,
    body: BodyLimit,
    /// Follow redirects here even when the config hands them to the caller.
    follow_redirects: bool,
}

/// A client with the guard, limits and trust of one [`FetchConfig`]. Cheap to share.
#[derive(Clone)]
pub struct Fetcher {
    strict: reqwest::Client,
    /// For hosts in `accept_invalid_certs_for` only, after the strict client failed.
    lenient: Option<reqwest::Client>,
    policy: Arc<AddressPolicy>,
    config: Arc<FetchConfig>,
}

impl Fetcher {
    /// Builds the clients. Installs rustls' ring provider as the process default if none is
    /// installed yet (the tree carries only ring).
    pub fn new(config: FetchConfig) -> Result<Fetcher, FetcherSetupError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let policy = Arc::new(AddressPolicy::new(&config.guard));
        let resolver = GuardedResolver::new(&config.guard, policy.clone())?;
        let mut roots = Vec::new();
        for pem in &config.tls.extra_roots_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
                FetcherSetupError::BadRootCertificate {
                    message: e.to_string(),
                }
            })?;
            roots.extend(certs);
        }
        let build = |lenient: bool| {
            let builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .dns_resolver(resolver.clone())
                .connect_timeout(config.connect_timeout)
                .read_timeout(config.read_timeout)
                .user_agent(config.user_agent.clone())
                .referer(false);
            let builder = if config.tls.system_roots {
                builder.tls_certs_merge(roots.clone())
            } else {
                builder.tls_certs_only(roots.clone())
            };
            builder.tls_danger_accept_invalid_certs(lenient).build()
        };
        let strict = build(false)?;
        let lenient = if config.tls.accept_invalid_certs_for.is_empty() {
            None
        } else {
            Some(build(true)?)
        };
        Ok(Fetcher {
            strict,
            lenient,
            policy,
            config: Arc::new(config),
        })
    }

    /// The policy this fetcher enforces (for callers that pre-filter URLs).
    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    /// Fetches `url`, following redirects, within the configured limits. A body over
    /// `max_body_bytes` is an error ([`FetchError::BodyTooLarge`]).
    pub async fn fetch(&self, url: &Url) -> Fetch {
        let follow = !self.config.redirects_to_caller;
        self.fetch_with(url, BodyLimit::Fail(self.config.max_body_bytes), follow)
            .await
    }

    /// Fetches `url` but keeps only its first `max_bytes` (at most `max_body_bytes`) and stops
    /// reading there, marking the response [`Response::truncated`]: for robots.txt, which is
    /// read up to a size and not refused for being longer. Redirects are followed (up to
    /// `max_redirects`, every hop through the guard) even by a fetcher that hands them to its
    /// caller: a robots.txt is read where it leads (RFC 9309 asks for at least five), and a
    /// site that sends http to https or to its `www.` host would otherwise have none.
    pub async fn fetch_prefix(&self, url: &Url, max_bytes: u64) -> Fetch {
        let limit = max_bytes.min(self.config.max_body_bytes);
        self.fetch_with(url, BodyLimit::Truncate(limit), true).await
    }

    async fn fetch_with(&self, url: &Url, body: BodyLimit, follow_redirects: bool) -> Fetch {
        let started = Instant::now();
        let budget = Budget {
            deadline: started + self.config.total_timeout,
            body,
            follow_redirects,
        };
        let mut redirects = Vec::new();
        let outcome = self.follow(url.clone(), budget, &mut redirects).await;
        Fetch {
            requested: url.clone(),
            redirects,
            outcome,
            elapsed: started.elapsed(),
        }
    }

    async fn follow(
        &self,
        mut url: Url,
        budget: Budget,
        redirects: &mut Vec<Hop>,
    ) -> Result<Response, FetchError> {
        loop {
            self.policy.check_url(&url).map_err(FetchError::Refused)?;
            let (response, tls) = self.send(&url, budget.deadline).await?;
            let server_ip = response.remote_addr().map(|a| a.ip());
            if let Some(ip) = server_ip {
                self.policy
                    .check_ip(ip)
                    .map_err(|range| FetchError::ConnectedToForbiddenAddress { ip, range })?;
            }
            let status = response.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                return self
                    .read_response(url, response, server_ip, tls, budget)
                    .await;
            }
            let location = header(response.headers(), LOCATION);
            let next = location.as_deref().and_then(|l| url.join(l).ok()).ok_or(
                FetchError::BadRedirect {
                    location: location.clone(),
                },
            )?;
            if !budget.follow_redirects {
                self.policy.check_url(&next).map_err(FetchError::Refused)?;
                return Err(FetchError::Redirected {
                    status,
                    location: next,
                });
            }
            redirects.push(Hop {
                url,
                status,
                server_ip,
            });
            if redirects.len() > self.config.max_redirects {
                return Err(FetchError::TooManyRedirects {
                    limit: self.config.max_redirects,
                });
            }
            url = next;
        }
    }

    /// Sends one GET; on a certificate problem retries with the lenient client if the host
    /// is configured for it.
    async fn send(
        &self,
        url: &Url,
        deadline: Instant,
    ) -> Result<(reqwest::Response, TlsStatus), FetchError> {
        let https = url.scheme() == "https";
        let plain = if https {
            TlsStatus::Verified
        } else {
            TlsStatus::None
        };
        let error = match self.send_with(&self.strict, url, deadline).await? {
            Ok(response) => return Ok((response, plain)),
            Err(error) => error,
        };
        let mapped = self.map_error(&error);
        let FetchError::Certificate { reason } = &mapped else {
            return Err(mapped);
        };
        let allowed = url.host_str().is_some_and(|host| {
            self.config
                .tls
                .accept_invalid_certs_for
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host))
        });
        match (&self.lenient, allowed) {
            (Some(lenient), true) => match self.send_with(lenient, url, deadline).await? {
                Ok(response) => Ok((
                    response,
                    TlsStatus::AcceptedInvalid {
                        reason: reason.clone(),
                    },
                )),
                Err(error) => Err(self.map_error(&error)),
            },
            _ => Err(mapped),
        }
    }

    async fn send_with(
        &self,
        client: &reqwest::Client,
        url: &Url,
        deadline: Instant,
    ) -> Result<Result<reqwest::Response, reqwest::Error>, FetchError> {
        timeout_at(deadline, client.get(url.clone()).send())
            .await
            .map_err(|_| self.deadline())
    }

    fn deadline(&self) -> FetchError {
        FetchError::TotalDeadline {
            limit: self.config.total_timeout,
        }
    }

    async fn read_response(
        &self,
        final_url: Url,
        mut response: reqwest::Response,
        server_ip: Option<IpAddr>,
        tls: TlsStatus,
        budget: Budget,
    ) -> Result<Response, FetchError> {
        let deadline = budget.deadline;
        let headers = response.headers().clone();
        let http_version = match response.version() {
            reqwest::Version::HTTP_10 | reqwest::Version::HTTP_11 => HttpVersion::Http1,
            reqwest::Version::HTTP_2 => HttpVersion::Http2,
            _ => HttpVersion::Other,
        };
        let (limit, truncate) = match budget.body {
            BodyLimit::Fail(limit) => (limit, false),
            BodyLimit::Truncate(limit) => (limit, true),
        };
        let mut truncated = false;
        let encoded = headers.contains_key(reqwest::header::CONTENT_ENCODING);
        let declared = header(&headers, reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.trim().parse::<u64>().ok());
        // A declared length over the cap fails before a byte is read; with a content-coding
        // the length is of the compressed form, so only the streamed count decides.
        if !truncate && !encoded && declared.is_some_and(|d| d > limit) {
            return Err(FetchError::BodyTooLarge { limit });
        }
        let mut body = BytesMut::new();
        loop {
            let chunk = timeout_at(deadline, response.chunk())
                .await
                .map_err(|_| self.deadline())?;
            match chunk {
                Ok(Some(chunk)) => {
                    let room = limit.saturating_sub(body.len() as u64);
                    if chunk.len() as u64 > room {
                        if !truncate {
                            return Err(FetchError::BodyTooLarge { limit });
                        }
                        // Dropping the response closes the connection: nothing more is read.
                        let keep = usize::try_from(room).unwrap_or(usize::MAX);
                        body.extend_from_slice(chunk.get(..keep).unwrap_or_default());
                        truncated = true;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) => {
                    return Err(match self.map_error(&error) {
                        FetchError::Protocol { message } => FetchError::BodyIncomplete {
                            received: body.len() as u64,
                            declared: if encoded { None } else { declared },
                            message,
                        },
                        other => other,
                    });
                }
            }
        }
        let body = body.freeze();
        let content_type = header(&headers, reqwest::header::CONTENT_TYPE);
        let kind = body_kind(&body, content_type.as_deref());
        Ok(Response {
            final_url,
            status: response.status().as_u16(),
            server_ip,
            http_version,
            retry_after: header(&headers, reqwest::header::RETRY_AFTER),
            etag: header(&headers, reqwest::header::ETAG),
            last_modified: header(&headers, reqwest::header::LAST_MODIFIED),
            content_type,
            body,
            truncated,
            kind,
            tls,
        })
    }

    fn map_error(&self, error: &reqwest::Error) -> FetchError {
        if let Some(guard) = find_source::<GuardError>(error) {
            return FetchError::Refused(guard.clone());
        }
        if let Some(reason) = certificate_problem(error) {
            return FetchError::Certificate { reason };
        }
        let message = chain_message(error);
        if error.is_timeout() {
            if error.is_connect() {
                FetchError::ConnectTimeout
            } else {
                FetchError::ReadTimeout
            }
        } else if error.is_connect() {
            FetchError::Connect { message }
        } else {
            FetchError::Protocol { message }
        }
    }
}

fn header(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Walks an error's sources, looking inside `io::Error`s too (whose `source()` skips the
/// error they wrap).
fn find_source<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            // io::Errors nest (hyper wraps rustls' io::Error in another): look at each.
            current = Some(inner);
            continue;
        }
        current = e.source();
    }
    None
}

fn certificate_problem(error: &reqwest::Error) -> Option<String> {
    match find_source::<rustls::Error>(error)? {
        e @ (rustls::Error::InvalidCertificate(_)
        | rustls::Error::NoCertificatesPresented
        | rustls::Error::InvalidCertRevocationList(_)) => Some(e.to_string()),
        _ => None,
    }
}

fn chain_message(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut current = error.source();
    while let Some(e) = current {
        message.push_str(": ");
        message.push_str(&e.to_string());
        current = e.source();
    }
    message
}
