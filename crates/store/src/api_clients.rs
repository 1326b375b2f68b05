//! API clients of the server: a name, the SHA-256 of its secret, scopes and a rate limit.
//!
//! Shield-compatible clients (HTTP Basic) and native API keys are the same records. This
//! module only records them; generating secrets, checking them and enforcing scopes and rates
//! is the server's job. Secrets themselves are never stored.

use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::{StoreError, check_text};

/// Longest client name accepted, in bytes.
pub const MAX_CLIENT_NAME_BYTES: usize = 100;
/// Longest scope list accepted, in bytes.
pub const MAX_SCOPES_BYTES: usize = 1000;

/// A client to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApiClient {
    pub name: String,
    /// SHA-256 of the secret.
    pub secret_sha256: [u8; 32],
    /// Scope names (e.g. `shield`, `intake`); meaning is the server's.
    pub scopes: Vec<String>,
    /// Requests per second allowed; `None` for no limit.
    pub rate_per_second: Option<u32>,
    /// The hotline (its code) this client acts for and reads; `None` for a platform client.
    pub hotline: Option<String>,
}

/// A recorded client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiClient {
    pub id: i64,
    pub name: String,
    pub secret_sha256: [u8; 32],
    pub scopes: Vec<String>,
    pub rate_per_second: Option<u32>,
    /// The hotline (its code) this client acts for and reads; `None` for a platform client.
    pub hotline: Option<String>,
    pub created_at: UnixMillis,
    /// When set, the client may no longer authenticate.
    pub revoked_at: Option<UnixMillis>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    for (slot, pair) in out.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

fn client_from_row(row: &impl Get) -> Result<ApiClient, StoreError> {
    let digest = row.text("secret_sha256")?;
    let secret_sha256 = unhex32(&digest).ok_or(StoreError::Corrupt {
        what: "client secret digest",
        value: digest,
    })?;
    let rate = row.opt_i64("rate_per_second")?;
    Ok(ApiClient {
        id: row.i64("id")?,
        name: row.text("name")?,
        secret_sha256,
        scopes: row
            .text("scopes")?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        rate_per_second: rate.map(|r| u32::try_from(r).unwrap_or(u32::MAX)),
        hotline: row.opt_text("hotline")?,
        created_at: row.i64("created_at")?,
        revoked_at: row.opt_i64("revoked_at")?,
    })
}

/// API clients: add, list, revoke.
pub struct ApiClients<'a> {
    backend: &'a crate::backend::Backend,
}

impl<'a> ApiClients<'a> {
    pub(crate) fn new(backend: &'a crate::backend::Backend) -> Self {
        ApiClients { backend }
    }

    /// Records a client; `None` when the name is taken (revoked names stay taken, so old
    /// logs keep naming one client). A client bound to a hotline that is not registered is
    /// refused with [`StoreError::UnknownHotline`] and nothing is written.
    pub async fn add(
        &self,
        client: &NewApiClient,
        now: UnixMillis,
    ) -> Result<Option<ApiClient>, StoreError> {
        check_text("client name", &client.name, MAX_CLIENT_NAME_BYTES, false)?;
        let scopes = client.scopes.join(" ");
        check_text("scopes", &scopes, MAX_SCOPES_BYTES, true)?;
        if let Some(hotline) = &client.hotline {
            check_text("hotline", hotline, MAX_CLIENT_NAME_BYTES, false)?;
        }
        if let Some(rate) = client.rate_per_second
            && rate == 0
        {
            return Err(StoreError::OutOfRange {
                field: "rate_per_second",
                value: 0,
                min: 1,
                max: i64::from(u32::MAX),
            });
        }
        // One statement, so a hotline removed meanwhile cannot slip in between the check
        // and the insert; no row back means the name was taken or the hotline is unknown.
        const SQL: &str = "INSERT INTO api_clients \
            (name, secret_sha256, scopes, rate_per_second, hotline, created_at) \
            SELECT $1, $2, $3, $4, $5, $6 \
            WHERE $5 IS NULL OR EXISTS (SELECT 1 FROM hotlines WHERE code = $5) \
            ON CONFLICT (name) DO NOTHING \
            RETURNING id, name, secret_sha256, scopes, rate_per_second, hotline, created_at, \
            revoked_at";
        let added = on_backend!(self.backend, |pool, d| {
            let row = sqlx::query(SQL)
                .bind(&client.name)
                .bind(hex(&client.secret_sha256))
                .bind(&scopes)
                .bind(client.rate_per_second.map(i64::from))
                .bind(client.hotline.as_deref())
                .bind(now)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(client_from_row).transpose()
        })?;
        if added.is_some() {
            return Ok(added);
        }
        match &client.hotline {
            Some(code) if !self.hotline_exists(code).await? => {
                Err(StoreError::UnknownHotline { code: code.clone() })
            }
            _ => Ok(None),
        }
    }

