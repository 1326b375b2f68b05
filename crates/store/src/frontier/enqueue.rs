//! Adding URLs to the frontier: one transaction per batch, deduplicated on the canonical
//! URL's key (`url_hash`: origin first; `INSERT … ON CONFLICT DO NOTHING`), hosts created on
//! first sight.

use super::{HostId, MAX_HOST_KEY_BYTES, MAX_URL_BYTES, Priority, UrlId, UrlSource};
use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::{StoreError, check_range, check_text};
use crate::reports::ReportId;

/// Deepest link depth accepted.
pub const MAX_DEPTH: u32 = 10_000;

/// A URL to enqueue. The crawler canonicalises; the store takes the string as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUrl {
    /// The canonical URL (at most [`super::MAX_URL_BYTES`]).
    pub url: String,
    /// The host key (`scheme://host[:port]`) that leasing is done by.
    pub host_key: String,
    /// The registrable domain (public suffix + 1), for per-domain budgets.
    pub registrable_domain: String,
    pub source: UrlSource,
    pub priority: Priority,
    /// Links followed from a seed or report (0 for seeds and reports).
    pub depth: u32,
    /// Not to be fetched before this time.
    pub next_fetch_at: UnixMillis,
    pub report_id: Option<ReportId>,
    /// The page this URL was found on.
    pub parent: Option<UrlId>,
}

impl NewUrl {
    /// A depth-0 URL with no report or parent.
    pub fn new(
        url: &str,
        host_key: &str,
        registrable_domain: &str,
        source: UrlSource,
        priority: Priority,
        next_fetch_at: UnixMillis,
    ) -> NewUrl {
        NewUrl {
            url: url.to_string(),
            host_key: host_key.to_string(),
            registrable_domain: registrable_domain.to_string(),
            source,
            priority,
            depth: 0,
            next_fetch_at,
            report_id: None,
            parent: None,
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        check_text("URL", &self.url, MAX_URL_BYTES, false)?;
        check_text("host key", &self.host_key, MAX_HOST_KEY_BYTES, false)?;
        check_text(
            "registrable domain",
            &self.registrable_domain,
            MAX_HOST_KEY_BYTES,
            true,
        )?;
        check_range("depth", i64::from(self.depth), 0, i64::from(MAX_DEPTH))
    }
}

/// What happened to one URL of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnqueuedUrl {
    pub id: UrlId,
    pub host_id: HostId,
    /// False when the URL was already known (nothing changed).
    pub inserted: bool,
}

pub(crate) use crate::url_key::url_hash;

// A leased host keeps due_at = lease expiry: its holder recomputes due_at on release.
// A URL in flight is `queued` with `leased_epoch` set: left alone, its holder completes it.
pub(super) const RESCHEDULE: &str = "UPDATE urls SET state = 'queued', next_fetch_at = $2, \
    priority = $3, leased_epoch = NULL WHERE id = $1 AND state <> 'queued' RETURNING host_id";
// Waits for a transaction settling the URL (which holds its row) before RESCHEDULE reads
// its state: an UPDATE alone would judge the row by its snapshot, see it still in flight
// and skip it without waiting, and the page would then settle on a verdict taken before
// the match this recheck is for.
const LOCK_URL_POSTGRES: &str = "SELECT id FROM urls WHERE id = $1 FOR UPDATE";
const LOCK_URL_SQLITE: &str = "SELECT id FROM urls WHERE id = $1";
// The URL's host first (see `HostLocks`): a settlement holds the host's row before it
// writes the URL's, so the other way round the two could wait for each other.
const LOCK_URL_HOST_POSTGRES: &str = "SELECT id FROM hosts \
    WHERE id = (SELECT host_id FROM urls WHERE id = $1) FOR NO KEY UPDATE";
pub(super) const MAKE_HOST_DUE: &str = "UPDATE hosts SET urls_known = urls_known + $2, \
    due_at = CASE \
        WHEN lease_owner IS NOT NULL THEN due_at \
        WHEN due_at IS NULL OR due_at > (CASE WHEN next_allowed_at > $3 THEN next_allowed_at ELSE $3 END) \
            THEN (CASE WHEN next_allowed_at > $3 THEN next_allowed_at ELSE $3 END) \
        ELSE due_at END \
    WHERE id = $1";

/// Checks every URL of a batch before a transaction is opened.
pub(super) fn check_batch(batch: &[NewUrl]) -> Result<(), StoreError> {
    batch.iter().try_for_each(NewUrl::check)
}

