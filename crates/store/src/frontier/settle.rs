//! A page settled in one write transaction: the media the crawler fetched for it (media rows,
//! sightings, matches) and the completions of the page and those media URLs, all or nothing.
//! On SQLite, where writers take turns on one lock, this is one turn per page instead of one
//! per media file plus one for the completions.
//!
//! Must not decide anything: what counts as the page's media and what each completion says
//! come from the crawler, as for [`Frontier::complete_urls`] and
//! [`crate::MediaStore::record_seen`].

use super::lease::{CompletionRow, complete_in, hold_lease};
use super::{Completion, FetchOutcome, Lease, UrlId};
use crate::UnixMillis;
use crate::backend::{Get, on_backend};
use crate::error::StoreError;
use crate::media::{MediaRecord, NewSighting, SightingId, TimedMatch, check_seen, record_seen_in};

/// Media seen, with its sighting and matches, to be written with a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenMedia {
    pub media: MediaRecord,
    pub sighting: NewSighting,
    pub matches: Vec<TimedMatch>,
}

/// What [`Frontier::settle_page`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettledPage {
    /// One sighting per [`SeenMedia`], in order.
    pub sightings: Vec<SightingId>,
    /// One completion per URL, in order.
    pub completions: Vec<Completion>,
}

impl super::Frontier<'_> {
    /// Records `seen` (as [`crate::MediaStore::record_seen`] does, idempotently) and completes
    /// `urls` (as [`Frontier::complete_urls`] does, under `lease`) in one write transaction. A
    /// lost lease writes nothing and fails.
    pub async fn settle_page(
        &self,
        lease: &Lease,
        seen: &[SeenMedia],
        urls: &[(UrlId, &FetchOutcome)],
        now: UnixMillis,
    ) -> Result<SettledPage, StoreError> {
        for s in seen {
            check_seen(&s.media, &s.sighting, &s.matches)?;
        }
        let rows: Vec<CompletionRow> = urls
            .iter()
            .map(|(url, outcome)| CompletionRow::new(*url, outcome, now))
            .collect();
        on_backend!(self.backend, |pool, d| {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            hold_lease!(tx, d, lease, now);
            let mut sightings = Vec::with_capacity(seen.len());
            for s in seen {
                sightings.push(record_seen_in!(tx, &s.media, &s.sighting, &s.matches, now));
            }
            let completions = complete_in!(tx, lease, &rows, now);
            tx.commit().await?;
            Ok(SettledPage {
                sightings,
                completions,
            })
        })
    }
}
