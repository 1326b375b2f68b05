//! Hotlines, users, passwords (argon2id, hashed on the blocking pool), login with lockout
//! and exponential back-off, the optional TOTP second factor, and server-side sessions.
//!
//! Sessions: the client holds a random 256-bit token; the database holds only its SHA-256,
//! with a per-session CSRF token that every form must echo.

use aranea_store::{
    Hotline, HotlineId, NewHotline, NewUser, Session, StoreError, UnixMillis, User, UserId,
    UserRole,
};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};

use crate::Review;
use crate::access::Actor;
use crate::audit::{self, AuditAction, AuditActor};
use crate::error::ReviewError;
use crate::vault::{random_bytes, to_hex};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (argon2 takes any length; this bounds the work per request).
pub const MAX_PASSWORD_BYTES: usize = 1024;
const MAX_LOCK_MS: i64 = 3_600_000;

/// A user to create.
#[derive(Clone, Debug)]
pub struct NewUserRequest {
    pub hotline: HotlineId,
    pub username: String,
    pub display_name: String,
    pub role: UserRole,
    pub password: String,
}

/// A successful login: the token for the cookie and who it belongs to.
#[derive(Clone, Debug)]
pub struct Login {
    /// Goes into the session cookie; never stored.
    pub token: String,
    pub csrf_token: String,
    pub actor: Actor,
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

async fn hash_password(password: String) -> Result<String, ReviewError> {
    let salt = random_bytes::<16>()?;
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ReviewError::Task(format!("argon2: {e}")))
    })
    .await
    .map_err(|e| ReviewError::Task(e.to_string()))?
}

pub(crate) async fn password_matches(password: String, hash: String) -> Result<bool, ReviewError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .map_err(|e| ReviewError::Task(e.to_string()))
}

fn check_password(password: &str) -> Result<(), ReviewError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ReviewError::invalid(
            "password",
            format!("at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ReviewError::invalid("password", "too long"));
    }
    Ok(())
}

fn check_username(name: &str) -> Result<(), ReviewError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ReviewError::invalid(
            "username",
            "1-64 of a-z, A-Z, 0-9, '.', '_', '-'",
        ))
    }
}

/// Longest hotline code accepted.
pub const MAX_HOTLINE_CODE_BYTES: usize = 32;

/// A hotline code is an identifier: operators type it (`--hotline CODE`, `[notice]` routing),
/// and it names the hotline's own bank (`hotline-CODE`), so it is held to what a bank name
/// allows, checked here rather than at the first positive decision, which could not be banked.
fn check_hotline_code(code: &str) -> Result<(), ReviewError> {
    let identifier = !code.is_empty()
        && code.len() <= MAX_HOTLINE_CODE_BYTES
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !identifier {
        return Err(ReviewError::invalid(
            "hotline code",
            format!(
                "{code:?}: 1 to {MAX_HOTLINE_CODE_BYTES} ASCII letters, digits, '-', '_' or '.'"
            ),
        ));
    }
    crate::banking::check_review_bank_name("hotline code", &crate::banking::hotline_bank_name(code))
}

fn taken(e: StoreError, what: &'static str) -> ReviewError {
    match e {
        StoreError::Database(ref db) if db.to_string().contains("nique") => {
            ReviewError::invalid(what, "already taken")
        }
        other => ReviewError::Store(other),
    }
}

impl Review {
    /// Adds a hotline: platform administrators, or the command line.
    pub async fn add_hotline(
        &self,
        by: AuditActor<'_>,
        hotline: &NewHotline,
        now: UnixMillis,
    ) -> Result<HotlineId, ReviewError> {
        if let AuditActor::User(actor) = by
            && !actor.is_platform_admin()
        {
            return Err(ReviewError::Forbidden(
                "only platform administrators add hotlines",
            ));
        }
        check_hotline_code(&hotline.code)?;
        let id = self
            .store()
            .review_desk()
            .add_hotline(hotline, now)
            .await
            .map_err(|e| taken(e, "hotline code"))?;
        let detail = format!(
            "country={} jurisdiction={} languages={} shares_review_pool={} shares_banks={}",
            hotline.country,
            hotline.jurisdiction,
            hotline.languages.join(","),
            hotline.shares_review_pool,
            hotline.shares_banks
        );
        audit::record(
            self.store(),
            by,
            AuditAction::HotlineAdded,
            &format!("hotline:{}", hotline.code),
            &detail,
            now,
        )
        .await?;
        Ok(id)
    }

