//! The banks as the server sees them: the live index, kept current without a restart.
//!
//! Requests load the current [`LiveIndex`] (an atomic pointer load) and search its current
//! generation; they never wait for a writer. Changes made through this process (the native
//! API) are published at once. Changes made by another process are noticed by polling: on one
//! machine (`aranea bank import` next to a running server) the bank directory's journal and
//! snapshot files, and the directory is then reopened on a blocking thread and swapped in
//! whole, so the old index answers until the new one is ready (no gap in service, briefly
//! twice the memory); on PostgreSQL (several machines) the shared journal's last sequence
//! number, and the rows after it are applied to the open banks.
//!
//! Writes take the banks' cross-process write lock, so several servers and the command line
//! can change the same banks. This module must not interpret classifications.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use aranea_hash::VpdqFeature;
use aranea_index::{
    BankState, BankStore, EditMark, EntryId, LiveIndex, SignalType, StoreError, VideoIndex,
    VideoIndexParams, WRITE_LOCK_FILE, WriteLock,
};
use arc_swap::{ArcSwap, ArcSwapOption};

use crate::shared_journal::{SharedJournal, SharedWriteLock};

/// Journal records after the snapshot beyond which a new one is written (at open, and after a
/// server's change), so the next open replays fewer records: without it a bank directory that
/// only a server writes (API imports, review decisions), or whose snapshot was refused, would
/// replay its whole journal at every open, for ever.
const SNAPSHOT_AFTER_RECORDS: u64 = 100_000;

/// Cryptographic hashes of the media a PDQ entry was computed from, when its import carried
/// them (metadata columns `sha1_base32`/`sha1` and `sha256_hex`/`sha256`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaRef {
    pub sha1_base32: String,
    pub sha256_hex: String,
}

/// Where the banks are kept.
#[derive(Clone, Debug)]
pub enum BankHome {
    /// A bank directory: snapshot and journal files, for one machine.
    Dir(PathBuf),
    /// The journal in a PostgreSQL database that several machines share; `cache` holds this
    /// machine's snapshot of it.
    Shared {
        journal: SharedJournal,
        cache: PathBuf,
    },
}

