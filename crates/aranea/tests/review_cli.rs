//! `aranea hotline`, `aranea user`, `aranea audit verify` and `aranea vault` against a real
//! SQLite data directory, through the built binary.

#[path = "common/process.rs"]
mod process;

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

fn succeeded(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn json_array(o: &Output) -> Vec<serde_json::Value> {
    let out = succeeded(o);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    succeeded(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The one object a single-result command prints on one line for `json` and `jsonl`.
fn json_object(o: &Output) -> serde_json::Value {
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    assert_eq!(out.lines().count(), 1, "{}", text(o));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn refuses_bad_format(data: &std::path::Path, args: &[&str]) {
    process::assert_bad_format_refused(args, |args| aranea(data, args, None));
}

#[test]
fn hotlines_users_the_audit_chain_and_the_vault_purge_print_json_and_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    for (code, country, languages) in [("gb-hl", "gb", "en,cy"), ("nl-hl", "nl", "nl")] {
        let add = aranea(
            data,
            &[
                "hotline",
                "add",
                code,
                "--name",
                &format!("{code} hotline"),
                "--country",
                country,
                "--languages",
                languages,
                "--daily-cap",
                "150",
            ],
            None,
        );
        assert!(add.status.success(), "{}", text(&add));
    }
    for (username, hotline, role) in [
        ("ana", "gb-hl", "analyst"),
        ("bob", "nl-hl", "auditor"),
        ("cem", "nl-hl", "senior_analyst"),
    ] {
        let add = aranea(
            data,
            &[
                "user",
                "add",
                username,
                "--hotline",
                hotline,
                "--role",
                role,
                "--display-name",
                &username.to_uppercase(),
                "--password-stdin",
            ],
            Some("a long enough passphrase\n"),
        );
        assert!(add.status.success(), "{}", text(&add));
    }
    set_totp_secret(&data.join("aranea.db"), "bob");

    let hotlines = json_array(&aranea(
        data,
        &["hotline", "list", "--format", "json"],
        None,
    ));
    assert_eq!(
        json_lines(&aranea(
            data,
            &["hotline", "list", "--format", "jsonl"],
            None
        )),
        hotlines
    );
    let gb = hotlines.iter().find(|h| h["code"] == "gb-hl").unwrap();
    assert_eq!(hotlines.len(), 2, "{hotlines:?}");
    assert_eq!(gb["name"], "gb-hl hotline");
    assert_eq!(
        (&gb["country"], &gb["jurisdiction"]),
        (&"GB".into(), &"GB".into())
    );
    assert_eq!(gb["languages"], serde_json::json!(["en", "cy"]));
    assert_eq!(
        (&gb["shares_review_pool"], &gb["shares_banks"]),
        (&true.into(), &true.into())
    );
    assert_eq!(gb["daily_cap"], 150);
    assert!(gb["id"].is_i64() && gb["created_at"].is_i64(), "{gb}");

    let users = json_array(&aranea(data, &["user", "list", "--format", "json"], None));
    assert_eq!(
        json_lines(&aranea(data, &["user", "list", "--format", "jsonl"], None)),
        users
    );
    let mut names: Vec<_> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["ana", "bob", "cem"]);
    let bob = users.iter().find(|u| u["username"] == "bob").unwrap();
    assert_eq!(
        (&bob["hotline"], &bob["role"]),
        (&"nl-hl".into(), &"auditor".into())
    );
    assert_eq!(bob["display_name"], "BOB");
    assert_eq!(
        (&bob["disabled"], &bob["totp_enrolled"]),
        (&false.into(), &true.into())
    );
    assert_eq!(bob["totp_enrol_required"], false);
    for user in &users {
        let fields = user.as_object().unwrap();
        assert!(
            fields
                .keys()
                .all(|k| !k.contains("password") && !k.contains("secret")),
            "no secret in {user}"
        );
    }
    let nl_only = json_lines(&aranea(
        data,
        &["user", "list", "--hotline", "nl-hl", "--format", "jsonl"],
        None,
    ));
    assert_eq!(nl_only.len(), 2, "{nl_only:?}");
    assert!(nl_only.iter().all(|u| u["hotline"] == "nl-hl"));

    // 2 hotlines and 3 users added: 5 audited changes.
    for format in ["json", "jsonl"] {
        let verify = aranea(data, &["audit", "verify", "--format", format], None);
        assert!(verify.status.success(), "{}", text(&verify));
        assert_eq!(
            json_object(&verify),
            serde_json::json!({"intact": true, "rows": 5, "problems": []})
        );
        let purge = aranea(data, &["vault", "purge", "--format", format], None);
        assert!(purge.status.success(), "{}", text(&purge));
        assert_eq!(json_object(&purge), serde_json::json!({"purged": 0}));
    }
    run_sql(
        &data.join("aranea.db"),
        "UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 2",
        &[],
    );
    for format in ["json", "jsonl"] {
        let broken = aranea(data, &["audit", "verify", "--format", format], None);
        assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
        let report = json_object(&broken);
        assert_eq!(
            (&report["intact"], &report["rows"]),
            (&false.into(), &5.into())
        );
        let problems = report["problems"].as_array().unwrap();
        assert!(
            !problems.is_empty()
                && problems
                    .iter()
                    .all(|p| p.as_str().is_some_and(|p| !p.is_empty())),
            "{report}"
        );
    }

    for args in [
        &["hotline", "list"][..],
        &["user", "list"],
        &["audit", "verify"],
        &["vault", "purge"],
    ] {
        refuses_bad_format(data, args);
    }
}

/// Runs one statement changing one row directly on the SQLite database, as an intruder (or a
/// test setting up what the CLI cannot) with file access would.
fn run_sql(db: &std::path::Path, sql: &'static str, binds: &[&str]) {
    use sqlx::Connection;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let query = binds
            .iter()
            .fold(sqlx::query(sql), |query, bind| query.bind(*bind));
        let done = query.execute(&mut conn).await.unwrap();
        assert_eq!(done.rows_affected(), 1);
        conn.close().await.unwrap();
    });
}

/// Turns a user's second factor on directly in the SQLite database.
fn set_totp_secret(db: &std::path::Path, username: &str) {
    run_sql(
        db,
        "UPDATE users SET totp_secret = x'0102030405' WHERE username = $1",
        &[username],
    );
}
