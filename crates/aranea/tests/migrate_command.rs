//! `aranea migrate` end to end on both back-ends: the first run applies the schema, the
//! second applies nothing.

use std::process::Command;

use aranea_store::SCHEMA_VERSION;

#[path = "common/postgres.rs"]
mod postgres;

fn migrate(db: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_aranea"))
        .args(["--db", db, "migrate"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "aranea migrate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn migrate_applies_the_schema_once_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("aranea-migrate-{}", std::process::id()));
    let db = format!("sqlite://{}", dir.join("sub/aranea.db").display());
    assert_eq!(
        migrate(&db),
        format!("applied {SCHEMA_VERSION} migration(s); schema at version {SCHEMA_VERSION}\n")
    );
    assert_eq!(
        migrate(&db),
        format!("applied 0 migration(s); schema at version {SCHEMA_VERSION}\n")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn migrate_applies_the_schema_once_on_postgres() {
    let db = postgres::fresh_database(&format!("aranea_migrate_{}", std::process::id()));
    assert_eq!(
        migrate(&db),
        format!("applied {SCHEMA_VERSION} migration(s); schema at version {SCHEMA_VERSION}\n")
    );
    assert_eq!(
        migrate(&db),
        format!("applied 0 migration(s); schema at version {SCHEMA_VERSION}\n")
    );
}

#[test]
fn migrate_refuses_an_unknown_database_url() {
    let output = Command::new(env!("CARGO_BIN_EXE_aranea"))
        .args(["--db", "mysql://db.example/aranea", "migrate"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unsupported database URL"), "{stderr}");
}
