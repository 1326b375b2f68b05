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
        text(&users).contains("ana\tgb-hl\tsenior_analyst\ttrue\tfalse"),
        "{}",
        text(&users)
    );

    let verify = aranea(data, &["audit", "verify"], None);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(
        text(&verify).contains("audit trail intact: 3 rows"),
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
