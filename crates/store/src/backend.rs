//! The two back-ends behind one API: connection set-up, migrations, and the small seams
//! (dispatch macro, row access) that let each query be written once for both dialects.
//!
//! SQL placeholders are `$1`, `$2`, … everywhere: SQLite accepts them too. Where the dialects
//! differ (locking), [`Dialect::pick`] chooses between two complete static statements.
//! Multi-row statements built at run time go through [`native_sql`] (see why there).

use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use crate::Counts;
use crate::error::{StoreError, connect_error};

/// Which database a [`crate::Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

/// Pool settings.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Connections in the pool (default 8 for PostgreSQL, 4 for SQLite, which serialises
    /// writers anyway).
    pub max_connections: Option<u32>,
    /// How long a SQLite writer waits for the file lock before failing (default 30 s).
    pub busy_timeout: Duration,
    /// How long to wait for a pooled connection, including connecting (default 10 s).
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: None,
            busy_timeout: Duration::from_secs(30),
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The SQL dialect of the arm a [`on_backend!`] body runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The statement that opens a write transaction. SQLite must take the write lock up
    /// front: a deferred transaction that reads, then writes, fails with SQLITE_BUSY when
    /// another writer got in between, and the busy timeout cannot help it.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    pub(crate) fn pick(self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match self {
            Dialect::Sqlite => sqlite,
            Dialect::Postgres => postgres,
        }
    }
}

/// A connection's own placeholder style for a statement built at run time, such as the
/// frontier's multi-row statements with hundreds of parameters.
///
/// SQLite keeps `$N` as *named* parameters in a list it searches linearly: once per
/// placeholder while preparing (a string comparison against every earlier name) and once per
/// parameter when sqlx binds them (`sqlite3_bind_parameter_name`), so a statement of n
/// parameters cost O(n²) before it ran; in the crawl benchmark a third of the writer thread's
/// time went to preparing and binding. Anonymous `?` placeholders are numbered as they
/// appear and are not listed, so where a statement's `$N` appear exactly once each in the
/// order 1, 2, 3, … (the order they are bound in) they are rewritten to `?`; any other
/// statement is left as written. PostgreSQL's `$N` are unchanged.
pub(crate) fn native_sql<C: NativeSql + ?Sized>(_connection: &C, sql: String) -> String {
    C::native_sql(sql)
}

/// See [`native_sql`].
pub(crate) trait NativeSql {
    fn native_sql(sql: String) -> String;
}

impl NativeSql for sqlx::SqliteConnection {
    fn native_sql(sql: String) -> String {
        positional(&sql).unwrap_or(sql)
    }
}

impl NativeSql for sqlx::PgConnection {
    fn native_sql(sql: String) -> String {
        sql
    }
}

/// `sql` with its placeholders `$1`, `$2`, … rewritten to `?`, when each appears once and in
/// that order; `None` otherwise (or when it has none).
pub(crate) fn positional(sql: &str) -> Option<String> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let (mut expected, mut copied, mut at) = (1usize, 0usize, 0usize);
    while let Some(offset) = bytes.get(at..)?.iter().position(|&b| b == b'$') {
        let dollar = at + offset;
        let digits = bytes
            .get(dollar + 1..)?
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        at = dollar + 1 + digits;
        if digits == 0 {
            continue;
        }
        let number: usize = sql.get(dollar + 1..at)?.parse().ok()?;
        if number != expected {
            return None;
        }
        expected += 1;
        out.push_str(sql.get(copied..dollar)?);
        out.push('?');
        copied = at;
    }
    if expected == 1 {
        return None;
    }
    out.push_str(sql.get(copied..)?);
    Some(out)
}

/// Runs `$body` once per back-end with `$pool` bound to the concrete pool and `$dialect`
/// to its [`Dialect`], so one generic-looking body type-checks against both drivers.
macro_rules! on_backend {
    ($backend:expr, |$pool:ident, $dialect:ident| $body:expr) => {
        match $backend {
            $crate::backend::Backend::Sqlite($pool) => {
                #[allow(unused_variables)]
                let $dialect = $crate::backend::Dialect::Sqlite;
                $body
            }
            $crate::backend::Backend::Postgres($pool) => {
                #[allow(unused_variables)]
                let $dialect = $crate::backend::Dialect::Postgres;
                $body
            }
        }
    };
}
pub(crate) use on_backend;

