//! Schema migrations, embedded in the binary: one folder per dialect
//! (`migrations/sqlite`, `migrations/postgres`), the same versions in both.
//!
//! A small runner of our own rather than sqlx's `Migrator`: sqlx takes no lock on SQLite,
//! so two processes opening a new database at once could both apply migration 1 and one of
//! them fail. This one applies every pending migration in one transaction (PostgreSQL: under
//! an advisory lock; SQLite: `BEGIN IMMEDIATE`, which holds the write lock), records them in
//! `aranea_migrations`, and refuses with a typed error to run when an applied migration's
//! text has changed since or the database is newer than the build, instead of guessing.

use sha2::{Digest, Sha256};

use crate::backend::{Backend, Get, on_backend};
use crate::error::StoreError;

/// One schema step: version, name, its SQL for SQLite and PostgreSQL, and what the runner
/// does after the SQL in the same transaction, where SQL alone cannot do it on both.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
    then: Option<Step>,
}

/// Work done in Rust within a migration's transaction.
#[derive(Clone, Copy)]
enum Step {
    /// Every URL's key recomputed by the frontier's `url_hash` (SQLite has no SHA-256).
    RekeyUrls,
    /// A random public reference for every report without one (SQLite has no CSPRNG).
    ReferenceReports,
}

/// URLs read and rewritten per round of [`Step::RekeyUrls`], so a large frontier is not
/// held in memory at once.
const REKEY_PAGE: i64 = 1_000;

/// Versions 2-5 are reserved, one per room, so work on several rooms at once never
/// collides on a version number; each file holds its room's tables.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "schema",
        sqlite: include_str!("../migrations/sqlite/0001_schema.sql"),
        postgres: include_str!("../migrations/postgres/0001_schema.sql"),
        then: None,
    },
    Migration {
        version: 2,
        name: "crawl",
        sqlite: include_str!("../migrations/sqlite/0002_crawl.sql"),
        postgres: include_str!("../migrations/postgres/0002_crawl.sql"),
        then: None,
    },
    Migration {
        version: 3,
        name: "server",
        sqlite: include_str!("../migrations/sqlite/0003_server.sql"),
        postgres: include_str!("../migrations/postgres/0003_server.sql"),
        then: None,
    },
    Migration {
        version: 4,
        name: "review",
        sqlite: include_str!("../migrations/sqlite/0004_review.sql"),
        postgres: include_str!("../migrations/postgres/0004_review.sql"),
        then: None,
    },
    Migration {
        version: 5,
        name: "notice",
        sqlite: include_str!("../migrations/sqlite/0005_notice.sql"),
        postgres: include_str!("../migrations/postgres/0005_notice.sql"),
        then: None,
    },
    Migration {
        version: 6,
        name: "banks",
        sqlite: include_str!("../migrations/sqlite/0006_banks.sql"),
        postgres: include_str!("../migrations/postgres/0006_banks.sql"),
        then: None,
    },
    Migration {
        version: 7,
        name: "reports",
        sqlite: include_str!("../migrations/sqlite/0007_reports.sql"),
        postgres: include_str!("../migrations/postgres/0007_reports.sql"),
        then: None,
    },
    Migration {
        version: 8,
        name: "url_keys",
        sqlite: include_str!("../migrations/sqlite/0008_url_keys.sql"),
        postgres: include_str!("../migrations/postgres/0008_url_keys.sql"),
        then: Some(Step::RekeyUrls),
    },
    Migration {
        version: 9,
        name: "report_redirects",
        sqlite: include_str!("../migrations/sqlite/0009_report_redirects.sql"),
        postgres: include_str!("../migrations/postgres/0009_report_redirects.sql"),
        then: None,
    },
    Migration {
        version: 10,
        name: "exposure_mark",
        sqlite: include_str!("../migrations/sqlite/0010_exposure_mark.sql"),
        postgres: include_str!("../migrations/postgres/0010_exposure_mark.sql"),
        then: None,
    },
    Migration {
        version: 11,
        name: "notice_links_revisits",
        sqlite: include_str!("../migrations/sqlite/0011_notice_links_revisits.sql"),
        postgres: include_str!("../migrations/postgres/0011_notice_links_revisits.sql"),
        then: None,
    },
    Migration {
        version: 12,
        name: "client_hotline",
        sqlite: include_str!("../migrations/sqlite/0012_client_hotline.sql"),
        postgres: include_str!("../migrations/postgres/0012_client_hotline.sql"),
        then: None,
    },
    Migration {
        version: 13,
        name: "report_reach_reference",
        sqlite: include_str!("../migrations/sqlite/0013_report_reach_reference.sql"),
        postgres: include_str!("../migrations/postgres/0013_report_reach_reference.sql"),
        then: Some(Step::ReferenceReports),
    },
    Migration {
        version: 14,
        name: "host_addresses_link_keys",
        sqlite: include_str!("../migrations/sqlite/0014_host_addresses_link_keys.sql"),
        postgres: include_str!("../migrations/postgres/0014_host_addresses_link_keys.sql"),
        then: None,
    },
    Migration {
        version: 15,
        name: "client_demand",
        sqlite: include_str!("../migrations/sqlite/0015_client_demand.sql"),
        postgres: include_str!("../migrations/postgres/0015_client_demand.sql"),
        then: None,
    },
];

