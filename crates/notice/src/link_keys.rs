//! The keys of the respond links as a running process holds them: the current key signs, and
//! verification accepts it and the keys rotated out lately (`aranea notices rotate-link-key`,
//! docs/notices.md "Respond links"). A process re-reads them from the database, so a key
//! rotated in by another process is used without a restart: for signing within
//! [`KEYS_FRESH_FOR`], for verifying as soon as a link signed with it comes in (at most one
//! read per [`RELOAD_ON_UNKNOWN_AFTER`], however many forged links arrive).

use std::time::{Duration, Instant};

use aranea_store::Store;

use crate::clock::UnixMillis;
use crate::config::NoticeConfig;
use crate::error::NoticeError;
use crate::link::LinkError;

/// How long a process uses the keys it read before reading them again.
pub const KEYS_FRESH_FOR: Duration = Duration::from_secs(60);
/// A link no key verifies makes the process read the keys again if it last read them at
/// least this long ago: a link signed with a key rotated in since is then verified.
pub const RELOAD_ON_UNKNOWN_AFTER: Duration = Duration::from_secs(2);

/// The respond links' keys of one `[notice]` configuration and database.
pub struct LinkKeys {
    source: Source,
    cached: tokio::sync::Mutex<Ring>,
}

enum Source {
    /// `link_secret` in `[notice]`: one key (the ring's current), rotated by changing the
    /// configuration.
    Configured,
    /// The database's keys; a key rotated out verifies for `lifetime_ms` after its rotation.
    Database { store: Store, lifetime_ms: i64 },
}

struct Ring {
    current: Vec<u8>,
    /// Keys rotated out, with when each stops verifying (the real clock), newest first.
    previous: Vec<(Vec<u8>, UnixMillis)>,
    read_at: Instant,
}

impl Ring {
    fn new(current: Vec<u8>) -> Ring {
        Ring {
            current,
            previous: Vec::new(),
            read_at: Instant::now(),
        }
    }

    /// The current key, then the keys rotated out that still verify at `wall_now`.
    fn verifying(&self, wall_now: UnixMillis) -> Vec<&[u8]> {
        std::iter::once(self.current.as_slice())
            .chain(
                self.previous
                    .iter()
                    .filter(|(_, until)| wall_now < *until)
                    .map(|(key, _)| key.as_slice()),
            )
            .collect()
    }
}

impl LinkKeys {
    /// The keys of `config` (its `link_secret`) or else of `store`, made there first when the
    /// database has none yet (see [`crate::link_secret`]).
    pub async fn open(config: &NoticeConfig, store: &Store) -> Result<LinkKeys, NoticeError> {
        let current = crate::link_secret(config, store).await?;
        if !config.link_secret.is_empty() {
            return Ok(LinkKeys::configured(current));
        }
        let keys = LinkKeys {
            source: Source::Database {
                store: store.clone(),
                lifetime_ms: link_lifetime_ms(config),
            },
            cached: tokio::sync::Mutex::new(Ring::new(current)),
        };
        // The keys rotated out lately verify from the start.
        keys.reload(&mut *keys.cached.lock().await).await?;
        Ok(keys)
    }

    /// One key that signs and verifies, never read from a database (a configured
    /// `link_secret`).
    pub fn configured(secret: Vec<u8>) -> LinkKeys {
        LinkKeys {
            source: Source::Configured,
            cached: tokio::sync::Mutex::new(Ring::new(secret)),
        }
    }

    /// The key that signs links now.
    pub async fn signing_key(&self) -> Result<Vec<u8>, NoticeError> {
        let mut ring = self.cached.lock().await;
        if ring.read_at.elapsed() >= KEYS_FRESH_FOR {
            self.reload(&mut ring).await?;
        }
        Ok(ring.current.clone())
    }

