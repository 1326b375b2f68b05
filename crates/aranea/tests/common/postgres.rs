//! Throwaway databases on the test PostgreSQL server (`ARANEA_TEST_POSTGRES`, which
//! `scripts/test` starts), for the binary's tests that run on PostgreSQL.
// Each test binary that includes this file uses part of it.
#![allow(dead_code)]

use sqlx::Connection;

/// Runs `f` to completion on a runtime of its own (tests are synchronous).
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A new, empty database `name` (dropped first if a previous run left it); returns its URL.
pub fn fresh_database(name: &str) -> String {
    let server = std::env::var("ARANEA_TEST_POSTGRES").expect(
        "ARANEA_TEST_POSTGRES is not set: run scripts/test, which starts a throwaway PostgreSQL",
    );
    block_on(async {
        let mut conn = sqlx::PgConnection::connect(&server).await.unwrap();
        for sql in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    });
    let (base, _) = server.rsplit_once('/').expect("postgres://…/DATABASE");
    format!("{base}/{name}")
}

/// Runs one statement against the database at `db` (a test's hand on the data).
pub fn execute(db: &str, statement: &'static str, bind: i64) {
    block_on(async {
        let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
        sqlx::query(statement)
            .bind(bind)
            .execute(&mut conn)
            .await
            .unwrap();
    });
}

/// The one `BIGINT` that `query` selects.
pub fn scalar(db: &str, query: &'static str) -> i64 {
    block_on(async {
        let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
        sqlx::query_scalar(query)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    })
}
