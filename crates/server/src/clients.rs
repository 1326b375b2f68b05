//! API clients: issuing secrets and checking credentials on every request, cheaply.
//!
//! A secret is 32 random bytes (43 characters of URL-safe base64); only its SHA-256 is stored.
//! With that much entropy a fast hash is as safe as a password KDF, and it costs well under a
//! microsecond, so every request can be checked (a KDF at 30,000 requests/s would need tens of
//! cores). Clients are cached in memory and re-read from the database every few seconds, so a
//! revocation or a new client from another process takes effect within that period; an
//! unknown name triggers an early re-read, at most a few times a second.
//!
//! This module must not log or store secrets.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use aranea_store::{ApiClient, NewApiClient, Store, StoreError};

use crate::limits::RateLimiter;

/// Least time between two re-reads caused by unknown names, in ms.
const MISS_REFRESH_GAP_MS: i64 = 250;

/// What a client may call.
pub mod scope {
    /// The Shield-compatible matching API (`/v1/...`).
    pub const SHIELD: &str = "shield";
    /// Submitting URLs and reading their reports.
    pub const INTAKE: &str = "intake";
    /// Reading banks, matches, sightings and statistics.
    pub const READ: &str = "read";
    /// Creating, importing and disabling banks.
    pub const BANKS: &str = "banks";
    /// Every scope above.
    pub const ALL: [&str; 4] = [SHIELD, INTAKE, READ, BANKS];
}

/// A client that proved its identity.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: Arc<str>,
    /// The hotline (its code) the client acts for; `None` for a platform client, which may
    /// act for and read every hotline.
    pub hotline: Option<Arc<str>>,
    scopes: Arc<[String]>,
    pub(crate) limiter: Option<Arc<RateLimiter>>,
}

impl Caller {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether this client may read what belongs to `hotline`.
    pub fn may_read_hotline(&self, hotline: &str) -> bool {
        self.hotline.as_deref().is_none_or(|own| own == hotline)
    }
}

struct Known {
    digest: [u8; 32],
    caller: Caller,
}

/// Why credentials were not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization` header, or not a scheme we read.
    Missing,
    /// Malformed, unknown name, wrong secret or revoked: deliberately one answer.
    Invalid,
}

/// The in-memory view of the `api_clients` table.
pub struct ClientRegistry {
    store: Store,
    known: ArcSwap<HashMap<String, Known>>,
    last_read_ms: AtomicI64,
    /// Reloads run one at a time, so a slow earlier read never replaces a newer one.
    reloading: tokio::sync::Mutex<()>,
    /// This process's name among the servers sharing the clients' rates (crate::limits).
    server_name: String,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl ClientRegistry {
    /// Reads every active client from the store.
    pub async fn load(store: Store) -> Result<ClientRegistry, StoreError> {
        let registry = ClientRegistry {
            store,
            known: ArcSwap::from_pointee(HashMap::new()),
            last_read_ms: AtomicI64::new(0),
            reloading: tokio::sync::Mutex::new(()),
            server_name: server_name(),
        };
        registry.reload().await?;
        Ok(registry)
    }

    /// Re-reads the clients; rate limiters of unchanged clients are kept.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.reloading.lock().await;
        self.last_read_ms.store(now_ms(), Ordering::Relaxed);
        let rows = self.store.api_clients().list().await?;
        let old = self.known.load();
        let mut known = HashMap::with_capacity(rows.len());
        for row in rows.into_iter().filter(|c| c.revoked_at.is_none()) {
            let limiter = match old.get(&row.name) {
                Some(previous)
                    if previous.digest == row.secret_sha256
                        && previous.caller.limiter.as_ref().map(|l| l.per_second())
                            == row.rate_per_second =>
                {
                    previous.caller.limiter.clone()
                }
                _ => row.rate_per_second.map(|r| Arc::new(RateLimiter::new(r))),
            };
            known.insert(
                row.name.clone(),
                Known {
                    digest: row.secret_sha256,
                    caller: Caller {
                        name: row.name.as_str().into(),
                        hotline: row.hotline.as_deref().map(Arc::from),
                        scopes: row.scopes.into(),
                        limiter,
                    },
                },
            );
        }
        self.known.store(Arc::new(known));
        Ok(())
    }

