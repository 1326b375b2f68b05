//! A fresh world per test: a database (a SQLite file in its own temporary directory, or a
//! new database on the PostgreSQL server named by `ARANEA_TEST_POSTGRES`), a bank directory,
//! a vault key pair, two hotlines (GB sharing the pool, CA sharing it too) and helpers to
//! queue corpus photos the way the crawler does. No test is skipped for want of a server.

#![allow(dead_code)]

pub mod http;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aranea_index::BankStore;
use aranea_review::{
    Actor, AuditActor, MediaVault, NewUserRequest, Review, ReviewConfig, Schemes, VaultSecretKey,
};
use aranea_store::{
    HotlineId, MediaRecord, NewHotline, NewSighting, NewUrl, Priority, ReviewReason, Store,
    UrlSource, UserRole,
};
use sqlx::Connection;

pub const NOW: i64 = 1_700_000_000_000;
pub const PASSWORD: &str = "correct horse battery staple";

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "aranea_r{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn corpus(n: usize) -> (PathBuf, Vec<u8>) {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ));
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let name = manifest.lines().nth(n).unwrap().split('\t').next().unwrap();
    let path = dir.join(name);
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

pub struct World {
    pub dir: PathBuf,
    pub url: String,
    pub store: Store,
    pub review: Review,
    pub banks: Arc<Mutex<BankStore>>,
    pub vault: MediaVault,
    pub gb: HotlineId,
    pub ca: HotlineId,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn database(backend: Backend, dir: &Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("aranea.db").display()),
        Backend::Postgres => {
            let server = std::env::var("ARANEA_TEST_POSTGRES").expect(
                "ARANEA_TEST_POSTGRES must name a PostgreSQL server (scripts/test starts one)",
            );
            let name = unique_name();
            let mut conn = sqlx::PgConnection::connect(&server).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
            let (scheme, rest) = server.split_once("://").unwrap();
            let authority = rest.split('/').next().unwrap();
            format!("{scheme}://{authority}/{name}")
        }
    }
}

pub fn hotline(code: &str, jurisdiction: &str, shares_pool: bool) -> NewHotline {
    NewHotline {
        code: code.into(),
        name: format!("Hotline {code}"),
        country: jurisdiction.into(),
        languages: vec!["en".into()],
        jurisdiction: jurisdiction.into(),
        shares_review_pool: shares_pool,
        shares_banks: true,
        daily_cap: 100,
    }
}

impl World {
    pub async fn new(backend: Backend) -> World {
        Self::with_config(backend, ReviewConfig::default()).await
    }

    pub async fn with_config(backend: Backend, config: ReviewConfig) -> World {
        let dir = std::env::temp_dir().join(unique_name());
        std::fs::create_dir_all(&dir).unwrap();
        let url = database(backend, &dir).await;
        let store = Store::open(&url).await.unwrap();
        let banks = Arc::new(Mutex::new(BankStore::open(&dir.join("banks")).unwrap()));
        let key = VaultSecretKey::generate().unwrap();
        let vault = MediaVault::new(store.clone(), key.public_key(), config.retention_days);
        let review = Review::with_parts(
            store.clone(),
            config,
            Schemes::builtin(),
            Some(key),
            Some(banks.clone()),
        );
        let gb = review
            .add_hotline(AuditActor::Cli, &hotline("gb", "GB", true), NOW)
            .await
            .unwrap();
        let ca = review
            .add_hotline(AuditActor::Cli, &hotline("ca", "CA", true), NOW)
            .await
            .unwrap();
        World {
            dir,
            url,
            store,
            review,
            banks,
            vault,
            gb,
            ca,
        }
    }

    /// Adds a user and logs them in.
    pub async fn actor(&self, hotline: HotlineId, name: &str, role: UserRole) -> Actor {
        self.review
            .add_user(
                AuditActor::Cli,
                NewUserRequest {
                    hotline,
                    username: name.into(),
                    display_name: String::new(),
                    role,
                    password: PASSWORD.into(),
                },
                NOW,
            )
            .await
            .unwrap();
        self.review
            .login(name, PASSWORD, None, "198.51.100.7", NOW)
            .await
            .unwrap()
            .actor
    }

    /// Records corpus photo `n` as the crawler would: media, a sighting on each of `pages`
    /// (page URLs like `https://host/path`), a review-queue entry and the sealed bytes.
    pub async fn queue_photo(&self, n: usize, pages: &[&str]) -> [u8; 32] {
        let (_, bytes) = corpus(n);
        let h = aranea_hash::hash_media(&bytes, &aranea_hash::Limits::default()).unwrap();
        let pdq = h.pdq.as_ref().map(|p| *p.hash.as_bytes());
        self.record_media(&bytes, h.sha256, h.md5, h.sha1, pdq, pages)
            .await
    }