impl BankHome {
    /// The banks that go with a database: on PostgreSQL its journal, with this machine's
    /// snapshot in `DATA/bank-cache/<journal identity>`; otherwise the directory `DATA/banks`.
    /// Blocking (connects to PostgreSQL).
    pub fn for_database(data: &Path, database_url: &str) -> Result<BankHome, StoreError> {
        if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
            let journal = SharedJournal::connect(database_url)?;
            let cache = data.join("bank-cache").join(journal.identity());
            Ok(BankHome::Shared { journal, cache })
        } else {
            Ok(BankHome::Dir(data.join("banks")))
        }
    }

    /// The bank directory, or the directory of this machine's snapshot of shared banks.
    pub fn path(&self) -> &Path {
        match self {
            BankHome::Dir(dir) => dir,
            BankHome::Shared { cache, .. } => cache,
        }
    }

    /// Takes the banks' write lock, waiting for another process that holds it (`waiting` is
    /// called once before such a wait). Blocking.
    pub fn lock_writers(
        &self,
        waiting: impl FnOnce() + Send + 'static,
    ) -> Result<BankWriteLock, StoreError> {
        Ok(match self {
            BankHome::Dir(dir) => BankWriteLock::Dir(WriteLock::acquire(dir, waiting)?),
            BankHome::Shared { journal, .. } => {
                BankWriteLock::Shared(journal.lock_writers(waiting)?)
            }
        })
    }

    /// Opens the banks (for writing, only under [`Self::lock_writers`]). Blocking: a large
    /// bank takes seconds, and a machine's first open of shared banks replays their journal.
    pub fn open_store(&self) -> Result<BankStore, StoreError> {
        let BankHome::Shared { journal, cache } = self else {
            let mut store = BankStore::open(self.path())?;
            // Only if no other process is writing (a writer holding the lock, this process's
            // own caller included, writes its own snapshot when it needs one).
            if store.records_since_snapshot() >= SNAPSHOT_AFTER_RECORDS
                && let Some(_writers) = WriteLock::try_acquire(self.path())?
                && let Err(error) = store.write_snapshot()
            {
                // The banks opened; only the next open's replay stays long.
                store.add_warning(format!(
                    "writing a snapshot failed ({error}); the journal is replayed until one is"
                ));
            }
            return Ok(store);
        };
        let end = journal.last_seq()?;
        let mut store = BankStore::open_shared(cache, journal.journal()?)?;
        if let Some(why) = stale_snapshot(journal, cache, store.snapshot_seq(), end)? {
            let warning = format!(
                "this machine's snapshot of the shared banks in {} (journal position {}) {why}; \
                 rebuilt from the database's journal (position {end})",
                cache.display(),
                store.snapshot_seq(),
            );
            drop(store);
            for file in [aranea_index::store::SNAPSHOT_FILE, JOURNAL_MARK_FILE] {
                let path = cache.join(file);
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(StoreError::Io { path, source: e });
                    }
                    _ => {}
                }
            }
            store = BankStore::open_shared(cache, journal.journal()?)?;
            store.add_warning(warning);
        }
        if store.records_since_snapshot() >= SNAPSHOT_AFTER_RECORDS
            && let Some(_machine) = WriteLock::try_acquire(cache)?
        {
            // Other processes of this machine share the cache: one writes it at a time.
            write_cached_snapshot(journal, cache, &mut store)?;
        }
        Ok(store)
    }

    /// Writes a snapshot of `store` (opened from this home): into the bank directory, whose
    /// write lock the caller holds, or into this machine's cache of shared banks, which other
    /// processes of this machine may be writing too.
    pub fn write_snapshot(&self, store: &mut BankStore) -> Result<(), StoreError> {
        match self {
            BankHome::Dir(_) => store.write_snapshot(),
            BankHome::Shared { journal, cache } => {
                let _machine = WriteLock::acquire(cache, || {})?;
                write_cached_snapshot(journal, cache, store)
            }
        }
    }
}

/// Beside a machine's snapshot of shared banks: its sequence number and the digest of the
/// journal record at it, so that a journal that differs there (the database restored from an
/// older backup, then written to) is told apart from the one the snapshot was taken from.
const JOURNAL_MARK_FILE: &str = "journal.mark";

/// Why the cached snapshot at `snapshot_seq` must not be used with this journal, if it must
/// not. A snapshot without a matching mark (an interrupted write) is not trusted either.
fn stale_snapshot(
    journal: &SharedJournal,
    cache: &Path,
    snapshot_seq: u64,
    end: u64,
) -> Result<Option<&'static str>, StoreError> {
    if snapshot_seq == 0 {
        return Ok(None);
    }
    if snapshot_seq > end {
        return Ok(Some(
            "is ahead of the database's journal (restored from a backup?)",
        ));
    }
    let mark = std::fs::read_to_string(cache.join(JOURNAL_MARK_FILE)).unwrap_or_default();
    let expected = journal
        .record_digest(snapshot_seq)?
        .map(|digest| format!("{snapshot_seq} {digest}"));
    Ok(match expected {
        Some(expected) if mark.trim() == expected => None,
        _ => Some("was taken from a journal that differs from the database's at its position"),
    })
}

/// Writes the snapshot, then its mark (temporary file, renamed): a crash in between leaves a
/// snapshot whose mark does not match, which the next open rebuilds.
fn write_cached_snapshot(
    journal: &SharedJournal,
    cache: &Path,
    store: &mut BankStore,
) -> Result<(), StoreError> {
    store.write_snapshot()?;
    let seq = store.snapshot_seq();
    let Some(digest) = journal.record_digest(seq)? else {
        return Ok(());
    };
    let temp = cache.join(format!("{JOURNAL_MARK_FILE}.tmp"));
    let path = cache.join(JOURNAL_MARK_FILE);
    std::fs::write(&temp, format!("{seq} {digest}\n"))
        .and_then(|()| std::fs::rename(&temp, &path))
        .map_err(|source| StoreError::Io { path, source })
}