    /// Re-reads the clients every `every` until the task is dropped.
    pub async fn follow(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(error) = self.reload().await {
                tracing::warn!(%error, "reading API clients failed; the previous list stays");
            }
        }
    }

    /// Tells the other servers what each rate-limited client asked of this one over the last
    /// `over`, and sets this server's share of each client's rate from everyone's demand
    /// (crate::limits). Rows of servers silent for `stale_after` are ignored and dropped.
    pub async fn share_rates(
        &self,
        over: Duration,
        stale_after: Duration,
    ) -> Result<(), StoreError> {
        let known = self.known.load();
        let mut limited: Vec<(&str, &RateLimiter, f64)> = Vec::new();
        let mut demands: Vec<(String, i64)> = Vec::new();
        for (name, client) in known.iter() {
            let Some(limiter) = client.caller.limiter.as_deref() else {
                continue;
            };
            let demand = limiter.take_demand(over);
            if let Some(milli) = demand {
                demands.push((name.clone(), milli));
            }
            limited.push((name, limiter, demand.unwrap_or(0) as f64 / 1000.0));
        }
        if limited.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let stale = i64::try_from(stale_after.as_millis()).unwrap_or(i64::MAX);
        let others: HashMap<String, (u32, f64)> = self
            .store
            .api_clients()
            .share_demand(&self.server_name, &demands, now, now.saturating_sub(stale))
            .await?
            .into_iter()
            .map(|o| (o.client, (o.servers, o.demand_milli as f64 / 1000.0)))
            .collect();
        for (name, limiter, own) in limited {
            let (servers, demand) = others.get(name).copied().unwrap_or((0, 0.0));
            let rate = f64::from(limiter.per_second());
            limiter.set_share(crate::limits::share_of_rate(rate, own, servers, demand));
        }
        Ok(())
    }

    /// Shares the clients' rates with the other servers every `every` until the task is
    /// dropped ([`ClientRegistry::share_rates`]); a failed exchange keeps the shares as they
    /// were until the next one.
    pub async fn follow_rates(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut last = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            let now = tokio::time::Instant::now();
            // Three exchanges missed: that server stopped (or cannot reach the database).
            let stale_after = every.saturating_mul(3).max(Duration::from_secs(3));
            if let Err(error) = self.share_rates(now - last, stale_after).await {
                tracing::warn!(%error, "sharing the clients' rates failed; the shares stay");
            }
            last = now;
        }
    }

    /// Checks an `Authorization` header value: `Basic base64(name:secret)` or
    /// `Bearer name:secret`.
    pub async fn authenticate(&self, header: Option<&[u8]>) -> Result<Caller, Refusal> {
        let (name, secret) = parse_authorization(header.ok_or(Refusal::Missing)?)?;
        if let Some(caller) = self.check(&name, &secret) {
            return caller;
        }
        // Unknown name: perhaps added moments ago by `aranea client add`.
        let last = self.last_read_ms.load(Ordering::Relaxed);
        if now_ms() - last >= MISS_REFRESH_GAP_MS
            && self
                .last_read_ms
                .compare_exchange(last, now_ms(), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            && self.reload().await.is_ok()
        {
            return self.check(&name, &secret).unwrap_or(Err(Refusal::Invalid));
        }
        Err(Refusal::Invalid)
    }

    fn check(&self, name: &str, secret: &str) -> Option<Result<Caller, Refusal>> {
        let known = self.known.load();
        let client = known.get(name)?;
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        Some(if bool::from(digest.ct_eq(&client.digest)) {
            Ok(client.caller.clone())
        } else {
            Err(Refusal::Invalid)
        })
    }
}

/// A name no other server process has: the host's, the process id and random bytes (a
/// restarted process is a new server; its old rows go stale).
fn server_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().chars().take(40).collect::<String>())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let mut salt = [0u8; 6];
    let salt = match getrandom::fill(&mut salt) {
        Ok(()) => salt.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        Err(_) => format!("{:x}", now_ms()),
    };
    format!("{host}:{}:{salt}", std::process::id())
}