    /// The notice reference `token` names, if one of the keys signed it and it has not
    /// expired at `now`.
    pub async fn verify(&self, token: &str, now: UnixMillis) -> Result<String, NoticeError> {
        let mut ring = self.cached.lock().await;
        if ring.read_at.elapsed() >= KEYS_FRESH_FOR {
            self.reload(&mut ring).await?;
        }
        let verified = verify_with(&ring.verifying(wall_clock_ms()), token, now);
        match verified {
            Err(LinkError::BadSignature)
                if matches!(self.source, Source::Database { .. })
                    && ring.read_at.elapsed() >= RELOAD_ON_UNKNOWN_AFTER =>
            {
                self.reload(&mut ring).await?;
                Ok(verify_with(&ring.verifying(wall_clock_ms()), token, now)?)
            }
            verified => Ok(verified?),
        }
    }

    async fn reload(&self, ring: &mut Ring) -> Result<(), NoticeError> {
        let Source::Database { store, lifetime_ms } = &self.source else {
            ring.read_at = Instant::now();
            return Ok(());
        };
        let read = store
            .notices()
            .link_keys(wall_clock_ms().saturating_sub(*lifetime_ms))
            .await?;
        // A database whose key row was deleted keeps the key read before until a process
        // makes a new one (crate::link_secret), rather than nothing signing at all.
        if let Some(current) = read.current {
            ring.current = current;
        }
        ring.previous = read
            .previous
            .into_iter()
            .map(|r| (r.key, r.retired_at.saturating_add(*lifetime_ms)))
            .collect();
        ring.read_at = Instant::now();
        Ok(())
    }
}

/// What [`rotate`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// When the new key became current (the real clock).
    pub at: UnixMillis,
    /// Until when links signed with the key rotated out verify; None when there was none.
    pub previous_verifies_until: Option<UnixMillis>,
    /// Keys rotated out so long ago that they verified nothing any more, dropped now.
    pub dropped: u64,
}

/// Makes a new random key current in `store`'s database: links are signed with it from now
/// (by each process once it reads the keys again, see [`KEYS_FRESH_FOR`]), and the key it
/// replaces still verifies for `link_ttl_secs`, the longest a link it signed can be valid.
/// Refused when `config` sets `link_secret`, which then signs instead of the database's key.
pub async fn rotate(config: &NoticeConfig, store: &Store) -> Result<Rotation, NoticeError> {
    if !config.link_secret.is_empty() {
        return Err(NoticeError::Setup {
            message: "[notice] link_secret is configured: it signs the respond links, not the \
                      database's key; change it there instead (links signed with the old one \
                      then stop verifying)"
                .to_owned(),
        });
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| NoticeError::Setup {
        message: format!("no system randomness for the respond links' key: {e}"),
    })?;
    let at = wall_clock_ms();
    let lifetime = link_lifetime_ms(config);
    let done = store
        .notices()
        .rotate_link_key(&key, at, at.saturating_sub(lifetime))
        .await?;
    Ok(Rotation {
        at,
        previous_verifies_until: done
            .previous_created_at
            .map(|_| at.saturating_add(lifetime)),
        dropped: done.dropped,
    })
}

/// The reference of `token` if any of `keys` signed it: a signature that matches decides
/// (an expired link is refused as expired, not tried with the other keys).
fn verify_with(keys: &[&[u8]], token: &str, now: UnixMillis) -> Result<String, LinkError> {
    for key in keys {
        match crate::link::verify(key, token, now) {
            Err(LinkError::BadSignature) => {}
            decided => return decided,
        }
    }
    Err(LinkError::BadSignature)
}