/// The banks' write lock, held while one process writes them; released on drop.
pub enum BankWriteLock {
    Dir(WriteLock),
    Shared(SharedWriteLock),
}

/// What the files of the bank directory looked like: name, length and modification time.
type DirSignature = Vec<(String, u64, Option<SystemTime>)>;

struct Writer {
    store: BankStore,
    signature: DirSignature,
    /// How far the media references and video index have read the store's entries.
    derived: DerivedThrough,
}

/// The state the published media references and video index were derived from: while the
/// store's [`EditMark`] stays the same, only entries above `last_entry` are new to them.
struct DerivedThrough {
    mark: EditMark,
    last_entry: EntryId,
}

impl DerivedThrough {
    /// Matches no state: the next install reads every entry.
    fn nothing() -> Self {
        DerivedThrough {
            mark: EditMark::default(),
            last_entry: 0,
        }
    }
}

/// The live banks of one bank directory or shared journal.
pub struct LiveBanks {
    home: BankHome,
    live: ArcSwap<LiveIndex>,
    media_refs: ArcSwap<MediaRefs>,
    /// The `vpdq` entries' frames, extended when entries are added and rebuilt when banks or
    /// entries are otherwise changed (`None` until one builds).
    videos: ArcSwapOption<VideoBanks>,
    video_params: VideoIndexParams,
    writer: Mutex<Writer>,
}

impl LiveBanks {
    /// Opens (or creates) the bank directory. Blocking: a large bank takes seconds.
    pub fn open(dir: &Path) -> Result<LiveBanks, StoreError> {
        Self::open_with(dir, VideoIndexParams::default())
    }

    /// As [`LiveBanks::open`], with the video banks matched under `video` (match share,
    /// quality, pruning; the per-frame distance is each bank's threshold).
    pub fn open_with(dir: &Path, video: VideoIndexParams) -> Result<LiveBanks, StoreError> {
        Self::open_home(BankHome::Dir(dir.to_path_buf()), video)
    }

    /// Opens the banks wherever they are kept. Blocking.
    pub fn open_home(home: BankHome, video: VideoIndexParams) -> Result<LiveBanks, StoreError> {
        let store = open_logged(&home)?;
        let signature = dir_signature(home.path());
        let banks = LiveBanks {
            live: ArcSwap::new(store.live()),
            media_refs: ArcSwap::from_pointee(MediaRefs::default()),
            videos: ArcSwapOption::empty(),
            video_params: video,
            writer: Mutex::new(Writer {
                store,
                signature,
                derived: DerivedThrough::nothing(),
            }),
            home,
        };
        {
            let mut writer = banks.writer.lock().unwrap_or_else(PoisonError::into_inner);
            banks.install(&mut writer);
        }
        Ok(banks)
    }

    /// The video index of the current banks (`None` if it could not be built).
    pub fn videos(&self) -> Option<Arc<VideoBanks>> {
        self.videos.load_full()
    }

    /// The index to search now.
    pub fn live(&self) -> Arc<LiveIndex> {
        self.live.load_full()
    }

    /// The media a PDQ entry came from, if known.
    pub fn media_ref(&self, entry: EntryId) -> Option<MediaRef> {
        self.media_refs.load().get(entry).cloned()
    }

    /// The bank directory, or this machine's snapshot directory of shared banks.
    pub fn dir(&self) -> &Path {
        self.home.path()
    }

    /// Where the banks are kept.
    pub fn home(&self) -> &BankHome {
        &self.home
    }