/// The schema version this build migrates a database to.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// Any constant works; it only has to be the same in every Aranea process.
const ADVISORY_LOCK_KEY: i64 = 0x4172_616e_6561; // "Aranea"

const CREATE_TABLE_SQLITE: &str = "CREATE TABLE IF NOT EXISTS aranea_migrations (\
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum BLOB NOT NULL, \
    applied_at INTEGER NOT NULL)";
const CREATE_TABLE_POSTGRES: &str = "CREATE TABLE IF NOT EXISTS aranea_migrations (\
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum BYTEA NOT NULL, \
    applied_at BIGINT NOT NULL)";

fn checksum(sql: &str) -> Vec<u8> {
    Sha256::digest(sql.as_bytes()).to_vec()
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Backend {
    /// Applies pending migrations; returns how many were applied now.
    pub(crate) async fn migrate(&self) -> Result<usize, StoreError> {
        on_backend!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            if d == crate::backend::Dialect::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(ADVISORY_LOCK_KEY)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::raw_sql(d.pick(CREATE_TABLE_SQLITE, CREATE_TABLE_POSTGRES))
                .execute(&mut *tx)
                .await?;
            let rows = sqlx::query("SELECT version, checksum FROM aranea_migrations")
                .fetch_all(&mut *tx)
                .await?;
            let mut applied = Vec::new();
            for row in &rows {
                applied.push((row.i64("version")?, row.bytes("checksum")?));
            }
            let mut count = 0;
            for migration in MIGRATIONS {
                let sql = d.pick(migration.sqlite, migration.postgres);
                match applied.iter().find(|(v, _)| *v == migration.version) {
                    Some((_, sum)) if *sum == checksum(sql) => continue,
                    Some(_) => {
                        return Err(StoreError::MigrationChanged {
                            version: migration.version,
                        });
                    }
                    None => {}
                }
                sqlx::raw_sql(sql).execute(&mut *tx).await?;
                match migration.then {
                    None => {}
                    Some(Step::RekeyUrls) => {
                        let mut after = 0_i64;
                        loop {
                            let rows = sqlx::query(
                                "SELECT id, url FROM urls WHERE id > $1 ORDER BY id LIMIT $2",
                            )
                            .bind(after)
                            .bind(REKEY_PAGE)
                            .fetch_all(&mut *tx)
                            .await?;
                            let Some(last) = rows.last() else { break };
                            after = last.i64("id")?;
                            for row in &rows {
                                let key = crate::url_key::url_hash(&row.text("url")?);
                                sqlx::query("UPDATE urls SET url_hash = $1 WHERE id = $2")
                                    .bind(&key[..])
                                    .bind(row.i64("id")?)
                                    .execute(&mut *tx)
                                    .await?;
                            }
                        }
                    }
                    Some(Step::ReferenceReports) => {
                        let mut after = 0_i64;
                        loop {
                            let rows = sqlx::query(
                                "SELECT id FROM reports WHERE id > $1 AND reference IS NULL \
                                 ORDER BY id LIMIT $2",
                            )
                            .bind(after)
                            .bind(REKEY_PAGE)
                            .fetch_all(&mut *tx)
                            .await?;
                            let Some(last) = rows.last() else { break };
                            after = last.i64("id")?;
                            for row in &rows {
                                let id = row.i64("id")?;
                                // A reference taken already (60 random bits: all but never)
                                // is drawn again rather than failing the migration.
                                loop {
                                    let reference = crate::reports::ReportReference::random()?;
                                    let set = sqlx::query(
                                        "UPDATE reports SET reference = $1 WHERE id = $2 AND \
                                         NOT EXISTS (SELECT 1 FROM reports WHERE reference = $1)",
                                    )
                                    .bind(reference.as_str())
                                    .bind(id)
                                    .execute(&mut *tx)
                                    .await?
                                    .rows_affected();
                                    if set == 1 {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                }
                sqlx::query(
                    "INSERT INTO aranea_migrations (version, name, checksum, applied_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(migration.version)
                .bind(migration.name)
                .bind(checksum(sql))
                .bind(now_millis())
                .execute(&mut *tx)
                .await?;
                count += 1;
            }
            if let Some(newest) = applied.iter().map(|(v, _)| *v).max()
                && MIGRATIONS.iter().all(|m| m.version < newest)
            {
                return Err(StoreError::SchemaTooNew { version: newest });
            }
            tx.commit().await?;
            Ok(count)
        })
    }

    /// The highest schema version applied (0 for an empty database).
    pub(crate) async fn schema_version(&self) -> Result<i64, StoreError> {
        let exists = on_backend!(self, |pool, d| {
            sqlx::query(d.pick(
                "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' \
                 AND name = 'aranea_migrations'",
                "SELECT 1 AS found FROM pg_catalog.pg_tables \
                 WHERE tablename = 'aranea_migrations' AND schemaname = current_schema()",
            ))
            .fetch_optional(pool)
            .await?
            .is_some()
        });
        if !exists {
            return Ok(0);
        }
        on_backend!(self, |pool, d| {
            Ok(
                sqlx::query("SELECT MAX(version) AS v FROM aranea_migrations")
                    .fetch_one(pool)
                    .await?
                    .opt_i64("v")?
                    .unwrap_or(0),
            )
        })
    }
}
