//! Logins, lockout, second factor, sessions and who may manage whom, on both back-ends.

#[macro_use]
mod common;

use aranea_review::{AuditActor, NewUserRequest, ReviewConfig, ReviewError, totp};
use aranea_store::UserRole;
use common::{Backend, NOW, PASSWORD, World};

both_backends!(
    login_opens_a_session_and_logout_ends_it,
    repeated_failures_lock_with_growing_back_off,
    totp_is_required_once_enabled,
    a_totp_code_cannot_be_replayed,
    operators_manage_only_their_own_hotline,
    a_lost_second_factor_is_reset_by_an_operator_and_enrolled_again,
    a_hotline_code_must_be_able_to_name_its_bank,
    a_refusal_takes_as_long_for_a_real_name_as_for_an_unknown_one,
);

/// Which names exist does not show in how long a refused login takes: an over-long password
/// for a real account costs the same password check as any password for an unknown name
/// (refused without it, it was answered ~100 times sooner).
async fn a_refusal_takes_as_long_for_a_real_name_as_for_an_unknown_one(backend: Backend) {
    let w = World::new(backend).await;
    w.actor(w.gb, "ana", UserRole::Analyst).await;
    let too_long = "p".repeat(aranea_review::MAX_PASSWORD_BYTES + 1);
    let mut real = Vec::new();
    let mut unknown = Vec::new();
    for round in 0..3 {
        for (name, times) in [("ana", &mut real), ("nobody-here", &mut unknown)] {
            let started = std::time::Instant::now();
            let refused = w.review.login(name, &too_long, None, "", NOW + round).await;
            times.push(started.elapsed());
            assert!(
                matches!(refused, Err(ReviewError::LoginFailed)),
                "{refused:?}"
            );
        }
    }
    real.sort();
    unknown.sort();
    let (real, unknown) = (real[1], unknown[1]);
    assert!(
        real * 3 >= unknown,
        "medians: {real:?} for a real name, {unknown:?} for an unknown one"
    );
}