    /// Catches up with changes by other processes; true when there were any. Blocking.
    pub fn refresh_if_changed(&self) -> Result<bool, StoreError> {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        self.refresh_locked(&mut writer, false)
    }

    /// `reopen` discards what the open store holds (a failed change's records) and reads the
    /// banks afresh.
    fn refresh_locked(&self, writer: &mut Writer, reopen: bool) -> Result<bool, StoreError> {
        match &self.home {
            BankHome::Dir(dir) => {
                let now = dir_signature(dir);
                if now == writer.signature && !reopen {
                    return Ok(false);
                }
                writer.store = open_logged(&self.home)?;
                writer.signature = dir_signature(dir);
            }
            BankHome::Shared { journal, .. } => {
                let end = journal.last_seq()?;
                if end == writer.store.state().seq() && !reopen {
                    return Ok(false);
                }
                let caught_up = if reopen {
                    None
                } else {
                    writer.store.catch_up().ok()
                };
                if caught_up.is_none() {
                    // Replacing the old store drops its journal, which rolls back an
                    // unfinished change of it (reads of the new one never wait for that).
                    writer.store = open_logged(&self.home)?;
                }
            }
        }
        self.install(writer);
        Ok(true)
    }

    /// Publishes the writer's banks with their media references and video index. Entries
    /// only added since the last install are all these need to read (an import or a review
    /// decision into a 10M-entry bank must not make every server re-read 10M entries); any
    /// other change (a bank created or changed, an entry disabled, the store reopened) has
    /// them rebuilt from every entry.
    fn install(&self, writer: &mut Writer) {
        let state = writer.store.state();
        if writer.derived.mark == state.edit_mark() {
            self.extend_derived(state, &mut writer.derived);
        } else {
            self.rebuild_derived(state, &mut writer.derived);
        }
        self.live.store(writer.store.live());
    }

    fn rebuild_derived(&self, state: &BankState, derived: &mut DerivedThrough) {
        let read = EntriesRead::after(state, 0);
        self.media_refs
            .store(Arc::new(MediaRefs::from(read.media_refs)));
        self.videos.store(video_index(state, self.video_params));
        *derived = if read.complete {
            DerivedThrough {
                mark: state.edit_mark(),
                last_entry: read.last_entry,
            }
        } else {
            DerivedThrough::nothing()
        };
    }

    fn extend_derived(&self, state: &BankState, derived: &mut DerivedThrough) {
        let read = EntriesRead::after(state, derived.last_entry);
        if !read.complete {
            return self.rebuild_derived(state, derived);
        }
        if !read.media_refs.is_empty() {
            let extended = self.media_refs.load().extended(read.media_refs);
            self.media_refs.store(Arc::new(extended));
        }
        if read.videos_added {
            let videos = match self.videos.load_full() {
                Some(videos) => videos.extended(state, derived.last_entry),
                None => video_index(state, self.video_params),
            };
            if videos.is_none() {
                return self.rebuild_derived(state, derived);
            }
            self.videos.store(videos);
        }
        derived.last_entry = read.last_entry;
    }

    /// Runs a change on the bank store (after catching up with other processes), publishes
    /// it and returns its result. Blocking.
    pub fn write<T>(
        &self,
        change: impl FnOnce(&mut BankStore) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        // Other processes (another server, `aranea bank import`) write the same banks:
        // catching up and appending must happen under their lock too.
        let path = self.home.path().to_path_buf();
        let _write_lock = self.home.lock_writers(move || {
            tracing::info!(banks = %path.display(), "waiting for another process writing the banks")
        })?;
        self.refresh_locked(&mut writer, false)?;
        let result = change(&mut writer.store);
        if result.is_err() {
            // A failed change may leave a transaction open: reopening discards it.
            self.refresh_locked(&mut writer, true)?;
            return result;
        }
        writer.store.publish()?;
        if writer.store.records_since_snapshot() >= SNAPSHOT_AFTER_RECORDS
            && let Err(error) = self.home.write_snapshot(&mut writer.store)
        {
            // The change itself is in the journal: a later change or open tries again.
            tracing::warn!(%error, banks = %self.dir().display(), "writing a bank snapshot failed");
        }
        self.install(&mut writer);
        if let BankHome::Dir(dir) = &self.home {
            writer.signature = dir_signature(dir);
        }
        result
    }