/// Typed column access shared by both row types, so row mappers are written once.
pub(crate) trait Get {
    fn i64(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn opt_i64(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error>;
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, sqlx::Error>;
}

macro_rules! impl_get {
    ($row:ty) => {
        impl Get for $row {
            fn i64(&self, column: &str) -> Result<i64, sqlx::Error> {
                self.try_get(column)
            }
            fn opt_i64(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(column)
            }
            fn text(&self, column: &str) -> Result<String, sqlx::Error> {
                self.try_get(column)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(column)
            }
            fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error> {
                self.try_get(column)
            }
            fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
                self.try_get(column)
            }
        }
    };
}
impl_get!(SqliteRow);
impl_get!(PgRow);

impl Backend {
    pub(crate) async fn connect(url: &str, options: &StoreOptions) -> Result<Backend, StoreError> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            Self::connect_sqlite(path, options).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::connect_postgres(url, options).await
        } else {
            Err(StoreError::UnsupportedUrl { url: redact(url) })
        }
    }

    async fn connect_sqlite(path: &str, options: &StoreOptions) -> Result<Backend, StoreError> {
        if path.is_empty() || path.contains('?') || path.starts_with(':') {
            // In-memory databases and URL parameters would give each pooled connection
            // its own database or silently different settings.
            return Err(StoreError::UnsupportedUrl {
                url: format!("sqlite://{path}"),
            });
        }
        let path = std::path::Path::new(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL loses no committed transaction when the process dies, only
            // on power loss; FULL would fsync every commit.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true)
            // 32 MiB of page cache per connection instead of 2: a frontier of a million URLs
            // outgrows 2 MiB at once (its indexes alone are tens of MiB).
            // Not `temp_store = MEMORY`, though statement journals written to a temporary
            // file were 9 % of the writer thread's time in the crawl benchmark (about 1 % of
            // the crawl's CPU): it would also hold every transient sort index in memory,
            // without bound, where a file spills once it outgrows the page cache.
            .pragma("cache_size", "-32768");
        // Processes opening a new file at the same moment race to switch it to WAL; SQLite
        // answers the loser "database is locked" at once, without waiting on the busy
        // timeout. Such a first connection is retried until the busy timeout has passed.
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            let opened = SqlitePoolOptions::new()
                .max_connections(options.max_connections.unwrap_or(4))
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect.clone())
                .await;
            match opened {
                Ok(pool) => return Ok(Backend::Sqlite(pool)),
                Err(error)
                    if is_sqlite_busy(&error) && started.elapsed() < options.busy_timeout =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(error) => return Err(connect_error(error)),
            }
        }
    }

    async fn connect_postgres(url: &str, options: &StoreOptions) -> Result<Backend, StoreError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::UnsupportedUrl { url: redact(url) })?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.unwrap_or(8))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(connect_error)?;
        Ok(Backend::Postgres(pool))
    }

    pub(crate) fn kind(&self) -> BackendKind {
        match self {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    pub(crate) async fn counts(&self) -> Result<Counts, StoreError> {
        const SQL: &str = "SELECT \
            (SELECT COUNT(*) FROM reports) AS reports, \
            (SELECT COUNT(*) FROM hosts) AS hosts, \
            (SELECT COUNT(*) FROM urls) AS urls, \
            (SELECT COUNT(*) FROM urls WHERE state = 'queued') AS urls_queued, \
            (SELECT COUNT(*) FROM fetches) AS fetches, \
            (SELECT COUNT(*) FROM media) AS media, \
            (SELECT COUNT(*) FROM sightings) AS sightings, \
            (SELECT COUNT(*) FROM matches) AS matches, \
            (SELECT COUNT(*) FROM review_queue WHERE state <> 'decided') AS review";
        on_backend!(self, |pool, d| {
            let row = sqlx::query(SQL).fetch_one(pool).await?;
            Ok(Counts {
                reports: row.i64("reports")?,
                hosts: row.i64("hosts")?,
                urls: row.i64("urls")?,
                urls_queued: row.i64("urls_queued")?,
                fetches: row.i64("fetches")?,
                media: row.i64("media")?,
                sightings: row.i64("sightings")?,
                matches: row.i64("matches")?,
                review: row.i64("review")?,
            })
        })
    }

    pub(crate) async fn close(&self) {
        match self {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let authority = &url[scheme_end + 3..at];
            match authority.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &authority[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// SQLITE_BUSY (5) or SQLITE_LOCKED (6), extended codes included.
fn is_sqlite_busy(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(database) = error else {
        return false;
    };
    database
        .code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

#[cfg(test)]
mod tests {
    use super::{positional, redact};

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(
            redact("postgres://me:secret@db:5432/x"),
            "postgres://me:***@db:5432/x"
        );
        assert_eq!(redact("postgres://me@db/x"), "postgres://me@db/x");
        assert_eq!(redact("mysql://x"), "mysql://x");
    }

    #[test]
    fn placeholders_in_binding_order_become_anonymous() {
        assert_eq!(
            positional("INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)").as_deref(),
            Some("INSERT INTO t (a, b) VALUES (?, ?), (?, ?)")
        );
        // Two digits, a cast around one and text after the last.
        let many: Vec<String> = (1..=12).map(|n| format!("CAST(${n} AS INTEGER)")).collect();
        let sql = format!("SELECT {} FROM t", many.join(", "));
        assert_eq!(
            positional(&sql),
            Some(format!(
                "SELECT {} FROM t",
                ["CAST(? AS INTEGER)"; 12].join(", ")
            ))
        );
    }

    #[test]
    fn placeholders_out_of_order_repeated_or_absent_are_left_alone() {
        // `$1` twice: anonymous placeholders would need it bound twice.
        assert_eq!(
            positional("UPDATE t SET a = $1 WHERE a > $1 AND id IN ($2)"),
            None
        );
        // `$1` after `$2`: bound in the other order.
        assert_eq!(positional("SELECT $2, $1"), None);
        // A gap.
        assert_eq!(positional("SELECT $1, $3"), None);
        assert_eq!(positional("SELECT 1"), None);
        // A dollar that is not a placeholder is kept as it is.
        assert_eq!(
            positional("SELECT '$' || $1").as_deref(),
            Some("SELECT '$' || ?")
        );
    }
}