/// One order for every writer (host key, then URL hash) so that concurrent batches on
/// PostgreSQL take row locks in the same order and cannot deadlock.
pub(super) fn lock_order(batch: &[NewUrl]) -> Vec<(usize, [u8; 32])> {
    let mut order: Vec<(usize, [u8; 32])> = batch
        .iter()
        .enumerate()
        .map(|(i, u)| (i, url_hash(&u.url)))
        .collect();
    order.sort_by(|a, b| {
        let (ua, ub) = (&batch[a.0], &batch[b.0]);
        ua.host_key.cmp(&ub.host_key).then(a.1.cmp(&b.1))
    });
    order
}

/// Rows per multi-row statement (URLs, embeds, completions, fetches): at most 11 parameters
/// each, far below SQLite's 32,766 and PostgreSQL's 65,535 parameters per statement.
pub(super) const ROWS_PER_STATEMENT: usize = 500;

/// Inserts `rows` URLs unless known (by hash); returns each inserted row's id and hash.
pub(super) fn insert_urls_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO urls (host_id, url, url_hash, source, priority, depth, next_fetch_at, \
         report_id, parent_id, created_at, leased_epoch) VALUES ",
    );
    push_tuples(&mut sql, rows, 11, 1, &[]);
    sql.push_str(" ON CONFLICT (url_hash) DO NOTHING RETURNING id, url_hash");
    sql
}

/// The id and host of each of `rows` URL hashes.
pub(super) fn select_urls_sql(rows: usize) -> String {
    let mut sql = String::from("SELECT id, host_id, url_hash FROM urls WHERE url_hash IN ");
    push_tuples(&mut sql, 1, rows, 1, &[]);
    sql
}

/// Raises `rows` URLs to `$1` (the ids follow) where they are still queued below it.
pub(super) fn raise_priorities_sql(rows: usize) -> String {
    let mut sql = String::from(
        "UPDATE urls SET priority = $1 WHERE state = 'queued' AND priority > $1 AND id IN ",
    );
    push_tuples(&mut sql, 1, rows, 2, &[]);
    sql
}

/// Records `rows` (media URL, page) embeds, each once.
pub(super) fn insert_embeds_sql(rows: usize) -> String {
    let mut sql =
        String::from("INSERT INTO embeds (media_url_id, page_url_id, created_at) VALUES ");
    push_tuples(&mut sql, rows, 3, 1, &[]);
    sql.push_str(" ON CONFLICT (media_url_id, page_url_id) DO NOTHING");
    sql
}

/// Appends `rows` tuples of `width` placeholders, numbered from `$first` in order of
/// appearance (SQLite numbers `$N` parameters by first appearance); a column with a type in
/// `casts` is cast to it (PostgreSQL types a `VALUES` list's parameters as text).
pub(super) fn push_tuples(
    sql: &mut String,
    rows: usize,
    width: usize,
    first: usize,
    casts: &[&str],
) {
    use std::fmt::Write;
    let mut n = first;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..width {
            let sep = if column == 0 { "" } else { ", " };
            let _ = match casts.get(column) {
                Some(ty) => write!(sql, "{sep}CAST(${n} AS {ty})"),
                None => write!(sql, "{sep}${n}"),
            };
            n += 1;
        }
        sql.push(')');
    }
}

/// The ids and keys of `rows` hosts, by key.
pub(super) fn select_hosts_sql(rows: usize) -> String {
    let mut sql = String::from("SELECT id, key FROM hosts WHERE key IN ");
    push_tuples(&mut sql, 1, rows, 1, &[]);
    sql
}

/// Creates `rows` hosts (key, registrable domain, creation time) unless known; returns the
/// id and key of each one created.
pub(super) fn insert_hosts_sql(rows: usize) -> String {
    let mut sql = String::from("INSERT INTO hosts (key, registrable_domain, created_at) VALUES ");
    push_tuples(&mut sql, rows, 3, 1, &[]);
    sql.push_str(" ON CONFLICT (key) DO NOTHING RETURNING id, key");
    sql
}

/// Where the database locks rows (PostgreSQL), the statement that locks `rows` hosts, by id,
/// in key order (see [`HostLocks`]) before [`enqueue_in!`] inserts URLs on them and
/// [`make_hosts_due_sql`] updates them: an `UPDATE … FROM (VALUES …)` locks its rows in
/// whatever order its plan visits them, not the list's. SQLite locks the whole database for
/// its one writer: nothing to order.
pub(super) fn lock_hosts_sql<C: HostLocks + ?Sized>(
    _connection: &C,
    rows: usize,
) -> Option<String> {
    C::lock_hosts_sql(rows)
}