/// The longest a link signed with `config` stays valid: a key rotated out verifies that long
/// after its rotation, by when every link it signed has expired.
pub fn link_lifetime_ms(config: &NoticeConfig) -> i64 {
    i64::try_from(config.link_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// Rotation times are the real clock's, whatever a notice engine's clock says (the demo's
/// runs days ahead): every process rotating or reading keys agrees on them.
pub fn wall_clock_ms() -> UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A running process's keys after `rotate` by another: a link signed with the new key is
    /// refused only until the keys were read at least [`RELOAD_ON_UNKNOWN_AFTER`] ago, then
    /// verified; signing moves to the new key once the keys read are [`KEYS_FRESH_FOR`] old;
    /// the previous key verifies all along (its lifetime has not passed).
    #[tokio::test]
    async fn a_process_picks_up_a_key_rotated_by_another() {
        let dir = std::env::temp_dir().join(format!(
            "aranea_link_keys_{}_{}",
            std::process::id(),
            wall_clock_ms()
        ));
        let store = Store::open(&format!("sqlite://{}", dir.join("db").display()))
            .await
            .unwrap();
        let config = NoticeConfig::default();
        let keys = LinkKeys::open(&config, &store).await.unwrap();
        let first = keys.signing_key().await.unwrap();
        let rotation = rotate(&config, &store).await.unwrap();
        assert_eq!(
            rotation.previous_verifies_until,
            Some(rotation.at + link_lifetime_ms(&config))
        );
        let second = store.notices().link_keys(0).await.unwrap().current.unwrap();
        assert_ne!(first, second);
        let now = wall_clock_ms();
        let by_first = crate::link::sign(&first, "ab-1", now + 60_000);
        let by_second = crate::link::sign(&second, "ab-2", now + 60_000);

        // Read just now: not read again for a link none of its keys verifies.
        assert!(matches!(
            keys.verify(&by_second, now).await,
            Err(NoticeError::Link(LinkError::BadSignature))
        ));
        assert_eq!(keys.signing_key().await.unwrap(), first);
        // Once the keys read are old, signing reads them again.
        age(&keys, KEYS_FRESH_FOR).await;
        assert_eq!(keys.signing_key().await.unwrap(), second);
        assert_eq!(keys.verify(&by_second, now).await.unwrap(), "ab-2");
        assert_eq!(keys.verify(&by_first, now).await.unwrap(), "ab-1");

        // A link signed with a key rotated in since makes verifying read them again.
        rotate(&config, &store).await.unwrap();
        let third = store.notices().link_keys(0).await.unwrap().current.unwrap();
        let by_third = crate::link::sign(&third, "ab-3", now + 60_000);
        assert!(keys.verify(&by_third, now).await.is_err(), "read just now");
        age(&keys, RELOAD_ON_UNKNOWN_AFTER).await;
        assert_eq!(keys.verify(&by_third, now).await.unwrap(), "ab-3");
        assert_eq!(keys.verify(&by_second, now).await.unwrap(), "ab-2");
        assert_eq!(keys.verify(&by_first, now).await.unwrap(), "ab-1");
        assert_eq!(keys.signing_key().await.unwrap(), third);
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// As if the keys had been read `ago`.
    async fn age(keys: &LinkKeys, ago: Duration) {
        let mut ring = keys.cached.lock().await;
        ring.read_at = Instant::now().checked_sub(ago).unwrap_or(ring.read_at);
    }

    #[test]
    fn a_key_rotated_out_verifies_until_its_end() {
        let mut ring = Ring::new(b"new".to_vec());
        ring.previous = vec![(b"old".to_vec(), 1_000), (b"older".to_vec(), 500)];
        assert_eq!(
            ring.verifying(499),
            [b"new".as_slice(), b"old".as_slice(), b"older".as_slice()]
        );
        assert_eq!(ring.verifying(500), [b"new".as_slice(), b"old".as_slice()]);
        assert_eq!(ring.verifying(1_000), [b"new".as_slice()]);
    }

    #[test]
    fn any_key_of_the_ring_verifies_and_a_matching_signature_decides() {
        let (old, new) = (b"old".to_vec(), b"new".to_vec());
        let ring = [new.as_slice(), old.as_slice()];
        let by_old = crate::link::sign(&old, "ab-1", 1_000);
        let by_new = crate::link::sign(&new, "ab-2", 1_000);
        assert_eq!(verify_with(&ring, &by_old, 999), Ok("ab-1".to_owned()));
        assert_eq!(verify_with(&ring, &by_new, 999), Ok("ab-2".to_owned()));
        assert_eq!(
            verify_with(&ring, &by_old, 1_001),
            Err(LinkError::Expired { expired_at: 1_000 })
        );
        assert_eq!(
            verify_with(&ring[..1], &by_old, 999),
            Err(LinkError::BadSignature)
        );
        assert_eq!(verify_with(&ring, "x", 0), Err(LinkError::Malformed));
        assert_eq!(verify_with(&[], &by_new, 0), Err(LinkError::BadSignature));
    }
}
