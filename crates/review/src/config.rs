//! The `[review]` table of the configuration file.

use std::path::PathBuf;

use serde::Deserialize;

/// Review settings; every field has a default, documented on the field.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewConfig {
    /// Distinct agreeing analysts that decide an item (default 3).
    pub consensus_votes: u32,
    /// Largest PDQ distance at which media joins an existing item as a near-duplicate
    /// (default 31, the published PDQ match threshold).
    pub near_duplicate_distance: u32,
    /// Days queued media stays in the vault when no decision comes (default 30).
    pub retention_days: u32,
    /// Session lifetime in hours (default 12).
    pub session_hours: u32,
    /// Consecutive failed logins before the account locks (default 5).
    pub lockout_after: u32,
    /// First lockout in seconds; doubles with every further failure, up to an hour (default 30).
    pub lockout_seconds: u64,
    /// Minutes of continuous review after which a break is suggested (default 45).
    pub break_after_minutes: u32,
    /// Name of the shared platform bank positive decisions feed (default `platform`).
    pub platform_bank: String,
    /// The vault's public key (hex, 32 bytes): enough to store media for review.
    pub vault_public_key: Option<String>,
    /// File holding the vault's secret key (hex); `ARANEA_VAULT_SECRET_KEY` overrides it.
    /// Only the review service needs it.
    pub vault_secret_key_file: Option<PathBuf>,
    /// Verdict mapping tables (TOML); the built-in tables when unset.
    pub schemes_file: Option<PathBuf>,
    /// Memory-backed (tmpfs) directory where the video decoder reads its private copy of a
    /// decrypted video for frame thumbnails (default `/dev/shm`). Refused when it is not
    /// memory-backed: decrypted media never goes to disk.
    pub video_scratch_dir: PathBuf,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            consensus_votes: 3,
            near_duplicate_distance: 31,
            retention_days: 30,
            session_hours: 12,
            lockout_after: 5,
            lockout_seconds: 30,
            break_after_minutes: 45,
            platform_bank: "platform".to_string(),
            vault_public_key: None,
            vault_secret_key_file: None,
            schemes_file: None,
            video_scratch_dir: PathBuf::from("/dev/shm"),
        }
    }
}
