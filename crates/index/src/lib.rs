//! Hash banks and exact matching for Aranea.
//!
//! A *bank* is a named list of hashes (PDQ, MD5, SHA-1, SHA-256) with a classification, a
//! source, an enabled flag, a PDQ distance threshold and a kind (ordinary or allow-list). This
//! crate keeps banks durable ([`BankStore`]: snapshot + append-only journal in a directory),
//! answers "is this hash, or one close to it, in a bank?" exactly ([`LiveIndex`] →
//! [`Generation::match_signal`]), and imports and exports hash lists ([`import`], [`export`]).
//!
//! Videos: `vpdq` and `video_md5` entries; [`VideoIndex`] finds bank videos matching a query
//! video through its frames, and [`match_frames`] finds known images inside a video.
//!
//! The PDQ search is exact (every entry within the threshold, nearest first): multi-index
//! hashing with a scan fallback ([`PdqIndex`]). Readers never block on writers: see [`live`].
//!
//! ```no_run
//! use aranea_index::{BankFilter, BankSpec, BankStore, Signal, SignalType};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut store = BankStore::open(std::path::Path::new("aranea-data/banks"))?;
//! store.create_bank(BankSpec::new("local", "local", "csam"))?;
//! let query = Signal::from_hex(SignalType::Md5, "d41d8cd98f00b204e9800998ecf8427e")?;
//! let result = store.live().load().match_signal(&query, &BankFilter::All);
//! println!("{} hits", result.hits.len());
//! # Ok(()) }
//! ```
//!
//! This crate must not know about crawling, HTTP or SQL: the SQL store will implement
//! [`Journal`] and feed the same state and index.

pub mod bank;
mod columns;
pub mod error;
pub mod export;
pub mod import;
pub mod journal;
pub mod live;
pub mod pdq_index;
mod segment;
pub mod signal;
pub mod snapshot;
pub mod state;
pub mod store;
mod stored;
pub mod video;
mod write_lock;

pub use bank::{Bank, BankId, BankKind, BankSpec, Entry, EntryId, Origin, Provenance};
pub use error::StoreError;
pub use journal::{BankJournal, FileJournal, Journal, Record};
pub use live::{BankFilter, Generation, Hit, LiveIndex, MatchResult};
pub use pdq_index::{CodeHit, IndexParams, PdqIndex, SearchScratch};
pub use signal::{Signal, SignalParseError, SignalType};
pub use state::{BankState, EditMark};
pub use store::{AddOutcome, BankStore, NewEntry};
pub use video::{
    FrameHit, FrameMatchResult, VideoHit, VideoIndex, VideoIndexParams, VideoMatchResult,
    match_frames, vpdq_entry, vpdq_features,
};
pub use write_lock::{WRITE_LOCK_FILE, WriteLock};

/// The crate-private bank snapshot reader, for the `bank_snapshot` fuzz target in `fuzz/`
/// only: not API (hidden from the docs, no stability promise). Outside the crate the reader is
/// reached only through [`BankStore::open`], which turns a refusal into a warning and a
/// rebuild from the journal, so a target could not tell an accepted file from a refused one
/// nor see the index it loaded.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::Path;

    use crate::{BankState, IndexParams, LiveIndex, StoreError};

    /// `snapshot::read_banks` unchanged, its base segment made searchable as a bank
    /// directory opened on it would (default index parameters, no journal past it).
    pub fn read_bank_snapshot(path: &Path) -> Result<(BankState, LiveIndex), StoreError> {
        let (state, base) = crate::snapshot::read_banks(path)?;
        let live = LiveIndex::new(
            state.seq(),
            state.banks().to_vec(),
            base,
            IndexParams::default(),
        );
        Ok((state, live))
    }
}