    /// Reads the bank store's state under the writer lock. Blocking; not for the hot path.
    pub fn read<T>(&self, look: impl FnOnce(&BankStore) -> T) -> T {
        let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        look(&writer.store)
    }

    /// Polls for changes by other processes every `every` until the task is dropped.
    pub async fn follow(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let banks = Arc::clone(&self);
            match tokio::task::spawn_blocking(move || banks.refresh_if_changed()).await {
                Ok(Ok(true)) => tracing::info!(banks = %self.dir().display(), "banks reloaded"),
                Ok(Ok(false)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, "bank reload failed; the previous banks stay live")
                }
                Err(error) => tracing::warn!(%error, "bank reload task failed"),
            }
        }
    }
}

/// Opens the banks, logging what opening worked around (a torn journal tail, a snapshot
/// dropped): a server has no terminal to print it on.
fn open_logged(home: &BankHome) -> Result<BankStore, StoreError> {
    let store = home.open_store()?;
    for warning in store.warnings() {
        tracing::warn!(banks = %home.path().display(), "{warning}");
    }
    Ok(store)
}

fn dir_signature(dir: &Path) -> DirSignature {
    let mut files: DirSignature = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            // Taking the write lock creates its file and changes nothing else.
            let changes_banks = entry.file_name() != WRITE_LOCK_FILE;
            (meta.is_file() && changes_banks).then(|| {
                (
                    entry.file_name().to_string_lossy().into_owned(),
                    meta.len(),
                    meta.modified().ok(),
                )
            })
        })
        .collect();
    files.sort();
    files
}

/// The known videos: their frames indexed for search, and each video's frames for the
/// per-frame details of an answer. Replaced whole with every bank change that can change it,
/// so holders of the index (the demo's crawler) can tell a new one by pointer.
pub struct VideoBanks {
    pub index: Arc<VideoIndex>,
    frames: HashMap<EntryId, Vec<VpdqFeature>>,
}

impl VideoBanks {
    /// The frames of a `vpdq` entry.
    pub fn frames(&self, entry: EntryId) -> Option<&[VpdqFeature]> {
        self.frames.get(&entry).map(Vec::as_slice)
    }

    /// These videos plus the `vpdq` entries above `after`. `None` if the entries cannot be
    /// read.
    fn extended(&self, state: &BankState, after: EntryId) -> Option<Arc<VideoBanks>> {
        let mut new_frames = Vec::new();
        let index = self
            .index
            .extended(state, after, &mut |entry, features| {
                new_frames.push((entry, features.to_vec()));
            })
            .inspect_err(|error| {
                tracing::warn!(%error, "bank entries unreadable; rebuilding the video index")
            })
            .ok()?;
        for (entry, why) in index.skipped().get(self.index.skipped().len()..)? {
            tracing::warn!(entry = *entry, %why, "vpdq entry left out of the video index");
        }
        let mut frames = self.frames.clone();
        frames.extend(new_frames);
        Some(Arc::new(VideoBanks {
            index: Arc::new(index),
            frames,
        }))
    }
}