/// The one order in which every PostgreSQL transaction of the frontier locks host rows, so
/// that no two of them can each hold a host row the other waits for (issue #5: workers
/// settling pages that link to each other's hosts):
/// 1. the hosts it creates, inserted in key order (an insert waits only for another
///    transaction's uncommitted insert of the same key, which inserts in key order too, and
///    before it locks anything);
/// 2. then every host row it will lock, update, or insert URLs under, locked in one
///    statement (per [`ROWS_PER_STATEMENT`] rows, in order) in key order, with `FOR NO KEY
///    UPDATE`: the lock `UPDATE` takes itself, and the one lock a lease is held with
///    ([`super::lease::HOLD_POSTGRES`]), so no transaction upgrades a lock it holds (the URLs
///    inserted on those hosts, whose foreign keys take `FOR KEY SHARE`, are not held up);
/// 3. then only rows it holds: re-locking one is free, and the URL rows it writes are on
///    those hosts (a URL is inserted, raised, completed or requeued by a transaction holding
///    its host's row, so no two wait for each other's URL either).
///
/// [`enqueue_in!`] follows it for its batch; [`super::Frontier::settle_pages`] for the
/// whole settlement (its leases, its links' hosts, the hosts of the pages it may requeue)
/// with [`HostLocks::lock_hosts_in_order`] before its first lock. A transaction locking one
/// host only (a lease held to hand out or complete URLs) or skipping locked rows (a claim)
/// cannot close a cycle.
pub(crate) trait HostLocks {
    /// See [`lock_hosts_sql`].
    fn lock_hosts_sql(rows: usize) -> Option<String>;

    /// Step 2 above for a settlement, inside its open transaction: locks the hosts `ids`,
    /// the existing hosts of `keys`, and the hosts of the URLs `urls`, together in key order.
    /// Nothing on SQLite.
    fn lock_hosts_in_order(
        &mut self,
        ids: &[i64],
        keys: &[&str],
        urls: &[i64],
    ) -> impl std::future::Future<Output = Result<(), sqlx::Error>> + Send;
}

impl HostLocks for sqlx::SqliteConnection {
    fn lock_hosts_sql(_rows: usize) -> Option<String> {
        None
    }

    async fn lock_hosts_in_order(
        &mut self,
        _ids: &[i64],
        _keys: &[&str],
        _urls: &[i64],
    ) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

impl HostLocks for sqlx::PgConnection {
    fn lock_hosts_sql(rows: usize) -> Option<String> {
        let mut sql = String::from("SELECT id FROM hosts WHERE id IN ");
        push_tuples(&mut sql, 1, rows, 1, &[]);
        sql.push_str(" ORDER BY key FOR NO KEY UPDATE");
        Some(sql)
    }

    async fn lock_hosts_in_order(
        &mut self,
        ids: &[i64],
        keys: &[&str],
        urls: &[i64],
    ) -> Result<(), sqlx::Error> {
        // Arrays: one statement whatever the settlement's size, so one order.
        sqlx::query(
            "SELECT id FROM hosts WHERE id = ANY($1) OR key = ANY($2) \
             OR id IN (SELECT host_id FROM urls WHERE id = ANY($3)) \
             ORDER BY key FOR NO KEY UPDATE",
        )
        .bind(ids)
        .bind(keys)
        .bind(urls)
        .execute(self)
        .await?;
        Ok(())
    }
}

/// The runs of `order` (see [`lock_order`]) that share a host key.
pub(super) fn host_runs<'a>(
    batch: &[NewUrl],
    order: &'a [(usize, [u8; 32])],
) -> Vec<&'a [(usize, [u8; 32])]> {
    let key = |entry: &(usize, [u8; 32])| batch.get(entry.0).map(|u| u.host_key.as_str());
    let mut runs = Vec::new();
    let mut rest = order;
    while let Some(first) = rest.first() {
        let len = rest
            .iter()
            .take_while(|e| key(e) == key(first))
            .count()
            .max(1);
        let (run, tail) = rest.split_at(len.min(rest.len()));
        runs.push(run);
        rest = tail;
    }
    runs
}