    /// Hotlines the actor may see: all for platform administrators, else their own.
    pub async fn hotlines_for(&self, actor: &Actor) -> Result<Vec<Hotline>, ReviewError> {
        let all = self.store().review_desk().hotlines().await?;
        Ok(all
            .into_iter()
            .filter(|h| actor.is_platform_admin() || h.id == actor.hotline.id)
            .collect())
    }

    /// Every hotline (command line).
    pub async fn all_hotlines(&self) -> Result<Vec<Hotline>, ReviewError> {
        Ok(self.store().review_desk().hotlines().await?)
    }

    /// Changes what a hotline shares and its daily cap: its operator or a platform admin.
    pub async fn set_hotline_sharing(
        &self,
        by: &Actor,
        hotline: HotlineId,
        shares_review_pool: bool,
        shares_banks: bool,
        daily_cap: u32,
        now: UnixMillis,
    ) -> Result<(), ReviewError> {
        let target = self.visible_hotline(by, hotline).await?;
        if !by.manages(&target) {
            return Err(ReviewError::Forbidden(
                "only operators change hotline settings",
            ));
        }
        self.store()
            .review_desk()
            .set_hotline_sharing(hotline, shares_review_pool, shares_banks, daily_cap)
            .await?;
        let detail = format!(
            "shares_review_pool={shares_review_pool} shares_banks={shares_banks} daily_cap={daily_cap}"
        );
        audit::record(
            self.store(),
            by.into(),
            AuditAction::Setting,
            &format!("hotline:{}", target.code),
            &detail,
            now,
        )
        .await?;
        Ok(())
    }

    async fn visible_hotline(&self, by: &Actor, id: HotlineId) -> Result<Hotline, ReviewError> {
        match self.store().review_desk().hotline(id).await? {
            Some(h) if by.is_platform_admin() || h.id == by.hotline.id => Ok(h),
            _ => Err(ReviewError::NotFound("hotline")),
        }
    }

    /// `user`, if `by` may manage them: their hotline's operator, a platform administrator
    /// or the command line. Anyone else's is "not found", as a user of another hotline is.
    pub(crate) async fn user_managed_by(
        &self,
        by: AuditActor<'_>,
        user: UserId,
    ) -> Result<User, ReviewError> {
        let desk = self.store().review_desk();
        let target = desk
            .user(user)
            .await?
            .ok_or(ReviewError::NotFound("user"))?;
        if let AuditActor::User(actor) = by {
            let hotline = desk
                .hotline(target.hotline)
                .await?
                .ok_or(ReviewError::NotFound("user"))?;
            if !actor.manages(&hotline) {
                return Err(ReviewError::NotFound("user"));
            }
        }
        Ok(target)
    }

    /// Adds a user: the hotline's operator (not platform administrators), a platform
    /// administrator, or the command line.
    pub async fn add_user(
        &self,
        by: AuditActor<'_>,
        request: NewUserRequest,
        now: UnixMillis,
    ) -> Result<UserId, ReviewError> {
        check_username(&request.username)?;
        check_password(&request.password)?;
        let desk = self.store().review_desk();
        let hotline = desk
            .hotline(request.hotline)
            .await?
            .ok_or(ReviewError::NotFound("hotline"))?;
        if let AuditActor::User(actor) = by {
            let allowed = actor.is_platform_admin()
                || (actor.manages(&hotline) && request.role != UserRole::PlatformAdmin);
            if !allowed {
                return Err(ReviewError::Forbidden(
                    "only operators add users to their hotline",
                ));
            }
        }
        let password_hash = hash_password(request.password).await?;
        let display_name = if request.display_name.trim().is_empty() {
            request.username.clone()
        } else {
            request.display_name
        };
        let id = desk
            .add_user(
                &NewUser {
                    hotline: hotline.id,
                    username: request.username.clone(),
                    display_name,
                    role: request.role,
                    password_hash,
                },
                now,
            )
            .await
            .map_err(|e| taken(e, "username"))?;
        audit::record(
            self.store(),
            by,
            AuditAction::UserAdded,
            &format!("user:{}", request.username),
            &format!("hotline={} role={}", hotline.code, request.role.as_str()),
            now,
        )
        .await?;
        Ok(id)
    }

