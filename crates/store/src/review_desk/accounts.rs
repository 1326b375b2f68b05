//! Hotlines (tenants), their users and users' server-side sessions.

use super::{HotlineId, ReviewDesk, UserId, flag};
use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::{StoreError, check_range, check_text};
use crate::frontier::text_enum;

const MAX_NAME: usize = 200;

/// A user's role. Permissions are the review crate's business; the store only keeps the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserRole {
    Analyst,
    SeniorAnalyst,
    HotlineOperator,
    Auditor,
    PlatformAdmin,
}

text_enum!(UserRole, "user role", {
    Analyst => "analyst", SeniorAnalyst => "senior_analyst",
    HotlineOperator => "hotline_operator", Auditor => "auditor", PlatformAdmin => "platform_admin",
});

impl UserRole {
    /// Parses the stored name (`analyst`, `senior_analyst`, …).
    pub fn from_name(name: &str) -> Option<UserRole> {
        UserRole::parse(name).ok()
    }
}

/// A hotline to add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewHotline {
    /// Short unique code, e.g. `ca-cybertip`; reports name their hotline by it.
    pub code: String,
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// BCP 47 tags.
    pub languages: Vec<String>,
    /// Which national scheme its verdicts follow, e.g. `GB`, `CA`.
    pub jurisdiction: String,
    /// Whether its analysts review the shared pool and other hotlines' analysts its items.
    pub shares_review_pool: bool,
    /// Whether its decisions feed the shared platform bank.
    pub shares_banks: bool,
    /// Items an analyst of this hotline may be served per UTC day unless set per user.
    pub daily_cap: u32,
}

/// A stored hotline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hotline {
    pub id: HotlineId,
    pub code: String,
    pub name: String,
    pub country: String,
    pub languages: Vec<String>,
    pub jurisdiction: String,
    pub shares_review_pool: bool,
    pub shares_banks: bool,
    pub daily_cap: u32,
    pub created_at: UnixMillis,
}

/// A user to add; the password arrives already hashed (PHC string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    pub hotline: HotlineId,
    pub username: String,
    pub display_name: String,
    pub role: UserRole,
    pub password_hash: String,
}

/// A stored user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub hotline: HotlineId,
    pub username: String,
    pub display_name: String,
    pub role: UserRole,
    pub password_hash: String,
    pub totp_secret: Option<Vec<u8>>,
    /// A secret being enrolled, not yet confirmed with a code (not enforced).
    pub totp_pending: Option<Vec<u8>>,
    /// The last TOTP time step a code was accepted for.
    pub totp_last_step: i64,
    /// An operator reset the second factor: a new one must be enrolled before anything else.
    pub totp_enrol_required: bool,
    pub disabled: bool,
    pub failed_logins: u32,
    pub locked_until: UnixMillis,
    /// Overrides the hotline's daily cap.
    pub daily_cap: Option<u32>,
    pub created_at: UnixMillis,
}

/// A live session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub user: UserId,
    pub csrf_token: String,
    pub source: String,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
}

const HOTLINE_COLUMNS: &str = "SELECT id, code, name, country, languages, jurisdiction, \
    shares_review_pool, shares_banks, daily_cap, created_at FROM hotlines";
const USER_COLUMNS: &str = "SELECT id, hotline_id, username, display_name, role, password_hash, \
    totp_secret, totp_pending, totp_last_step, totp_enrol_required, disabled, failed_logins, locked_until, daily_cap, created_at FROM users";