    async fn hotline_exists(&self, code: &str) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT 1 AS one FROM hotlines WHERE code = $1";
        on_backend!(self.backend, |pool, d| {
            Ok(sqlx::query(SQL)
                .bind(code)
                .fetch_optional(pool)
                .await?
                .is_some())
        })
    }

    /// Every client, revoked ones included, by name.
    pub async fn list(&self) -> Result<Vec<ApiClient>, StoreError> {
        const SQL: &str = "SELECT id, name, secret_sha256, scopes, rate_per_second, hotline, \
            created_at, revoked_at FROM api_clients ORDER BY name";
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(SQL).fetch_all(pool).await?;
            rows.iter().map(client_from_row).collect()
        })
    }

    /// Revokes the client named `name` at `now`; false when no active client has that name.
    pub async fn revoke(&self, name: &str, now: UnixMillis) -> Result<bool, StoreError> {
        check_text("client name", name, MAX_CLIENT_NAME_BYTES, false)?;
        const SQL: &str =
            "UPDATE api_clients SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL";
        on_backend!(self.backend, |pool, d| {
            let done = sqlx::query(SQL).bind(now).bind(name).execute(pool).await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Records what `server` (a process's own name, unique per run) was asked lately: each
    /// of `demands` is a client's name and the requests per second it sent to this server,
    /// in thousandths. Rows not written since `fresh_after` (of servers that stopped) are
    /// ignored, and deleted when this server writes. Returns, for every client some other
    /// server wrote a row for, how many other servers did and the sum of their demands: what
    /// a server needs to take its share of the client's rate.
    pub async fn share_demand(
        &self,
        server: &str,
        demands: &[(String, i64)],
        now: UnixMillis,
        fresh_after: UnixMillis,
    ) -> Result<Vec<OthersDemand>, StoreError> {
        check_text("server name", server, MAX_CLIENT_NAME_BYTES, false)?;
        const UPSERT: &str = "INSERT INTO api_client_demand (client, server, demand_milli, \
            seen_at) VALUES ($1, $2, $3, $4) ON CONFLICT (client, server) DO UPDATE SET \
            demand_milli = excluded.demand_milli, seen_at = excluded.seen_at";
        const DROP_STALE: &str = "DELETE FROM api_client_demand WHERE seen_at <= $1";
        const OTHERS: &str = "SELECT client, COUNT(*) AS servers, \
            CAST(SUM(demand_milli) AS BIGINT) AS demand FROM api_client_demand \
            WHERE server <> $1 AND seen_at > $2 GROUP BY client ORDER BY client";
        on_backend!(self.backend, |pool, d| {
            // A server asked nothing has nothing to write: it only reads (no write lock
            // taken each second on SQLite by idle servers).
            let rows = if demands.is_empty() {
                sqlx::query(OTHERS)
                    .bind(server)
                    .bind(fresh_after)
                    .fetch_all(pool)
                    .await?
            } else {
                let mut tx = pool.begin_with(d.begin_write()).await?;
                for (client, demand_milli) in demands {
                    sqlx::query(UPSERT)
                        .bind(client)
                        .bind(server)
                        .bind((*demand_milli).max(0))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(DROP_STALE)
                    .bind(fresh_after)
                    .execute(&mut *tx)
                    .await?;
                let rows = sqlx::query(OTHERS)
                    .bind(server)
                    .bind(fresh_after)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows
            };
            rows.iter()
                .map(|row| {
                    Ok(OthersDemand {
                        client: row.text("client")?,
                        servers: u32::try_from(row.i64("servers")?).unwrap_or(u32::MAX),
                        demand_milli: row.i64("demand")?,
                    })
                })
                .collect()
        })
    }
}

/// What the other servers of a deployment were asked by one client lately
/// ([`ApiClients::share_demand`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OthersDemand {
    pub client: String,
    /// How many other servers this client sent requests to.
    pub servers: u32,
    /// The sum of their demands, in thousandths of a request per second.
    pub demand_milli: i64,
}