/// The `vpdq` entries' frames in one index. Rebuilt whole on each change: video banks are
/// small next to image banks (frames are pruned), and a request never waits for it.
///
/// `VideoIndex::build_with` streams the entries once ([`aranea_index::BankState::for_each_entry`]):
/// a 10M-entry PDQ bank read into memory whole would cost ~1 GB for the life of the process.
fn video_index(state: &BankState, params: VideoIndexParams) -> Option<Arc<VideoBanks>> {
    let mut frames = HashMap::new();
    let built = VideoIndex::build_with(state, params, &mut |entry, features| {
        frames.insert(entry, features.to_vec());
    });
    match built {
        Ok(index) => {
            for (entry, why) in index.skipped() {
                tracing::warn!(entry = *entry, %why, "vpdq entry left out of the video index");
            }
            Some(Arc::new(VideoBanks {
                index: Arc::new(index),
                frames,
            }))
        }
        Err(error) => {
            tracing::warn!(%error, "bank entries unreadable; video banks do not match");
            None
        }
    }
}

/// What one pass over the entries above an id found.
struct EntriesRead {
    /// The media of the PDQ entries whose import named it.
    media_refs: Vec<(EntryId, MediaRef)>,
    /// The highest entry id read.
    last_entry: EntryId,
    videos_added: bool,
    /// False if some entries could not be read.
    complete: bool,
}

impl EntriesRead {
    fn after(state: &BankState, after: EntryId) -> EntriesRead {
        let mut read = EntriesRead {
            media_refs: Vec::new(),
            last_entry: after,
            videos_added: false,
            complete: true,
        };
        let streamed = state.for_each_entry_after(after, &mut |entry| {
            read.last_entry = entry.id;
            read.videos_added |= entry.signal.signal_type() == SignalType::Vpdq;
            if let Some(found) = media_ref_of(entry) {
                read.media_refs.push((entry.id, found));
            }
            Ok(())
        });
        if let Err(error) = streamed {
            tracing::warn!(%error, "bank entries unreadable; some answers lack the known media's hashes");
            read.complete = false;
        }
        read
    }
}

/// The media of PDQ entries, by entry: what is read from the entries in one go, and what was
/// added after, kept apart so that adding a few entries copies only the recent part. Entries
/// disabled later keep theirs: they are looked up only for hits, which disabled entries never
/// are.
#[derive(Default)]
pub(crate) struct MediaRefs {
    settled: Arc<HashMap<EntryId, MediaRef>>,
    recent: HashMap<EntryId, MediaRef>,
}

impl From<Vec<(EntryId, MediaRef)>> for MediaRefs {
    fn from(refs: Vec<(EntryId, MediaRef)>) -> Self {
        MediaRefs {
            settled: Arc::new(refs.into_iter().collect()),
            recent: HashMap::new(),
        }
    }
}

impl MediaRefs {
    /// Below this many recent references (or an eighth of the settled ones, if more), added
    /// references are copied with the recent ones only; past it, everything is merged once.
    const RECENT_AT_MOST: usize = 4096;

    fn get(&self, entry: EntryId) -> Option<&MediaRef> {
        self.recent.get(&entry).or_else(|| self.settled.get(&entry))
    }

    fn extended(&self, added: Vec<(EntryId, MediaRef)>) -> MediaRefs {
        let mut recent = self.recent.clone();
        recent.extend(added);
        if recent.len() <= Self::RECENT_AT_MOST.max(self.settled.len() / 8) {
            return MediaRefs {
                settled: Arc::clone(&self.settled),
                recent,
            };
        }
        let mut settled = HashMap::clone(&self.settled);
        settled.extend(recent);
        MediaRefs {
            settled: Arc::new(settled),
            recent: HashMap::new(),
        }
    }
}

fn media_ref_of(entry: &aranea_index::Entry) -> Option<MediaRef> {
    if entry.signal.signal_type() != SignalType::Pdq {
        return None;
    }
    let metadata = entry.metadata.as_deref()?;
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(metadata) else {
        return None;
    };
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| fields.get(*k).and_then(|v| v.as_str()))
            .unwrap_or_default()
            .to_owned()
    };
    let found = MediaRef {
        sha1_base32: text(&["sha1_base32", "sha1"]),
        sha256_hex: text(&["sha256_hex", "sha256"]),
    };
    (found != MediaRef::default()).then_some(found)
}
