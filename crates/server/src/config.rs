//! The server's configuration: the `[server]` table of `--config FILE`.

use serde::Deserialize;

/// How the server behaves; every field has a default, so an empty table is valid.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Default: `127.0.0.1:8080` (`--listen` overrides it).
    pub listen: String,
    /// Largest media body accepted by `POST /v1/media/` and fetched by `POST /v1/url/`, in
    /// bytes. Default: 32 MiB.
    pub max_media_bytes: usize,
    /// Largest JSON body accepted, in bytes. Default: 1 MiB.
    pub max_json_bytes: usize,
    /// Largest hash list accepted by `POST /api/v1/banks/{name}/import`, in bytes.
    /// Default: 64 MiB.
    pub max_import_bytes: usize,
    /// Most PDQ hashes in one `POST /v1/pdq/`. Default: 1,000.
    pub max_pdq_hashes: usize,
    /// Largest image accepted for hashing, in pixels (checked before decoding). Default: 64 M.
    pub max_pixels: u64,
    /// Hashing threads: media hashed at once. Default: the number of CPUs.
    pub hash_workers: usize,
    /// Least PDQ quality for a near match of submitted media. Default: 50.
    pub min_pdq_quality: u8,
    /// How often the bank directory is checked for changes by other processes, in ms.
    /// Default: 1,000.
    pub bank_poll_ms: u64,
    /// How often API clients are re-read from the database (revocations, new clients), in ms.
    /// Default: 2,000.
    pub client_refresh_ms: u64,
    /// How often this server tells the others sharing its database what each rate-limited
    /// client asked of it, and takes its share of the client's rate, in ms. Default: 1,000.
    pub rate_share_ms: u64,
    /// CIDR blocks `POST /v1/url/` may fetch from although they are not public (the simulated
    /// web in tests and the demo). Default: none.
    pub url_allow_cidrs: Vec<String>,
    /// Extra root certificate files (PEM) `POST /v1/url/` trusts. Default: none.
    pub url_extra_roots: Vec<std::path::PathBuf>,
    /// Time for `POST /v1/url/` to fetch the media, in seconds. Default: 20.
    pub url_timeout_secs: u64,
    /// Time to decode and hash one submitted video (probe, decode and vPDQ together), in
    /// seconds; the decoder is killed after it. Default: 60.
    pub video_timeout_secs: u64,
    /// Longest video duration accepted, as the container declares it (checked before
    /// decoding), in seconds. Default: 3,600.
    pub max_video_seconds: u64,
    /// Seconds between the video frames hashed (vPDQ's `secondsPerHash`; 0: every frame).
    /// Default: 1.
    pub video_seconds_per_hash: f64,
    /// Time a client has to send a request's headers, from its first byte, in seconds; a
    /// slower one is disconnected, so clients that stop mid-request cannot hold connections
    /// for ever. Default: 30.
    pub header_read_timeout_secs: u64,
    /// Time a client has to send a request's whole body, from when the server first waits for
    /// it, in seconds; a slower one is answered 408 and disconnected. A total deadline, not an
    /// idle timeout, so a client dribbling its body cannot hold a connection for ever. The
    /// default lets a client upload `max_media_bytes` (32 MiB) at about 4.5 Mbit/s; raise it
    /// for slower uploaders of large media or bank lists. Default: 60.
    pub body_read_timeout_secs: u64,
    /// Share of frames (percent) that makes a submitted video match a known one: of the
    /// query's frames matched by the known video's, or the other way round (vPDQ's 80%). The
    /// per-frame distance is each bank's PDQ threshold. Default: 80.
    pub video_match_percent: f64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".to_owned(),
            max_media_bytes: 32 * 1024 * 1024,
            max_json_bytes: 1024 * 1024,
            max_import_bytes: 64 * 1024 * 1024,
            max_pdq_hashes: 1000,
            max_pixels: 64_000_000,
            hash_workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            min_pdq_quality: 50,
            bank_poll_ms: 1000,
            client_refresh_ms: 2000,
            rate_share_ms: 1000,
            url_allow_cidrs: Vec::new(),
            url_extra_roots: Vec::new(),
            url_timeout_secs: 20,
            video_timeout_secs: 60,
            max_video_seconds: 3600,
            video_seconds_per_hash: 1.0,
            header_read_timeout_secs: 30,
            body_read_timeout_secs: 60,
            video_match_percent: 80.0,
        }
    }
}