    pub async fn record_media(
        &self,
        bytes: &[u8],
        sha256: [u8; 32],
        md5: [u8; 16],
        sha1: [u8; 20],
        pdq: Option<[u8; 32]>,
        pages: &[&str],
    ) -> [u8; 32] {
        let record = MediaRecord {
            sha256,
            md5,
            sha1,
            pdq,
            pdq_quality: pdq.map(|_| 100),
            size: bytes.len() as u64,
            kind: aranea_hash::sniff(bytes)
                .map_or("jpeg", |k| k.name())
                .into(),
            width: Some(1),
            height: Some(1),
        };
        self.store.media().record(&record, NOW).await.unwrap();
        let mut first = None;
        for page in pages {
            let host = page.split('/').nth(2).unwrap();
            let media_url = format!("{page}/{}.jpg", hex(&sha256[..4]));
            let new = |u: &str| {
                NewUrl::new(
                    u,
                    &format!("https://{host}"),
                    host,
                    UrlSource::Link,
                    Priority::Ordinary,
                    NOW,
                )
            };
            self.store
                .frontier()
                .enqueue_urls(&[new(page), new(&media_url)], NOW)
                .await
                .unwrap();
            let page_id = self.store.frontier().url_id(page).await.unwrap().unwrap();
            let media_id = self
                .store
                .frontier()
                .url_id(&media_url)
                .await
                .unwrap()
                .unwrap();
            let sighting = self
                .store
                .media()
                .record_sighting(&NewSighting {
                    media_sha256: sha256,
                    url: media_id,
                    page: Some(page_id),
                    member_path: None,
                    seen_at: NOW,
                    server_ip: Some(format!(
                        "192.0.2.{}",
                        host.bytes().map(u32::from).sum::<u32>() % 250
                    )),
                })
                .await
                .unwrap();
            first.get_or_insert(sighting);
        }
        self.store
            .review()
            .enqueue(&sha256, first, ReviewReason::OnMatchingPage, 1, NOW)
            .await
            .unwrap();
        self.vault.keep(&sha256, bytes, NOW).await.unwrap();
        sha256
    }
}

/// Records a benign video (made from corpus photos) as the crawler would, without a PDQ.
impl World {
    pub async fn queue_video(&self, bytes: &[u8], pages: &[&str]) -> [u8; 32] {
        let h = aranea_hash::crypto_hashes(bytes);
        self.record_media(bytes, h.sha256, h.md5, h.sha1, None, pages)
            .await
    }
}

/// A slideshow of corpus photos `photos`, one second each at 10 frames a second, 160x120,
/// as VP8 WebM (which Chromium plays), made by `ffmpeg` in `dir`.
pub fn slideshow_webm(dir: &Path, photos: &[usize]) -> Vec<u8> {
    let mut args: Vec<String> = ["-nostdin", "-y", "-loglevel", "error"]
        .map(String::from)
        .to_vec();
    let mut graph = String::new();
    for (index, &n) in photos.iter().enumerate() {
        let (path, _) = corpus(n);
        args.extend(["-loop", "1", "-t", "1", "-i"].map(String::from));
        args.push(path.display().to_string());
        graph.push_str(&format!(
            "[{index}]scale=160:120,setsar=1,fps=10[v{index}];"
        ));
    }
    for index in 0..photos.len() {
        graph.push_str(&format!("[v{index}]"));
    }
    graph.push_str(&format!("concat=n={}:v=1[out]", photos.len()));
    let out = dir.join("slideshow.webm");
    args.extend(["-filter_complex", &graph, "-map", "[out]"].map(String::from));
    args.extend(
        [
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "200k",
        ]
        .map(String::from),
    );
    args.push(out.display().to_string());
    let output = std::process::Command::new("ffmpeg")
        .args(&args)
        .output()
        .expect("ffmpeg is installed (scripts/test installs it)");
    assert!(
        output.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    bytes
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Instantiates each `async fn NAME(backend: Backend)` test once per back-end.
#[allow(unused_macros)]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    tokio::time::timeout(std::time::Duration::from_secs(60),
                        super::$name(crate::common::Backend::Sqlite)).await.expect("timed out");
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    tokio::time::timeout(std::time::Duration::from_secs(60),
                        super::$name(crate::common::Backend::Postgres)).await.expect("timed out");
                }
            )*
        }
    };
}

/// Runs raw SQL against the world's database, as someone tampering with it would.
pub async fn tamper(url: &str, sql: &str) -> u64 {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{path}"))
            .await
            .unwrap();
        let done = sqlx::query(sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        done.rows_affected()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        let done = sqlx::query(sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        done.rows_affected()
    }
}