fn parse_authorization(value: &[u8]) -> Result<(String, String), Refusal> {
    let text = std::str::from_utf8(value).map_err(|_| Refusal::Invalid)?;
    let (scheme, rest) = text.trim().split_once(' ').ok_or(Refusal::Missing)?;
    let pair = if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(rest.trim()).map_err(|_| Refusal::Invalid)?;
        String::from_utf8(decoded).map_err(|_| Refusal::Invalid)?
    } else if scheme.eq_ignore_ascii_case("bearer") {
        rest.trim().to_owned()
    } else {
        return Err(Refusal::Missing);
    };
    let (name, secret) = pair.split_once(':').ok_or(Refusal::Invalid)?;
    Ok((name.to_owned(), secret.to_owned()))
}

/// A newly issued client: the only time its secret exists outside the caller's hands.
#[derive(Debug)]
pub struct IssuedClient {
    pub client: ApiClient,
    pub secret: String,
}

/// Why a client could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("a client named {0:?} exists (revoked names stay taken)")]
    NameTaken(String),
    #[error("client name {0:?}: use 1-100 letters, digits, '-', '_' or '.'")]
    BadName(String),
    #[error("unknown scope {0:?} (known: shield, intake, read, banks)")]
    UnknownScope(String),
    #[error(
        "a client bound to hotline {0:?} cannot have the banks scope: every hotline's matching reads the banks, so only a platform client may change them"
    )]
    BoundBanks(String),
    #[error("no secure random numbers: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a platform client (one that may act for every hotline) with a fresh secret.
pub async fn issue_client(
    store: &Store,
    name: &str,
    scopes: &[String],
    rate_per_second: Option<u32>,
) -> Result<IssuedClient, IssueError> {
    issue_hotline_client(store, name, scopes, rate_per_second, None).await
}

/// Creates a client with a fresh secret, bound to `hotline` (a registered hotline's code)
/// when given: it then submits reports only to that hotline and reads only its reports,
/// notices and removal statistics, and may not have the `banks` scope (the banks are every
/// hotline's).
pub async fn issue_hotline_client(
    store: &Store,
    name: &str,
    scopes: &[String],
    rate_per_second: Option<u32>,
    hotline: Option<&str>,
) -> Result<IssuedClient, IssueError> {
    let name_ok = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !name_ok {
        return Err(IssueError::BadName(name.to_owned()));
    }
    if let Some(unknown) = scopes.iter().find(|s| !scope::ALL.contains(&s.as_str())) {
        return Err(IssueError::UnknownScope(unknown.clone()));
    }
    if let Some(hotline) = hotline
        && scopes.iter().any(|s| s == scope::BANKS)
    {
        return Err(IssueError::BoundBanks(hotline.to_owned()));
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| IssueError::Random(e.to_string()))?;
    let secret = URL_SAFE_NO_PAD.encode(raw);
    let new = NewApiClient {
        name: name.to_owned(),
        secret_sha256: Sha256::digest(secret.as_bytes()).into(),
        scopes: scopes.to_vec(),
        rate_per_second,
        hotline: hotline.map(str::to_owned),
    };
    match store.api_clients().add(&new, now_ms()).await? {
        Some(client) => Ok(IssuedClient { client, secret }),
        None => Err(IssueError::NameTaken(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_headers_parse_or_are_refused() {
        let basic = format!("Basic {}", STANDARD.encode("acme:s3cret:with:colons"));
        assert_eq!(
            parse_authorization(basic.as_bytes()),
            Ok(("acme".into(), "s3cret:with:colons".into()))
        );
        assert_eq!(
            parse_authorization(b"Bearer acme:xyz"),
            Ok(("acme".into(), "xyz".into()))
        );
        assert_eq!(parse_authorization(b"Digest abc"), Err(Refusal::Missing));
        assert_eq!(parse_authorization(b"Basic"), Err(Refusal::Missing));
        assert_eq!(parse_authorization(b"Basic !!!"), Err(Refusal::Invalid));
        let no_colon = format!("Basic {}", STANDARD.encode("acme"));
        assert_eq!(
            parse_authorization(no_colon.as_bytes()),
            Err(Refusal::Invalid)
        );
        let not_utf8 = format!("Basic {}", STANDARD.encode([0xff, 0xfe, b':', 0x80]));
        assert_eq!(
            parse_authorization(not_utf8.as_bytes()),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            parse_authorization(&[0xff, 0x20, 0x41]),
            Err(Refusal::Invalid)
        );
    }
}