/// A hotline code names the hotline's own bank (`hotline-CODE`): a code no bank could be
/// named after is refused when the hotline is added, with nothing recorded, and so is a
/// `platform_bank` setting, when the review service starts, not at the first decision.
async fn a_hotline_code_must_be_able_to_name_its_bank(backend: Backend) {
    let w = World::new(backend).await;
    let longest = "x".repeat(aranea_review::MAX_HOTLINE_CODE_BYTES);
    for good in ["se", "ie-hotline", "nz_2.0", longest.as_str()] {
        w.review
            .add_hotline(AuditActor::Cli, &common::hotline(good, "SE", true), NOW)
            .await
            .unwrap_or_else(|e| panic!("{good:?} refused: {e}"));
    }
    let too_long = "x".repeat(aranea_review::MAX_HOTLINE_CODE_BYTES + 1);
    for bad in [
        "",
        "s e",
        "fi:2",
        "ré",
        "se/../x",
        "se\n",
        too_long.as_str(),
    ] {
        match w
            .review
            .add_hotline(AuditActor::Cli, &common::hotline(bad, "SE", true), NOW)
            .await
        {
            Err(ReviewError::Invalid { field, reason }) => {
                assert_eq!(field, "hotline code", "{bad:?}");
                assert!(reason.contains("ASCII letters"), "{bad:?}: {reason}");
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    let codes: Vec<String> = w
        .store
        .review_desk()
        .hotlines()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.code)
        .collect();
    assert_eq!(
        codes.len(),
        6,
        "only the good codes are recorded: {codes:?}"
    );

    for bad in ["", "all", "platform bank", "bank/../x"] {
        let config = ReviewConfig {
            platform_bank: bad.into(),
            ..ReviewConfig::default()
        };
        match aranea_review::Review::from_config(w.store.clone(), config, None) {
            Err(ReviewError::Invalid { field, .. }) => assert_eq!(field, "platform_bank"),
            other => panic!("platform_bank {bad:?}: {:?}", other.err()),
        }
    }
}

async fn login_opens_a_session_and_logout_ends_it(backend: Backend) {
    let w = World::new(backend).await;
    w.actor(w.gb, "ana", UserRole::Analyst).await;
    let login = w
        .review
        .login("ana", PASSWORD, None, "203.0.113.1", NOW)
        .await
        .unwrap();
    assert_eq!(login.token.len(), 64);
    let (actor, csrf) = w
        .review
        .session(&login.token, "203.0.113.1", NOW + 1)
        .await
        .unwrap();
    assert_eq!(actor.user.username, "ana");
    assert_eq!(actor.hotline.code, "gb");
    assert_eq!(csrf, login.csrf_token);
    // Neither the token's hash nor a guess opens a session.
    for bad in ["", "x", &"0".repeat(64), &login.csrf_token] {
        assert!(matches!(
            w.review.session(bad, "", NOW).await,
            Err(ReviewError::NoSession)
        ));
    }
    let hours = i64::from(w.review.config().session_hours);
    assert!(
        w.review
            .session(&login.token, "", NOW + hours * 3_600_000)
            .await
            .is_err(),
        "expired"
    );
    w.review
        .logout(&login.token, &actor, NOW + 2)
        .await
        .unwrap();
    assert!(w.review.session(&login.token, "", NOW + 3).await.is_err());

    assert!(matches!(
        w.review
            .login("ana", "wrong password!!", None, "", NOW)
            .await,
        Err(ReviewError::LoginFailed)
    ));
    assert!(matches!(
        w.review.login("nobody", PASSWORD, None, "", NOW).await,
        Err(ReviewError::LoginFailed)
    ));
    assert!(matches!(
        w.review
            .login("bad name; --", PASSWORD, None, "", NOW)
            .await,
        Err(ReviewError::LoginFailed)
    ));

    let again = w
        .review
        .login("ana", PASSWORD, None, "", NOW)
        .await
        .unwrap();
    let id = again.actor.user.id;
    w.review
        .set_user_disabled(AuditActor::Cli, id, true, NOW)
        .await
        .unwrap();
    assert!(
        w.review.session(&again.token, "", NOW).await.is_err(),
        "disabled: sessions end"
    );
    assert!(matches!(
        w.review.login("ana", PASSWORD, None, "", NOW).await,
        Err(ReviewError::LoginFailed)
    ));
}

async fn repeated_failures_lock_with_growing_back_off(backend: Backend) {
    let config = ReviewConfig {
        lockout_after: 3,
        lockout_seconds: 10,
        ..ReviewConfig::default()
    };
    let w = World::with_config(backend, config).await;
    w.actor(w.gb, "ana", UserRole::Analyst).await;
    for _ in 0..2 {
        assert!(matches!(
            w.review
                .login("ana", "not the password", None, "", NOW)
                .await,
            Err(ReviewError::LoginFailed)
        ));
    }
    // Still open after two failures.
    w.review
        .login("ana", PASSWORD, None, "", NOW)
        .await
        .unwrap();
    for _ in 0..3 {
        let _ = w
            .review
            .login("ana", "not the password", None, "", NOW)
            .await;
    }
    // Third consecutive failure locked for 10 s: even the right password is refused.
    let locked = w.review.login("ana", PASSWORD, None, "", NOW + 1).await;
    assert!(matches!(locked, Err(ReviewError::LockedOut { until }) if until == NOW + 10_000));
    // After the lock, one more failure doubles it.
    let _ = w
        .review
        .login("ana", "not the password", None, "", NOW + 10_000)
        .await;
    let locked = w
        .review
        .login("ana", PASSWORD, None, "", NOW + 10_001)
        .await;
    assert!(matches!(locked, Err(ReviewError::LockedOut { until }) if until == NOW + 30_000));
    w.review
        .login("ana", PASSWORD, None, "", NOW + 30_000)
        .await
        .unwrap();
    // Success reset the count: two failures do not lock.
    for _ in 0..2 {
        let _ = w
            .review
            .login("ana", "not the password", None, "", NOW + 30_001)
            .await;
    }
    w.review
        .login("ana", PASSWORD, None, "", NOW + 30_002)
        .await
        .unwrap();
}

fn code(secret: &[u8], at_millis: i64) -> String {
    format!("{:06}", totp::code_at(secret, (at_millis / 1000) as u64))
}

async fn totp_is_required_once_enabled(backend: Backend) {
    let w = World::new(backend).await;
    let ana = w.actor(w.gb, "ana", UserRole::Analyst).await;
    let shown = w.review.begin_totp(&ana, NOW).await.unwrap();
    assert_eq!(shown.secret.len(), 32, "20 bytes in base32");
    assert!(
        shown
            .uri
            .starts_with("otpauth://totp/Aranea%20gb:ana?secret=")
    );
    assert!(shown.uri.contains(&shown.secret));
    let user = w
        .store
        .review_desk()
        .user(ana.user.id)
        .await
        .unwrap()
        .unwrap();
    let secret = user.totp_pending.unwrap();
    assert_eq!(totp::base32(&secret), shown.secret);
    assert_eq!(user.totp_secret, None, "not enforced before confirmation");
    w.review
        .login("ana", PASSWORD, None, "", NOW)
        .await
        .expect("a pending second factor is not enforced");
    assert_eq!(w.review.pending_totp(&ana).await.unwrap(), Some(shown));

    let right = totp::code_at(&secret, (NOW / 1000) as u64);
    let wrong = format!("{:06}", (right + 500_000) % 1_000_000);
    assert!(w.review.confirm_totp(&ana, &wrong, NOW).await.is_err());
    assert!(!w.review.totp_enabled(&ana).await.unwrap());
    w.review
        .confirm_totp(&ana, &code(&secret, NOW), NOW)
        .await
        .unwrap();
    assert!(w.review.totp_enabled(&ana).await.unwrap());
    assert!(w.review.begin_totp(&ana, NOW).await.is_err(), "on already");

    let later = NOW + 60_000;
    assert!(
        w.review
            .login("ana", PASSWORD, None, "", later)
            .await
            .is_err()
    );
    let wrong = format!(
        "{:06}",
        (totp::code_at(&secret, (later / 1000) as u64) + 1) % 1_000_000
    );
    assert!(
        w.review
            .login("ana", PASSWORD, Some(&wrong), "", later)
            .await
            .is_err()
    );
    assert!(
        w.review
            .login(
                "ana",
                "not the password",
                Some(&code(&secret, later)),
                "",
                later
            )
            .await
            .is_err()
    );
    w.review
        .login("ana", PASSWORD, Some(&code(&secret, later)), "", later + 1)
        .await
        .expect("a wrong password did not use the code up");
}

async fn a_totp_code_cannot_be_replayed(backend: Backend) {
    let w = World::new(backend).await;
    let ana = w.actor(w.gb, "ana", UserRole::Analyst).await;
    w.review.begin_totp(&ana, NOW).await.unwrap();
    let secret = w
        .store
        .review_desk()
        .user(ana.user.id)
        .await
        .unwrap()
        .unwrap()
        .totp_pending
        .unwrap();
    let enrolled = code(&secret, NOW);
    w.review.confirm_totp(&ana, &enrolled, NOW).await.unwrap();
    assert!(
        w.review
            .login("ana", PASSWORD, Some(&enrolled), "", NOW + 1_000)
            .await
            .is_err(),
        "the enrolment code does not log in"
    );
    let t = NOW + 90_000;
    let fresh = code(&secret, t);
    w.review
        .login("ana", PASSWORD, Some(&fresh), "", t)
        .await
        .unwrap();
    // The same code, still inside its window (and the next step's skew allowance).
    for replay_at in [t + 1_000, t + 29_000] {
        assert!(matches!(
            w.review
                .login("ana", PASSWORD, Some(&fresh), "", replay_at)
                .await,
            Err(ReviewError::LoginFailed)
        ));
    }
    assert!(
        w.review
            .disable_totp(&ana, PASSWORD, &fresh, t + 2_000)
            .await
            .is_err(),
        "switching off needs an unused code too"
    );
    // Two logins racing with one fresh code: exactly one wins.
    let t2 = t + 120_000;
    let racing = code(&secret, t2);
    let (a, b) = tokio::join!(
        w.review.login("ana", PASSWORD, Some(&racing), "", t2),
        w.review.login("ana", PASSWORD, Some(&racing), "", t2)
    );
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1);

    let t3 = t2 + 60_000;
    assert!(
        w.review
            .disable_totp(&ana, "not the password", &code(&secret, t3), t3)
            .await
            .is_err()
    );
    w.review
        .disable_totp(&ana, PASSWORD, &code(&secret, t3), t3)
        .await
        .unwrap();
    w.review
        .login("ana", PASSWORD, None, "", t3 + 1)
        .await
        .expect("off again");
}

async fn operators_manage_only_their_own_hotline(backend: Backend) {
    let w = World::new(backend).await;
    let op = w.actor(w.gb, "op", UserRole::HotlineOperator).await;
    let ana = w.actor(w.gb, "ana", UserRole::Analyst).await;
    let ca_op = w.actor(w.ca, "caop", UserRole::HotlineOperator).await;
    let admin = w.actor(w.gb, "root", UserRole::PlatformAdmin).await;
    let request = |hotline, name: &str, role| NewUserRequest {
        hotline,
        username: name.into(),
        display_name: String::new(),
        role,
        password: PASSWORD.into(),
    };
    w.review
        .add_user((&op).into(), request(w.gb, "new1", UserRole::Analyst), NOW)
        .await
        .unwrap();
    for (by, req) in [
        (&op, request(w.ca, "new2", UserRole::Analyst)),
        (&op, request(w.gb, "new3", UserRole::PlatformAdmin)),
        (&ana, request(w.gb, "new4", UserRole::Analyst)),
    ] {
        assert!(matches!(
            w.review.add_user(by.into(), req, NOW).await,
            Err(ReviewError::Forbidden(_))
        ));
    }
    assert!(
        w.review
            .add_user((&op).into(), request(w.gb, "new1", UserRole::Analyst), NOW)
            .await
            .is_err()
    );
    assert!(
        w.review
            .add_user((&op).into(), request(w.gb, "short", UserRole::Analyst), NOW)
            .await
            .is_ok()
    );
    let weak = NewUserRequest {
        password: "short".into(),
        ..request(w.gb, "weak", UserRole::Analyst)
    };
    assert!(matches!(
        w.review.add_user((&op).into(), weak, NOW).await,
        Err(ReviewError::Invalid { .. })
    ));

    let names: Vec<String> = w
        .review
        .users_for(&op)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert!(names.contains(&"ana".to_string()) && !names.contains(&"caop".to_string()));
    assert_eq!(
        w.review.users_for(&admin).await.unwrap().len(),
        names.len() + 1
    );
    assert!(w.review.users_for(&ana).await.is_err());
    assert_eq!(w.review.hotlines_for(&op).await.unwrap().len(), 1);
    assert_eq!(w.review.hotlines_for(&admin).await.unwrap().len(), 2);
    // Another hotline's operator cannot touch gb's users or settings: not even learn they exist.
    assert!(matches!(
        w.review
            .set_user_disabled((&ca_op).into(), ana.user.id, true, NOW)
            .await,
        Err(ReviewError::NotFound(_))
    ));
    assert!(matches!(
        w.review
            .set_hotline_sharing(&ca_op, w.gb, false, false, 1, NOW)
            .await,
        Err(ReviewError::NotFound(_))
    ));
    assert!(
        w.review
            .set_hotline_sharing(&ana, w.gb, false, false, 1, NOW)
            .await
            .is_err()
    );
    w.review
        .set_hotline_sharing(&op, w.gb, true, false, 9, NOW)
        .await
        .unwrap();
    assert_eq!(
        w.store
            .review_desk()
            .hotline(w.gb)
            .await
            .unwrap()
            .unwrap()
            .daily_cap,
        9
    );
}

/// ana lost her phone: her hotline's operator (or a platform administrator, or the command
/// line) resets her second factor; her sessions end, her next sign-in needs only the
/// password but leads nowhere but enrolment, and the reset is in the audit chain. Another
/// hotline's operator and non-operators cannot reset her, nor learn she exists.
async fn a_lost_second_factor_is_reset_by_an_operator_and_enrolled_again(backend: Backend) {
    let w = World::new(backend).await;
    let ana = w.actor(w.gb, "ana", UserRole::Analyst).await;
    let op = w.actor(w.gb, "op", UserRole::HotlineOperator).await;
    let ca_op = w.actor(w.ca, "caop", UserRole::HotlineOperator).await;
    let senior = w.actor(w.gb, "sen", UserRole::SeniorAnalyst).await;
    let admin = w.actor(w.ca, "root", UserRole::PlatformAdmin).await;
    w.review.begin_totp(&ana, NOW).await.unwrap();
    let desk = w.store.review_desk();
    let secret = desk
        .user(ana.user.id)
        .await
        .unwrap()
        .unwrap()
        .totp_pending
        .unwrap();
    w.review
        .confirm_totp(&ana, &code(&secret, NOW), NOW)
        .await
        .unwrap();
    let t = NOW + 60_000;
    let before = w
        .review
        .login("ana", PASSWORD, Some(&code(&secret, t)), "", t)
        .await
        .unwrap();

    for by in [&ca_op, &senior, &ana] {
        assert!(matches!(
            w.review.reset_totp(by.into(), ana.user.id, t).await,
            Err(ReviewError::NotFound(_))
        ));
    }
    assert!(
        w.review.totp_enabled(&ana).await.unwrap(),
        "nothing changed"
    );
    w.review.session(&before.token, "", t).await.unwrap();

    w.review
        .reset_totp((&op).into(), ana.user.id, t)
        .await
        .unwrap();
    let row = desk.user(ana.user.id).await.unwrap().unwrap();
    assert_eq!((row.totp_secret, row.totp_pending), (None, None));
    assert!(row.totp_enrol_required);
    assert!(matches!(
        w.review.session(&before.token, "", t).await,
        Err(ReviewError::NoSession)
    ));
    // The next sign-in needs only the password, and its session serves only enrolment.
    let t = t + 60_000;
    let after = w.review.login("ana", PASSWORD, None, "", t).await.unwrap();
    assert!(matches!(
        w.review.session(&after.token, "", t).await,
        Err(ReviewError::NoSession)
    ));
    let (enrolling, _) = w
        .review
        .enrolment_session(&after.token, "", t)
        .await
        .unwrap();
    assert!(enrolling.user.totp_enrol_required);
    w.review.begin_totp(&enrolling, t).await.unwrap();
    let fresh = desk
        .user(ana.user.id)
        .await
        .unwrap()
        .unwrap()
        .totp_pending
        .unwrap();
    assert_ne!(fresh, secret);
    w.review
        .confirm_totp(&enrolling, &code(&fresh, t), t)
        .await
        .unwrap();
    let (ana_again, _) = w.review.session(&after.token, "", t).await.unwrap();
    assert!(!ana_again.user.totp_enrol_required);
    assert!(w.review.totp_enabled(&ana_again).await.unwrap());

    // A platform administrator of another hotline may reset her too; so may the CLI.
    w.review
        .reset_totp((&admin).into(), ana.user.id, t)
        .await
        .unwrap();
    w.review
        .reset_totp(AuditActor::Cli, ana.user.id, t)
        .await
        .unwrap();
    let resets: Vec<(String, String, String)> = desk
        .audit_entries(0, 1000, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.record.action == "second_factor_reset")
        .map(|e| (e.record.actor, e.record.subject, e.record.detail))
        .collect();
    assert_eq!(
        resets,
        [
            ("op", "second factor was on"),
            ("root", "second factor was on"),
            ("cli", "second factor was off")
        ]
        .map(|(who, was)| (
            who.to_string(),
            "user:ana".to_string(),
            format!("{was}; must enrol at next login")
        ))
    );
    assert!(
        aranea_review::audit::verify(&w.store)
            .await
            .unwrap()
            .is_intact()
    );
}
