//! The TOTP second factor's life cycle: enrolment (a pending secret shown once as text and
//! as an `otpauth://` URI, enforced only after a code from it is confirmed), and switching
//! it off (password and a current code). Every accepted code uses up its time step, so a
//! code cannot be replayed within its window, at login or here.
//!
//! A lost second factor is reset by the user's hotline operator or a platform
//! administrator (or `aranea user reset-2fa`): the user must then enrol a new one at their
//! next login before anything else ([`Review::session`] refuses their sessions until then).
//!
//! It must not show a secret once it is enforced: only a pending one can be shown again.

use aranea_store::{UnixMillis, User, UserId};

use crate::access::Actor;
use crate::accounts::{MAX_PASSWORD_BYTES, password_matches};
use crate::audit::{self, AuditAction, AuditActor};
use crate::error::ReviewError;
use crate::vault::random_bytes;
use crate::{Review, totp};

impl Review {
    /// Starts enrolling a second factor: a new secret, pending (not enforced) until
    /// [`Review::confirm_totp`] sees a code from it. Starting again replaces the pending
    /// secret. Refused while a second factor is on (disable it first).
    pub async fn begin_totp(
        &self,
        actor: &Actor,
        now: UnixMillis,
    ) -> Result<TotpEnrolment, ReviewError> {
        if self.current_user(actor).await?.totp_secret.is_some() {
            return Err(ReviewError::invalid(
                "totp",
                "the second factor is already on",
            ));
        }
        let secret = zeroize::Zeroizing::new(random_bytes::<20>()?);
        self.store()
            .review_desk()
            .set_totp_pending(actor.user.id, Some(&secret[..]))
            .await?;
        audit::record(
            self.store(),
            actor.into(),
            AuditAction::Setting,
            &format!("user:{}", actor.user.username),
            "totp enrolment started",
            now,
        )
        .await?;
        Ok(self.enrolment(actor, &secret[..]))
    }

    /// The secret being enrolled, to show again (e.g. on reload), if any.
    pub async fn pending_totp(&self, actor: &Actor) -> Result<Option<TotpEnrolment>, ReviewError> {
        let user = self.current_user(actor).await?;
        Ok(user
            .totp_pending
            .filter(|_| user.totp_secret.is_none())
            .map(|secret| self.enrolment(actor, &secret)))
    }

    /// Whether the actor's second factor is on.
    pub async fn totp_enabled(&self, actor: &Actor) -> Result<bool, ReviewError> {
        Ok(self.current_user(actor).await?.totp_secret.is_some())
    }

    fn enrolment(&self, actor: &Actor, secret: &[u8]) -> TotpEnrolment {
        let issuer = format!("Aranea {}", actor.hotline.code);
        TotpEnrolment {
            secret: totp::base32(secret),
            uri: totp::otpauth_uri(&issuer, &actor.user.username, secret),
        }
    }

    async fn current_user(&self, actor: &Actor) -> Result<User, ReviewError> {
        self.store()
            .review_desk()
            .user(actor.user.id)
            .await?
            .ok_or(ReviewError::NotFound("user"))
    }

    /// Turns the pending second factor on once a code from it checks out; from then on
    /// every login needs a code. A wrong or replayed code changes nothing.
    pub async fn confirm_totp(
        &self,
        actor: &Actor,
        code: &str,
        now: UnixMillis,
    ) -> Result<(), ReviewError> {
        let user = self.current_user(actor).await?;
        let pending = user
            .totp_pending
            .filter(|_| user.totp_secret.is_none())
            .ok_or_else(|| ReviewError::invalid("totp", "no second factor is being enrolled"))?;
        let confirmed = match totp::verify_step(&pending, code, unix_seconds(now)) {
            Some(step) => {
                let step = i64::try_from(step).unwrap_or(i64::MAX);
                self.store()
                    .review_desk()
                    .confirm_totp(actor.user.id, step)
                    .await?
            }
            None => false,
        };
        let detail = if confirmed {
            "totp enabled"
        } else {
            "totp confirmation failed"
        };
        audit::record(
            self.store(),
            actor.into(),
            AuditAction::Setting,
            &format!("user:{}", actor.user.username),
            detail,
            now,
        )
        .await?;
        if confirmed {
            Ok(())
        } else {
            Err(ReviewError::invalid("code", "the code does not match"))
        }
    }

    /// Turns the second factor off: needs the password and a current (unused) code, so a
    /// session left open is not enough.
    pub async fn disable_totp(
        &self,
        actor: &Actor,
        password: &str,
        code: &str,
        now: UnixMillis,
    ) -> Result<(), ReviewError> {
        let user = self.current_user(actor).await?;
        let Some(secret) = user.totp_secret.as_ref() else {
            return Err(ReviewError::invalid("totp", "the second factor is off"));
        };
        let password_ok = password.len() <= MAX_PASSWORD_BYTES
            && password_matches(password.to_string(), user.password_hash.clone()).await?;
        let ok = password_ok && self.accept_code(&user, secret, code, now).await?;
        let detail = if ok {
            "totp disabled"
        } else {
            "totp disable failed"
        };
        audit::record(
            self.store(),
            actor.into(),
            AuditAction::Setting,
            &format!("user:{}", actor.user.username),
            detail,
            now,
        )
        .await?;
        if !ok {
            return Err(ReviewError::invalid(
                "code",
                "password or code does not match",
            ));
        }
        let desk = self.store().review_desk();
        desk.set_totp_secret(actor.user.id, None).await?;
        desk.set_totp_pending(actor.user.id, None).await?;
        Ok(())
    }

    /// Resets a user's lost second factor: their secret (and any pending one) is gone,
    /// their sessions end, and at their next login they must enrol a new one before
    /// anything else. Operators may reset their own hotline's users, platform
    /// administrators anyone; another hotline's user is "not found".
    pub async fn reset_totp(
        &self,
        by: AuditActor<'_>,
        user: UserId,
        now: UnixMillis,
    ) -> Result<(), ReviewError> {
        let target = self.user_managed_by(by, user).await?;
        let desk = self.store().review_desk();
        desk.reset_totp(user).await?;
        let was = match (&target.totp_secret, &target.totp_pending) {
            (Some(_), _) => "second factor was on",
            (None, Some(_)) => "second factor was being enrolled",
            (None, None) => "second factor was off",
        };
        audit::record(
            self.store(),
            by,
            AuditAction::SecondFactorReset,
            &format!("user:{}", target.username),
            &format!("{was}; must enrol at next login"),
            now,
        )
        .await?;
        Ok(())
    }

    /// Whether `code` is valid now and its time step was not used before; uses it up.
    pub(crate) async fn accept_code(
        &self,
        user: &User,
        secret: &[u8],
        code: &str,
        now: UnixMillis,
    ) -> Result<bool, ReviewError> {
        let Some(step) = totp::verify_step(secret, code, unix_seconds(now)) else {
            return Ok(false);
        };
        Ok(self
            .store()
            .review_desk()
            .claim_totp_step(user.id, i64::try_from(step).unwrap_or(i64::MAX))
            .await?)
    }
}

/// A second factor being enrolled, as the enrolment page shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotpEnrolment {
    /// The secret in base32, to type into an authenticator app.
    pub secret: String,
    /// The `otpauth://` URI, for apps that import one.
    pub uri: String,
}

pub(crate) fn unix_seconds(now: UnixMillis) -> u64 {
    u64::try_from(now / 1000).unwrap_or(0)
}