fn small(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

fn hotline_from_row(row: &impl Get) -> Result<Hotline, StoreError> {
    let languages = row.text("languages")?;
    Ok(Hotline {
        id: HotlineId(row.i64("id")?),
        code: row.text("code")?,
        name: row.text("name")?,
        country: row.text("country")?,
        languages: languages
            .split(',')
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        jurisdiction: row.text("jurisdiction")?,
        shares_review_pool: flag(row.i64("shares_review_pool")?),
        shares_banks: flag(row.i64("shares_banks")?),
        daily_cap: small(row.i64("daily_cap")?),
        created_at: row.i64("created_at")?,
    })
}

fn user_from_row(row: &impl Get) -> Result<User, StoreError> {
    Ok(User {
        id: UserId(row.i64("id")?),
        hotline: HotlineId(row.i64("hotline_id")?),
        username: row.text("username")?,
        display_name: row.text("display_name")?,
        role: UserRole::parse(&row.text("role")?)?,
        password_hash: row.text("password_hash")?,
        totp_secret: row.opt_bytes("totp_secret")?,
        totp_pending: row.opt_bytes("totp_pending")?,
        totp_last_step: row.i64("totp_last_step")?,
        totp_enrol_required: flag(row.i64("totp_enrol_required")?),
        disabled: flag(row.i64("disabled")?),
        failed_logins: small(row.i64("failed_logins")?),
        locked_until: row.i64("locked_until")?,
        daily_cap: row.opt_i64("daily_cap")?.map(small),
        created_at: row.i64("created_at")?,
    })
}

impl ReviewDesk<'_> {
    /// Adds a hotline; a code already taken is refused by the database (unique).
    pub async fn add_hotline(
        &self,
        hotline: &NewHotline,
        now: UnixMillis,
    ) -> Result<HotlineId, StoreError> {
        check_text("hotline code", &hotline.code, 64, false)?;
        check_text("hotline name", &hotline.name, MAX_NAME, false)?;
        check_text("country", &hotline.country, 8, false)?;
        check_text("jurisdiction", &hotline.jurisdiction, 32, false)?;
        let languages = hotline.languages.join(",");
        check_text("languages", &languages, MAX_NAME, true)?;
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query(
                "INSERT INTO hotlines (code, name, country, languages, jurisdiction, \
                 shares_review_pool, shares_banks, daily_cap, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            )
            .bind(&hotline.code)
            .bind(&hotline.name)
            .bind(&hotline.country)
            .bind(&languages)
            .bind(&hotline.jurisdiction)
            .bind(i64::from(hotline.shares_review_pool))
            .bind(i64::from(hotline.shares_banks))
            .bind(i64::from(hotline.daily_cap))
            .bind(now)
            .fetch_one(pool)
            .await?;
            Ok(HotlineId(row.i64("id")?))
        })
    }

    /// Every hotline, by code.
    pub async fn hotlines(&self) -> Result<Vec<Hotline>, StoreError> {
        let sql = format!("{HOTLINE_COLUMNS} ORDER BY code");
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await?;
            rows.iter().map(hotline_from_row).collect()
        })
    }

    /// The hotline with this id.
    pub async fn hotline(&self, id: HotlineId) -> Result<Option<Hotline>, StoreError> {
        let sql = format!("{HOTLINE_COLUMNS} WHERE id = $1");
        on_backend!(self.backend, |pool, d| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id.0)
                .fetch_optional(pool)
                .await?
            {
                Some(row) => hotline_from_row(&row).map(Some),
                None => Ok(None),
            }
        })
    }

    /// The hotline with this code.
    pub async fn hotline_by_code(&self, code: &str) -> Result<Option<Hotline>, StoreError> {
        let sql = format!("{HOTLINE_COLUMNS} WHERE code = $1");
        on_backend!(self.backend, |pool, d| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(code)
                .fetch_optional(pool)
                .await?
            {
                Some(row) => hotline_from_row(&row).map(Some),
                None => Ok(None),
            }
        })
    }

    /// Changes what a hotline shares and its default daily cap.
    pub async fn set_hotline_sharing(
        &self,
        id: HotlineId,
        shares_review_pool: bool,
        shares_banks: bool,
        daily_cap: u32,
    ) -> Result<(), StoreError> {
        let changed = on_backend!(self.backend, |pool, d| {
            sqlx::query(
                "UPDATE hotlines SET shares_review_pool = $2, shares_banks = $3, daily_cap = $4 \
                 WHERE id = $1",
            )
            .bind(id.0)
            .bind(i64::from(shares_review_pool))
            .bind(i64::from(shares_banks))
            .bind(i64::from(daily_cap))
            .execute(pool)
            .await?
            .rows_affected()
        });
        found(changed, "hotline", id.0)
    }

    /// Adds a user; a username already taken is refused by the database (unique).
    pub async fn add_user(&self, user: &NewUser, now: UnixMillis) -> Result<UserId, StoreError> {
        check_text("username", &user.username, 64, false)?;
        check_text("display name", &user.display_name, MAX_NAME, false)?;
        check_text("password hash", &user.password_hash, 512, false)?;
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query(
                "INSERT INTO users (hotline_id, username, display_name, role, password_hash, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(user.hotline.0)
            .bind(&user.username)
            .bind(&user.display_name)
            .bind(user.role.as_str())
            .bind(&user.password_hash)
            .bind(now)
            .fetch_one(pool)
            .await?;
            Ok(UserId(row.i64("id")?))
        })
    }

    /// The user with this id.
    pub async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let sql = format!("{USER_COLUMNS} WHERE id = $1");
        on_backend!(self.backend, |pool, d| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id.0)
                .fetch_optional(pool)
                .await?
            {
                Some(row) => user_from_row(&row).map(Some),
                None => Ok(None),
            }
        })
    }

    /// The user with this username.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("{USER_COLUMNS} WHERE username = $1");
        on_backend!(self.backend, |pool, d| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(username)
                .fetch_optional(pool)
                .await?
            {
                Some(row) => user_from_row(&row).map(Some),
                None => Ok(None),
            }
        })
    }

    /// The users of one hotline, or of all when `None`, by username.
    pub async fn users(&self, hotline: Option<HotlineId>) -> Result<Vec<User>, StoreError> {
        let sql = format!("{USER_COLUMNS} WHERE ($1 < 0 OR hotline_id = $1) ORDER BY username");
        on_backend!(self.backend, |pool, d| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(hotline.map_or(-1, |h| h.0))
                .fetch_all(pool)
                .await?;
            rows.iter().map(user_from_row).collect()
        })
    }

    /// Disables or re-enables a user; disabling also ends their sessions.
    pub async fn set_user_disabled(&self, id: UserId, disabled: bool) -> Result<(), StoreError> {
        let changed = on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let changed = sqlx::query("UPDATE users SET disabled = $2 WHERE id = $1")
                .bind(id.0)
                .bind(i64::from(disabled))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if disabled {
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            changed
        });
        found(changed, "user", id.0)
    }

    /// Sets (or with `None` clears) a user's TOTP secret.
    pub async fn set_totp_secret(
        &self,
        id: UserId,
        secret: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let changed = on_backend!(self.backend, |pool, d| {
            sqlx::query("UPDATE users SET totp_secret = $2 WHERE id = $1")
                .bind(id.0)
                .bind(secret)
                .execute(pool)
                .await?
                .rows_affected()
        });
        found(changed, "user", id.0)
    }

    /// Sets (or with `None` clears) the secret a user is enrolling.
    pub async fn set_totp_pending(
        &self,
        id: UserId,
        secret: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let changed = on_backend!(self.backend, |pool, d| {
            sqlx::query("UPDATE users SET totp_pending = $2 WHERE id = $1")
                .bind(id.0)
                .bind(secret)
                .execute(pool)
                .await?
                .rows_affected()
        });
        found(changed, "user", id.0)
    }

    /// Resets a lost second factor: the secret and any pending one are gone, the user must
    /// enrol a new one before doing anything else, and their sessions end, in one
    /// transaction. The last accepted step is kept, so no old code is accepted again.
    pub async fn reset_totp(&self, id: UserId) -> Result<(), StoreError> {
        let changed = on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let changed = sqlx::query(
                "UPDATE users SET totp_secret = NULL, totp_pending = NULL, \
                 totp_enrol_required = 1 WHERE id = $1",
            )
            .bind(id.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            changed
        });
        found(changed, "user", id.0)
    }

    /// Makes the pending secret the enforced one, accepting the confirming code's time
    /// `step`; false if nothing is pending or the step was already used.
    pub async fn confirm_totp(&self, id: UserId, step: i64) -> Result<bool, StoreError> {
        let changed = on_backend!(self.backend, |pool, d| {
            sqlx::query(
                "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, \
                 totp_last_step = $2, totp_enrol_required = 0 \
                 WHERE id = $1 AND totp_pending IS NOT NULL AND totp_last_step < $2",
            )
            .bind(id.0)
            .bind(step)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// Accepts a TOTP code's time `step` once: true if it is later than every step
    /// accepted before (one atomic update, so two logins replaying a code cannot both win).
    pub async fn claim_totp_step(&self, id: UserId, step: i64) -> Result<bool, StoreError> {
        let changed = on_backend!(self.backend, |pool, d| {
            sqlx::query(
                "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2",
            )
            .bind(id.0)
            .bind(step)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// Sets (or with `None` clears) a user's own daily cap.
    pub async fn set_user_daily_cap(&self, id: UserId, cap: Option<u32>) -> Result<(), StoreError> {
        let changed = on_backend!(self.backend, |pool, d| {
            sqlx::query("UPDATE users SET daily_cap = $2 WHERE id = $1")
                .bind(id.0)
                .bind(cap.map(i64::from))
                .execute(pool)
                .await?
                .rows_affected()
        });
        found(changed, "user", id.0)
    }

    /// Counts a failed login and locks the account until `locked_until` (the caller computes
    /// the back-off); returns the new count of consecutive failures.
    pub async fn record_failed_login(
        &self,
        id: UserId,
        locked_until: UnixMillis,
    ) -> Result<u32, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query(
                "UPDATE users SET failed_logins = failed_logins + 1, \
                 locked_until = CASE WHEN locked_until > $2 THEN locked_until ELSE $2 END \
                 WHERE id = $1 RETURNING failed_logins",
            )
            .bind(id.0)
            .bind(locked_until)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(small(row.i64("failed_logins")?)),
                None => Err(not_found("user", id.0)),
            }
        })
    }

    /// Clears the failure count after a successful login.
    pub async fn record_successful_login(&self, id: UserId) -> Result<(), StoreError> {
        let changed = on_backend!(self.backend, |pool, d| {
            sqlx::query("UPDATE users SET failed_logins = 0, locked_until = 0 WHERE id = $1")
                .bind(id.0)
                .execute(pool)
                .await?
                .rows_affected()
        });
        found(changed, "user", id.0)
    }

    /// Stores a session under the SHA-256 of its token.
    pub async fn create_session(
        &self,
        token_hash: &[u8; 32],
        session: &Session,
    ) -> Result<(), StoreError> {
        check_text("CSRF token", &session.csrf_token, 128, false)?;
        check_text("session source", &session.source, 128, true)?;
        check_range(
            "session expiry",
            session.expires_at,
            session.created_at,
            i64::MAX,
        )?;
        on_backend!(self.backend, |pool, d| {
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, source, created_at, \
                 last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $5, $6)",
            )
            .bind(&token_hash[..])
            .bind(session.user.0)
            .bind(&session.csrf_token)
            .bind(&session.source)
            .bind(session.created_at)
            .bind(session.expires_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The session under this token hash if it has not expired at `now`; marks it seen.
    pub async fn session(
        &self,
        token_hash: &[u8; 32],
        now: UnixMillis,
    ) -> Result<Option<Session>, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let row = sqlx::query(
                "UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1 AND expires_at > $2 \
                 RETURNING user_id, csrf_token, source, created_at, expires_at",
            )
            .bind(&token_hash[..])
            .bind(now)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some(Session {
                    user: UserId(row.i64("user_id")?),
                    csrf_token: row.text("csrf_token")?,
                    source: row.text("source")?,
                    created_at: row.i64("created_at")?,
                    expires_at: row.i64("expires_at")?,
                })),
                None => Ok(None),
            }
        })
    }

    /// Ends a session (logout); returns whether it existed.
    pub async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<bool, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let done = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(&token_hash[..])
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }
}

pub(crate) fn not_found(what: &'static str, id: i64) -> StoreError {
    StoreError::NotFound {
        what,
        id: id.to_string(),
    }
}

pub(crate) fn found(changed: u64, what: &'static str, id: i64) -> Result<(), StoreError> {
    if changed == 0 {
        return Err(not_found(what, id));
    }
    Ok(())
}