/// A batch's hosts in key order, each with the registrable domain it is created with (its
/// first URL's in [`lock_order`]), and which of them each entry of `order` is on.
pub(super) fn hosts_of<'a>(
    batch: &'a [NewUrl],
    order: &[(usize, [u8; 32])],
) -> (Vec<(&'a str, &'a str)>, Vec<usize>) {
    let mut hosts = Vec::new();
    let mut host_of = Vec::with_capacity(order.len());
    for run in host_runs(batch, order) {
        let Some(first) = run.first().and_then(|(i, _)| batch.get(*i)) else {
            continue;
        };
        host_of.extend(std::iter::repeat_n(hosts.len(), run.len()));
        hosts.push((first.host_key.as_str(), first.registrable_domain.as_str()));
    }
    (hosts, host_of)
}

/// Inside the open write transaction `$tx`: adds the id of each existing host of `$keys`
/// to `$ids` (key → id), one statement per [`ROWS_PER_STATEMENT`] keys.
macro_rules! look_up_hosts_in {
    ($tx:ident, $keys:expr, $ids:expr) => {{
        let keys: &[&str] = $keys;
        let ids: &mut std::collections::HashMap<String, i64> = $ids;
        for chunk in keys.chunks($crate::frontier::enqueue::ROWS_PER_STATEMENT) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(
                &*$tx,
                $crate::frontier::enqueue::select_hosts_sql(chunk.len()),
            )));
            for key in chunk {
                query = query.bind(*key);
            }
            for row in query.fetch_all(&mut *$tx).await? {
                ids.insert(row.text("key")?, row.i64("id")?);
            }
        }
    }};
}
pub(super) use look_up_hosts_in;

/// Inside the open write transaction `$tx`: the ids of `$hosts` (key, registrable domain;
/// see [`hosts_of`]), in their order, the missing ones created at `$now`. Mostly known (a
/// page's own host, a site's media host), so looked up first.
macro_rules! host_ids_in {
    ($tx:ident, $hosts:expr, $now:expr) => {{
        let hosts: &[(&str, &str)] = $hosts;
        let now: $crate::UnixMillis = $now;
        let mut ids: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        let keys: Vec<&str> = hosts.iter().map(|(key, _)| *key).collect();
        $crate::frontier::enqueue::look_up_hosts_in!($tx, &keys, &mut ids);
        let missing: Vec<(&str, &str)> = hosts
            .iter()
            .filter(|(key, _)| !ids.contains_key(*key))
            .copied()
            .collect();
        for chunk in missing.chunks($crate::frontier::enqueue::ROWS_PER_STATEMENT) {
            let mut insert = sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(
                &*$tx,
                $crate::frontier::enqueue::insert_hosts_sql(chunk.len()),
            )));
            for (key, domain) in chunk {
                insert = insert.bind(*key).bind(*domain).bind(now);
            }
            for row in insert.fetch_all(&mut *$tx).await? {
                ids.insert(row.text("key")?, row.i64("id")?);
            }
            // Created by another writer meanwhile (no row returned for those): looked up
            // again.
            let raced: Vec<&str> = chunk
                .iter()
                .map(|(key, _)| *key)
                .filter(|key| !ids.contains_key(*key))
                .collect();
            $crate::frontier::enqueue::look_up_hosts_in!($tx, &raced, &mut ids);
        }
        let mut in_order: Vec<i64> = Vec::with_capacity(hosts.len());
        for (key, _) in hosts {
            match ids.get(*key) {
                Some(id) => in_order.push(*id),
                None => {
                    return Err($crate::StoreError::NotFound {
                        what: "host just created",
                        id: key.to_string(),
                    });
                }
            }
        }
        in_order
    }};
}
pub(super) use host_ids_in;

/// Inside the open write transaction `$tx`: adds to the URLs known of each of `$due` hosts
/// (id, URLs inserted, earliest of their fetch times; in key order) and makes it due by
/// then, as [`MAKE_HOST_DUE`] does for one host, in one statement per
/// [`ROWS_PER_STATEMENT`] hosts. On PostgreSQL their rows are already locked (see
/// [`HostLocks`]).
macro_rules! make_hosts_due_in {
    ($tx:ident, $due:expr) => {{
        let due: &[(i64, i64, i64)] = $due;
        for chunk in due.chunks($crate::frontier::enqueue::ROWS_PER_STATEMENT) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(
                &*$tx,
                $crate::frontier::enqueue::make_hosts_due_sql(chunk.len()),
            )));
            for (id, inserted, earliest) in chunk {
                query = query.bind(*id).bind(*inserted).bind(*earliest);
            }
            query.execute(&mut *$tx).await?;
        }
    }};
}
pub(super) use make_hosts_due_in;