    /// Users the actor may see: their hotline's, or all for platform administrators.
    pub async fn users_for(&self, actor: &Actor) -> Result<Vec<User>, ReviewError> {
        if !(actor.is_platform_admin() || actor.role() == UserRole::HotlineOperator) {
            return Err(ReviewError::Forbidden("only operators list users"));
        }
        let scope = (!actor.is_platform_admin()).then_some(actor.hotline.id);
        Ok(self.store().review_desk().users(scope).await?)
    }

    /// Every user, or one hotline's (command line).
    pub async fn all_users(&self, hotline: Option<HotlineId>) -> Result<Vec<User>, ReviewError> {
        Ok(self.store().review_desk().users(hotline).await?)
    }

    /// Disables (ending their sessions) or re-enables a user.
    pub async fn set_user_disabled(
        &self,
        by: AuditActor<'_>,
        user: UserId,
        disabled: bool,
        now: UnixMillis,
    ) -> Result<(), ReviewError> {
        let target = self.user_managed_by(by, user).await?;
        let desk = self.store().review_desk();
        desk.set_user_disabled(user, disabled).await?;
        let action = if disabled {
            AuditAction::UserDisabled
        } else {
            AuditAction::UserEnabled
        };
        audit::record(
            self.store(),
            by,
            action,
            &format!("user:{}", target.username),
            "",
            now,
        )
        .await?;
        Ok(())
    }

