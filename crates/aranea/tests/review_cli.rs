//! `aranea hotline`, `aranea user`, `aranea audit verify` and `aranea vault keygen` against
//! a real SQLite data directory, through the built binary.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn aranea(data: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aranea"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("ARANEA_DB")
        .env_remove("ARANEA_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn hotlines_users_and_the_audit_chain_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let add = aranea(
        data,
        &[
            "hotline",
            "add",
            "gb-hl",
            "--name",
            "UK hotline",
            "--country",
            "gb",
            "--languages",
            "en,cy",
        ],
        None,
    );
    assert!(add.status.success(), "{}", text(&add));
    let again = aranea(
        data,
        &["hotline", "add", "gb-hl", "--name", "x", "--country", "GB"],
        None,
    );
    assert!(!again.status.success(), "codes are unique");
    let list = aranea(data, &["hotline", "list"], None);
    assert!(
        text(&list).contains("gb-hl\tUK hotline\tGB\tGB\ten,cy\ttrue\ttrue\t200"),
        "{}",
        text(&list)
    );

    let no_stdin = aranea(
        data,
        &[
            "user",
            "add",
            "ana",
            "--hotline",
            "gb-hl",
            "--role",
            "analyst",
        ],
        None,
    );
    assert!(
        !no_stdin.status.success(),
        "passwords never come from arguments"
    );
    let weak = aranea(
        data,
        &[
            "user",
            "add",
            "ana",
            "--hotline",
            "gb-hl",
            "--role",
            "analyst",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(!weak.status.success());
    let user = aranea(
        data,
        &[
            "user",
            "add",
            "ana",
            "--hotline",
            "gb-hl",
            "--role",
            "senior_analyst",
            "--password-stdin",
        ],
        Some("a long enough passphrase\n"),
    );
    assert!(user.status.success(), "{}", text(&user));
    let bad_role = aranea(
        data,
        &[
            "user",
            "add",
            "bob",
            "--hotline",
            "gb-hl",
            "--role",
            "king",
            "--password-stdin",
        ],
        Some("a long enough passphrase"),
    );
    assert!(!bad_role.status.success());
    let disable = aranea(data, &["user", "disable", "ana"], None);
    assert!(disable.status.success(), "{}", text(&disable));
    let users = aranea(data, &["user", "list", "--hotline", "gb-hl"], None);
    assert!(
        text(&users).contains("ana\tgb-hl\tsenior_analyst\ttrue\tfalse\tfalse"),
        "{}",
        text(&users)
    );

    // A lost second factor: ana had one on (set in the database as enrolment would); the
    // reset removes it and makes her enrol again at her next sign-in.
    set_totp_secret(&data.join("aranea.db"), "ana");
    let users = aranea(data, &["user", "list"], None);
    assert!(
        text(&users).contains("ana\tgb-hl\tsenior_analyst\ttrue\ttrue\tfalse"),
        "{}",
        text(&users)
    );
    let reset = aranea(data, &["user", "reset-2fa", "ana"], None);
    assert!(reset.status.success(), "{}", text(&reset));
    let users = aranea(data, &["user", "list"], None);
    assert!(
        text(&users).contains("ana\tgb-hl\tsenior_analyst\ttrue\tfalse\ttrue"),
        "{}",
        text(&users)
    );
    let nobody = aranea(data, &["user", "reset-2fa", "nobody"], None);
    assert!(!nobody.status.success(), "{}", text(&nobody));

    let verify = aranea(data, &["audit", "verify"], None);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(
        text(&verify).contains("audit trail intact: 4 rows"),
        "{}",
        text(&verify)
    );

    let keys = aranea(data, &["vault", "keygen"], None);
    let out = text(&keys);
    let public = out.lines().find_map(|l| l.strip_prefix("public ")).unwrap();
    let secret = out.lines().find_map(|l| l.strip_prefix("secret ")).unwrap();
    assert_eq!((public.len(), secret.len()), (64, 64));
    assert_ne!(public, secret);
}

/// Turns a user's second factor on directly in the SQLite database.
fn set_totp_secret(db: &std::path::Path, username: &str) {
    use sqlx::Connection;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let done = sqlx::query("UPDATE users SET totp_secret = x'0102030405' WHERE username = $1")
            .bind(username)
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1);
        conn.close().await.unwrap();
    });
}