/// Enqueues `$batch` (checked with [`check_batch`]) inside the open write transaction `$tx`;
/// evaluates to one [`EnqueuedUrl`] per input, in input order. A constant number of
/// statements per batch (per [`ROWS_PER_STATEMENT`] rows), whatever its hosts: on SQLite
/// each statement is a round trip to the connection's thread. In [`lock_order`], so that
/// concurrent batches on PostgreSQL wait for each other's rows in one order (see
/// [`HostLocks`]): the hosts' rows (looked up together, the missing ones created together,
/// then on PostgreSQL all of them locked in key order); the URLs of all hosts in
/// multi-row statements (inserted ones returned; the rest, known, looked up together); the
/// counters and due times of the hosts that got new URLs in one statement; the embeds of
/// the batch last.
///
/// With `$taken_by` (`Some(&map)` of host id to lease epoch), the URLs inserted on those
/// hosts are handed out under those leases as they are inserted (see
/// [`super::Frontier::enqueue_urls_taken`]).
macro_rules! enqueue_in {
    ($tx:ident, $batch:expr, $now:expr) => {
        $crate::frontier::enqueue::enqueue_in!($tx, $batch, $now, None)
    };
    ($tx:ident, $batch:expr, $now:expr, $taken_by:expr) => {{
        use $crate::frontier::enqueue::*;
        let batch: &[$crate::frontier::NewUrl] = $batch;
        let now: $crate::UnixMillis = $now;
        let taken_by: Option<&std::collections::HashMap<i64, i64>> = $taken_by;
        let order = lock_order(batch);
        let (hosts, host_of) = hosts_of(batch, &order);
        let host_ids = host_ids_in!($tx, &hosts, now);
        // On PostgreSQL, every host of the batch locked (in key order) before any URL is
        // inserted under it: see `HostLocks`.
        for chunk in host_ids.chunks(ROWS_PER_STATEMENT) {
            if let Some(sql) = lock_hosts_sql(&*$tx, chunk.len()) {
                let mut lock = sqlx::query(sqlx::AssertSqlSafe(sql));
                for id in chunk {
                    lock = lock.bind(*id);
                }
                lock.execute(&mut *$tx).await?;
            }
        }
        // Per host (in `hosts`' order): URLs inserted, the earliest of their fetch times.
        let mut inserted: Vec<i64> = vec![0; hosts.len()];
        let mut earliest: Vec<i64> = vec![i64::MAX; hosts.len()];
        // Each entry of `order` with the index of its host.
        let rows: Vec<(usize, &[u8; 32], usize)> = order
            .iter()
            .zip(&host_of)
            .map(|((index, hash), host)| (*index, hash, *host))
            .collect();
        let mut results: Vec<Option<$crate::frontier::EnqueuedUrl>> = vec![None; batch.len()];
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(
                &*$tx,
                insert_urls_sql(chunk.len()),
            )));
            for (index, hash, host) in chunk {
                let (Some(url), Some(&host_id)) = (batch.get(*index), host_ids.get(*host)) else {
                    continue;
                };
                let leased_epoch = taken_by.and_then(|leases| leases.get(&host_id).copied());
                query = query
                    .bind(host_id)
                    .bind(&url.url)
                    .bind(&hash[..])
                    .bind(url.source.as_str())
                    .bind(url.priority as i64)
                    .bind(i64::from(url.depth))
                    .bind(url.next_fetch_at)
                    .bind(url.report_id.map(|r| r.0))
                    .bind(url.parent.map(|p| p.0))
                    .bind(now)
                    .bind(leased_epoch);
            }
            let mut new: std::collections::HashMap<Vec<u8>, i64> = std::collections::HashMap::new();
            for row in query.fetch_all(&mut *$tx).await? {
                new.insert(row.bytes("url_hash")?, row.i64("id")?);
            }
            let mut known = Vec::new();
            for (index, hash, host) in chunk {
                // Removed once claimed: a URL twice in the batch is new only once.
                match new.remove(&hash[..]) {
                    Some(id) => {
                        let (Some(url), Some(&host_id)) = (batch.get(*index), host_ids.get(*host))
                        else {
                            continue;
                        };
                        if let (Some(count), Some(first)) =
                            (inserted.get_mut(*host), earliest.get_mut(*host))
                        {
                            *count += 1;
                            *first = (*first).min(url.next_fetch_at);
                        }
                        if let Some(slot) = results.get_mut(*index) {
                            *slot = Some($crate::frontier::EnqueuedUrl {
                                id: $crate::frontier::UrlId(id),
                                host_id: $crate::frontier::HostId(host_id),
                                inserted: true,
                            });
                        }
                    }
                    None => known.push((*index, *hash)),
                }
            }
            if known.is_empty() {
                continue;
            }
            let mut query = sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(
                &*$tx,
                select_urls_sql(known.len()),
            )));
            for (_, hash) in &known {
                query = query.bind(&hash[..]);
            }
            let mut found: std::collections::HashMap<Vec<u8>, (i64, i64)> =
                std::collections::HashMap::new();
            for row in query.fetch_all(&mut *$tx).await? {
                found.insert(
                    row.bytes("url_hash")?,
                    (row.i64("id")?, row.i64("host_id")?),
                );
            }
            for (index, hash) in known {
                let Some(&(id, owner)) = found.get(&hash[..]) else {
                    return Err($crate::StoreError::NotFound {
                        what: "URL just enqueued",
                        id: batch.get(index).map(|u| u.url.clone()).unwrap_or_default(),
                    });
                };
                if let Some(slot) = results.get_mut(index) {
                    *slot = Some($crate::frontier::EnqueuedUrl {
                        id: $crate::frontier::UrlId(id),
                        host_id: $crate::frontier::HostId(owner),
                        inserted: false,
                    });
                }
            }
        }
        // The hosts that got new URLs, in key order: (id, URLs inserted, earliest time).
        let due: Vec<(i64, i64, i64)> = host_ids
            .iter()
            .zip(inserted.iter().zip(&earliest))
            .filter(|(_, (count, _))| **count > 0)
            .map(|(id, (count, first))| (*id, *count, *first))
            .collect();
        make_hosts_due_in!($tx, &due);
        // Every embed entry (new URL or known) records that its page embeds the URL.
        let embeds: Vec<(i64, i64)> = order
            .iter()
            .filter_map(|(index, _)| {
                let url = batch.get(*index)?;
                let page = url
                    .parent
                    .filter(|_| url.source == $crate::frontier::UrlSource::Embed)?;
                let media = results.get(*index)?.as_ref()?.id;
                Some((media.0, page.0))
            })
            .collect();
        for chunk in embeds.chunks(ROWS_PER_STATEMENT) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(
                &*$tx,
                insert_embeds_sql(chunk.len()),
            )));
            for (media, page) in chunk {
                query = query.bind(*media).bind(*page).bind(now);
            }
            query.execute(&mut *$tx).await?;
        }
        results
            .into_iter()
            .flatten()
            .collect::<Vec<$crate::frontier::EnqueuedUrl>>()
    }};
}
pub(super) use enqueue_in;