    /// Checks credentials and opens a session. Every failure says only
    /// [`ReviewError::LoginFailed`] (or [`ReviewError::LockedOut`] while locked), costs
    /// one password hash even for unknown users, and is audited.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        totp_code: Option<&str>,
        source: &str,
        now: UnixMillis,
    ) -> Result<Login, ReviewError> {
        let desk = self.store().review_desk();
        let user = if check_username(username).is_ok() {
            desk.user_by_name(username).await?
        } else {
            None
        };
        let Some(user) = user else {
            // The same work as a real check, so timing does not reveal which names exist.
            let _ = password_matches(password.to_string(), dummy_hash()).await;
            audit::record_anonymous(
                self.store(),
                AuditAction::LoginFailed,
                "",
                "",
                &format!("user:{}", username.chars().take(64).collect::<String>()),
                source,
                now,
            )
            .await?;
            return Err(ReviewError::LoginFailed);
        };
        let hotline = desk
            .hotline(user.hotline)
            .await?
            .ok_or(ReviewError::LoginFailed)?;
        let fail = |detail: &'static str| {
            audit::record_anonymous(
                self.store(),
                AuditAction::LoginFailed,
                &user.username,
                &hotline.code,
                detail,
                source,
                now,
            )
        };
        if user.locked_until > now {
            fail("locked").await?;
            return Err(ReviewError::LockedOut {
                until: user.locked_until,
            });
        }
        let password_ok = if password.len() <= MAX_PASSWORD_BYTES {
            password_matches(password.to_string(), user.password_hash.clone()).await?
        } else {
            // No password is this long, but refusing it without the check's work would tell
            // a real name from an unknown one by the time the answer takes.
            let _ = password_matches(password.to_string(), dummy_hash()).await;
            false
        };
        // The code's step is used up only behind a right password, so guessing passwords
        // cannot burn the owner's codes.
        let second_ok = match (&user.totp_secret, totp_code) {
            (None, _) => true,
            (Some(secret), Some(code)) if password_ok => {
                self.accept_code(&user, secret, code, now).await?
            }
            _ => false,
        };
        if !password_ok || !second_ok || user.disabled {
            let failures = user.failed_logins.saturating_add(1);
            let lock_until = self.lock_until(failures, now);
            desk.record_failed_login(user.id, lock_until).await?;
            fail(if user.disabled {
                "disabled"
            } else {
                "credentials"
            })
            .await?;
            return Err(ReviewError::LoginFailed);
        }
        desk.record_successful_login(user.id).await?;
        let token = to_hex(&random_bytes::<32>()?);
        let csrf_token = to_hex(&random_bytes::<32>()?);
        let hours = i64::from(self.config().session_hours.max(1));
        desk.create_session(
            &token_hash(&token),
            &Session {
                user: user.id,
                csrf_token: csrf_token.clone(),
                source: source.chars().take(128).collect(),
                created_at: now,
                expires_at: now.saturating_add(hours * 3_600_000),
            },
        )
        .await?;
        let actor = Actor {
            user,
            hotline,
            source: source.to_string(),
        };
        audit::record(
            self.store(),
            (&actor).into(),
            AuditAction::Login,
            "",
            "",
            now,
        )
        .await?;
        Ok(Login {
            token,
            csrf_token,
            actor,
        })
    }

    /// When the account stays locked after `failures` consecutive failures: not at all
    /// below the threshold, then the configured lockout doubling per failure, up to an hour.
    fn lock_until(&self, failures: u32, now: UnixMillis) -> UnixMillis {
        let threshold = self.config().lockout_after.max(1);
        if failures < threshold {
            return 0;
        }
        let doublings = (failures - threshold).min(20);
        let base = i64::try_from(self.config().lockout_seconds.saturating_mul(1000))
            .unwrap_or(MAX_LOCK_MS);
        now.saturating_add(base.saturating_mul(1 << doublings).min(MAX_LOCK_MS))
    }

    /// The actor behind a session token, and the session's CSRF token. Disabled users'
    /// sessions are gone (disabling deletes them); an expired session is refused, and so is
    /// the session of a user who must enrol a new second factor after a reset: only the
    /// enrolment pages accept that one, through [`Review::enrolment_session`].
    pub async fn session(
        &self,
        token: &str,
        source: &str,
        now: UnixMillis,
    ) -> Result<(Actor, String), ReviewError> {
        let (actor, csrf) = self.enrolment_session(token, source, now).await?;
        if actor.user.totp_enrol_required {
            return Err(ReviewError::NoSession);
        }
        Ok((actor, csrf))
    }

    /// Like [`Review::session`], but also the session of a user who must enrol a new second
    /// factor (`actor.user.totp_enrol_required`): for the enrolment pages and logout only.
    pub async fn enrolment_session(
        &self,
        token: &str,
        source: &str,
        now: UnixMillis,
    ) -> Result<(Actor, String), ReviewError> {
        if token.len() != 64 {
            return Err(ReviewError::NoSession);
        }
        let desk = self.store().review_desk();
        let session = desk
            .session(&token_hash(token), now)
            .await?
            .ok_or(ReviewError::NoSession)?;
        let user = desk
            .user(session.user)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(ReviewError::NoSession)?;
        let hotline = desk
            .hotline(user.hotline)
            .await?
            .ok_or(ReviewError::NoSession)?;
        Ok((
            Actor {
                user,
                hotline,
                source: source.to_string(),
            },
            session.csrf_token,
        ))
    }

    /// Ends a session.
    pub async fn logout(
        &self,
        token: &str,
        actor: &Actor,
        now: UnixMillis,
    ) -> Result<(), ReviewError> {
        self.store()
            .review_desk()
            .delete_session(&token_hash(token))
            .await?;
        audit::record(self.store(), actor.into(), AuditAction::Logout, "", "", now).await?;
        Ok(())
    }
}

/// A valid argon2id hash of a password nobody has, for timing-equal failures.
fn dummy_hash() -> String {
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
     0kVBFDmVcKhxB3rH8bcZ+oXQ8qk5T0Lk6WvMQ6VDN9w"
        .to_string()
}

/// Compares two secrets without leaking where they differ (CSRF tokens).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