/// Inside the open write transaction `$tx`: queues URL `$url` (an `i64` id) again at
/// `$priority`, not before `$at`, unless it is queued or in flight, and makes its host due;
/// evaluates to whether it was queued.
macro_rules! requeue_in {
    ($tx:ident, $url:expr, $priority:expr, $at:expr) => {{
        use $crate::frontier::enqueue::{MAKE_HOST_DUE, RESCHEDULE};
        let at: $crate::UnixMillis = $at;
        let row = sqlx::query(RESCHEDULE)
            .bind($url)
            .bind(at)
            .bind($priority as i64)
            .fetch_optional(&mut *$tx)
            .await?;
        match row {
            Some(row) => {
                sqlx::query(MAKE_HOST_DUE)
                    .bind(row.i64("host_id")?)
                    .bind(0_i64)
                    .bind(at)
                    .execute(&mut *$tx)
                    .await?;
                true
            }
            None => false,
        }
    }};
}
pub(super) use requeue_in;

/// Inside the open write transaction `$tx`: if any media sighted on page `$url` (a
/// [`UrlId`]) has a match, queues the page again as [`requeue_in!`] does; evaluates to
/// whether it was queued.
macro_rules! requeue_if_matched {
    ($tx:ident, $url:expr, $priority:expr, $at:expr) => {{
        let url: $crate::frontier::UrlId = $url;
        let matched = sqlx::query($crate::crawl_facts::PAGE_HAS_MATCH)
            .bind(url.0)
            .fetch_optional(&mut *$tx)
            .await?
            .is_some();
        if matched {
            $crate::frontier::enqueue::requeue_in!($tx, url.0, $priority, $at)
        } else {
            false
        }
    }};
}
pub(super) use requeue_if_matched;

/// [`MAKE_HOST_DUE`] for `rows` hosts at once: per row host, URLs inserted, earliest time.
pub(super) fn make_hosts_due_sql(rows: usize) -> String {
    const TYPES: [&str; 3] = ["BIGINT", "BIGINT", "BIGINT"];
    let mut sql = String::from("WITH v(id, inserted, at) AS (VALUES ");
    push_tuples(&mut sql, rows, TYPES.len(), 1, &TYPES);
    sql.push_str(
        ") UPDATE hosts SET urls_known = hosts.urls_known + v.inserted, \
         due_at = CASE \
            WHEN hosts.lease_owner IS NOT NULL THEN hosts.due_at \
            WHEN hosts.due_at IS NULL OR hosts.due_at > (CASE WHEN hosts.next_allowed_at > v.at \
                THEN hosts.next_allowed_at ELSE v.at END) \
                THEN (CASE WHEN hosts.next_allowed_at > v.at THEN hosts.next_allowed_at \
                    ELSE v.at END) \
            ELSE hosts.due_at END \
         FROM v WHERE hosts.id = v.id",
    );
    sql
}

/// [`RESCHEDULE`] for `rows` URLs at once, not before `$1`: per row id, priority.
pub(super) fn reschedule_sql(rows: usize) -> String {
    const TYPES: [&str; 2] = ["BIGINT", "BIGINT"];
    let mut sql = String::from("WITH v(id, priority) AS (VALUES ");
    push_tuples(&mut sql, rows, TYPES.len(), 2, &TYPES);
    sql.push_str(
        ") UPDATE urls SET state = 'queued', next_fetch_at = $1, priority = v.priority, \
         leased_epoch = NULL FROM v WHERE urls.id = v.id AND urls.state <> 'queued' \
         RETURNING urls.id, urls.host_id",
    );
    sql
}

/// Which of `rows` pages have media sighted on them with a match
/// ([`crate::crawl_facts::PAGE_HAS_MATCH`] for many pages).
pub(super) fn pages_with_match_sql(rows: usize) -> String {
    let mut sql = String::from(
        "SELECT DISTINCT s.page_url_id FROM sightings s \
         JOIN matches m ON m.sighting_id = s.id WHERE s.page_url_id IN ",
    );
    push_tuples(&mut sql, 1, rows, 1, &[]);
    sql
}

/// [`requeue_if_matched!`] for many pages at once, inside the open write transaction `$tx`:
/// `$pages` holds one `Option<(UrlId, Priority)>` per page; evaluates to whether each was
/// queued again, as if asked one after the other (a URL asked for twice is queued by the
/// first). Each statement covers every page, so they run after all the pages' completions.
macro_rules! requeue_matched_in {
    ($tx:ident, $pages:expr, $at:expr) => {{
        use $crate::frontier::enqueue::{
            ROWS_PER_STATEMENT, make_hosts_due_sql, pages_with_match_sql, reschedule_sql,
        };
        let pages: &[Option<($crate::frontier::UrlId, $crate::frontier::Priority)>] = $pages;
        let at: $crate::UnixMillis = $at;
        let asked: Vec<i64> = pages
            .iter()
            .flatten()
            .map(|(url, _)| url.0)
            .collect::<std::collections::BTreeSet<i64>>()
            .into_iter()
            .collect();
        let mut matched: std::collections::HashSet<i64> = std::collections::HashSet::new();
        for chunk in asked.chunks(ROWS_PER_STATEMENT) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(
                &*$tx,
                pages_with_match_sql(chunk.len()),
            )));
            for url in chunk {
                query = query.bind(*url);
            }
            for row in query.fetch_all(&mut *$tx).await? {
                matched.insert(row.i64("page_url_id")?);
            }
        }
        // Per URL, the first page asking for it: the later ones find it queued.
        let mut first: std::collections::HashSet<i64> = std::collections::HashSet::new();
        let chosen: Vec<Option<(i64, i64)>> = pages
            .iter()
            .map(|page| {
                page.filter(|(url, _)| matched.contains(&url.0) && first.insert(url.0))
                    .map(|(url, priority)| (url.0, priority as i64))
            })
            .collect();
        let wanted: Vec<(i64, i64)> = chosen.iter().flatten().copied().collect();
        let mut queued: std::collections::HashSet<i64> = std::collections::HashSet::new();
        let mut hosts: std::collections::BTreeSet<i64> = std::collections::BTreeSet::new();
        for chunk in wanted.chunks(ROWS_PER_STATEMENT) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(
                &*$tx,
                reschedule_sql(chunk.len()),
            )))
            .bind(at);
            for (url, priority) in chunk {
                query = query.bind(*url).bind(*priority);
            }
            for row in query.fetch_all(&mut *$tx).await? {
                queued.insert(row.i64("id")?);
                hosts.insert(row.i64("host_id")?);
            }
        }
        let hosts: Vec<i64> = hosts.into_iter().collect();
        for chunk in hosts.chunks(ROWS_PER_STATEMENT) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe($crate::backend::native_sql(
                &*$tx,
                make_hosts_due_sql(chunk.len()),
            )));
            for host in chunk {
                query = query.bind(*host).bind(0_i64).bind(at);
            }
            query.execute(&mut *$tx).await?;
        }
        chosen
            .iter()
            .map(|page| page.is_some_and(|(url, _)| queued.contains(&url)))
            .collect::<Vec<bool>>()
    }};
}
pub(super) use requeue_matched_in;

impl super::Frontier<'_> {
    /// Adds URLs not yet known, in one transaction; known URLs are left as they are. An
    /// [`UrlSource::Embed`] entry with a parent also records that the parent page embeds the
    /// URL (new or known), so media fetched later is sighted on that page too. Returns
    /// one [`EnqueuedUrl`] per input, in input order. Nothing is written if any input is
    /// refused (too long, empty, NUL byte).
    pub async fn enqueue_urls(
        &self,
        batch: &[NewUrl],
        now: UnixMillis,
    ) -> Result<Vec<EnqueuedUrl>, StoreError> {
        self.enqueue_urls_taken(&[], batch, now).await
    }

    /// [`Frontier::enqueue_urls`], and the URLs it inserts on the host of one of `leases`
    /// are handed out under that lease as they are inserted, as if [`Frontier::next_urls`]
    /// had just handed them out: the holder fetches them without asking (a page's media
    /// before the host's other queued URLs), `next_urls` does not hand them out again under
    /// this lease, and under a later lease (after expiry) they are handed out again. The
    /// leases are not checked: URLs taken under a lease lost meanwhile are the next
    /// holder's, like any URL handed out under it. Returns what [`Frontier::enqueue_urls`]
    /// returns; the URLs taken are the inserted ones whose host is a lease's. (Several
    /// leases: many hosts' mined pages enqueued in one transaction.)
    pub async fn enqueue_urls_taken(
        &self,
        leases: &[super::Lease],
        batch: &[NewUrl],
        now: UnixMillis,
    ) -> Result<Vec<EnqueuedUrl>, StoreError> {
        check_batch(batch)?;
        let taken_by: std::collections::HashMap<i64, i64> = leases
            .iter()
            .map(|lease| (lease.host_id.0, lease.epoch))
            .collect();
        let taken_by = Some(&taken_by);
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let done = enqueue_in!(tx, batch, now, taken_by);
            tx.commit().await?;
            Ok(done)
        })
    }

    /// Queues a URL that was done, failed or skipped again (a re-check), not before `at`,
    /// with `priority`. Returns false, changing nothing, if the URL is already queued or in
    /// flight (its holder completes it). On PostgreSQL the URL's row is locked first, so a
    /// transaction settling the URL is waited for: a page's recheck asked for after a match
    /// on it committed is not lost in between (the settlement saw the match, see
    /// [`super::PageSettlement::requeue_if_matched`], or this sees the page completed).
    pub async fn schedule_recheck(
        &self,
        url: UrlId,
        at: UnixMillis,
        priority: Priority,
    ) -> Result<bool, StoreError> {
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            if d == crate::backend::Dialect::Postgres {
                sqlx::query(LOCK_URL_HOST_POSTGRES)
                    .bind(url.0)
                    .fetch_optional(&mut *tx)
                    .await?;
            }
            sqlx::query(d.pick(LOCK_URL_SQLITE, LOCK_URL_POSTGRES))
                .bind(url.0)
                .fetch_optional(&mut *tx)
                .await?;
            let queued = requeue_in!(tx, url.0, priority, at);
            tx.commit().await?;
            Ok(queued)
        })
    }
}
