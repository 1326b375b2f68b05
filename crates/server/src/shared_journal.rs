//! The banks' journal in PostgreSQL, so that servers and crawl workers on several machines
//! share one set of banks.
//!
//! [`aranea_index::BankStore`] is synchronous (its callers hold it behind a mutex on blocking
//! threads), the store is asynchronous, and a change of several records must stay one open
//! database transaction across several journal appends. So one thread of its own owns the
//! journal's connections and a small runtime, and every [`SharedJournal`] handle sends it
//! requests. Each machine keeps its own snapshot of the banks in a cache directory named after
//! the database's journal identity, and replays the rows after it.
//!
//! This module moves records between the bank store and the table; it must not interpret them
//! beyond the transaction frames.

use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};

use aranea_index::{Journal, Record, StoreError};
use aranea_store::{BankWritersLock, JournalAppend, JournalRow, Store, StoreOptions};
use sha2::{Digest, Sha256};

/// Rows read per round trip when replaying.
const REPLAY_PAGE: i64 = 10_000;

type Reply<T> = SyncSender<Result<T, aranea_store::StoreError>>;

enum Request {
    LastSeq(Reply<i64>),
    RowsAfter {
        after: i64,
        limit: i64,
        reply: Reply<Vec<JournalRow>>,
    },
    Append {
        first: i64,
        records: Vec<String>,
        /// The records open or continue a bank-store transaction that a later append ends.
        keep_open: bool,
        reply: Reply<()>,
    },
    Rollback(Reply<()>),
    Lock {
        waiting: Box<dyn FnOnce() + Send>,
        reply: Reply<()>,
    },
    Unlock(Reply<()>),
}

struct Link {
    requests: Mutex<Sender<Request>>,
    identity: String,
}

impl Link {
    fn call<T>(&self, request: impl FnOnce(Reply<T>) -> Request) -> Result<T, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(request(reply))
            .map_err(|_| journal_error("its connection thread has stopped"))?;
        answer
            .recv()
            .map_err(|_| journal_error("its connection thread stopped mid-request"))?
            .map_err(|e| StoreError::SharedJournal(Box::new(e)))
    }
}

fn journal_error(what: &str) -> StoreError {
    StoreError::SharedJournal(what.into())
}

fn seq_to_u64(seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("journal sequence number {seq}")))
}

fn seq_to_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("journal sequence number {seq}")))
}

/// A handle on the banks' journal in one PostgreSQL database. Cheap to clone.
#[derive(Clone)]
pub struct SharedJournal {
    link: Arc<Link>,
}

impl std::fmt::Debug for SharedJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedJournal")
            .field("identity", &self.link.identity)
            .finish()
    }
}

impl SharedJournal {
    /// Connects to the database at `url` (migrating it if needed) on a thread of its own.
    /// Blocking.
    pub fn connect(url: &str) -> Result<SharedJournal, StoreError> {
        let (requests, inbox) = mpsc::channel();
        let (ready, connected) = mpsc::sync_channel(1);
        let url = url.to_owned();
        std::thread::Builder::new()
            .name("bank-journal".into())
            .spawn(move || run_journal_thread(&url, &ready, &inbox))
            .map_err(|e| StoreError::SharedJournal(Box::new(e)))?;
        let identity = connected
            .recv()
            .map_err(|_| journal_error("its connection thread stopped while connecting"))?
            .map_err(|e| StoreError::SharedJournal(Box::new(e)))?;
        Ok(SharedJournal {
            link: Arc::new(Link {
                requests: Mutex::new(requests),
                identity,
            }),
        })
    }

    /// The database's journal identity: snapshots of these banks are kept under it.
    pub fn identity(&self) -> &str {
        &self.link.identity
    }

    /// The highest committed sequence number. Blocking.
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        seq_to_u64(self.link.call(Request::LastSeq)?)
    }

    /// The SHA-256 (hex) of the committed record numbered `seq`, `None` if there is none: a
    /// machine's snapshot remembers it, to tell the journal it was taken from. Blocking.
    pub fn record_digest(&self, seq: u64) -> Result<Option<String>, StoreError> {
        let Some(after) = seq.checked_sub(1) else {
            return Ok(None);
        };
        let after = seq_to_i64(after)?;
        let rows = self.link.call(|reply| Request::RowsAfter {
            after,
            limit: 1,
            reply,
        })?;
        Ok(rows
            .into_iter()
            .find(|row| row.seq == after + 1)
            .map(|row| {
                Sha256::digest(row.record.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            }))
    }

    /// Takes the writers' lock (waiting for another process that holds it; `waiting` is
    /// called once before such a wait). Blocking; must not be taken twice by one thread.
    pub fn lock_writers(
        &self,
        waiting: impl FnOnce() + Send + 'static,
    ) -> Result<SharedWriteLock, StoreError> {
        self.link.call(|reply| Request::Lock {
            waiting: Box::new(waiting),
            reply,
        })?;
        Ok(SharedWriteLock {
            link: Arc::clone(&self.link),
        })
    }

    /// A journal for one [`aranea_index::BankStore`], positioned at the committed end.
    pub fn journal(&self) -> Result<Box<dyn Journal + Send>, StoreError> {
        Ok(Box::new(TableJournal {
            link: Arc::clone(&self.link),
            last_seq: self.last_seq()?,
            in_transaction: false,
        }))
    }
}

/// Held while this process writes the shared banks; released on drop.
pub struct SharedWriteLock {
    link: Arc<Link>,
}

impl Drop for SharedWriteLock {
    fn drop(&mut self) {
        if let Err(error) = self.link.call(Request::Unlock) {
            // The lock's connection is closed either way, which releases it.
            tracing::warn!(%error, "releasing the banks' write lock");
        }
    }
}

/// The [`Journal`] of one bank store, over the table.
struct TableJournal {
    link: Arc<Link>,
    last_seq: u64,
    in_transaction: bool,
}

impl Journal for TableJournal {
    fn append(&mut self, records: &[Record]) -> Result<u64, StoreError> {
        let opens = matches!(records.first(), Some(Record::TransactionBegun { .. }));
        let closes = matches!(records.last(), Some(Record::TransactionCommitted { .. }));
        let texts = records
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::SharedJournal(Box::new(e)))?;
        let first = self.last_seq + 1;
        let keep_open = (self.in_transaction || opens) && !closes;
        let first_i64 = seq_to_i64(first)?;
        let appended = self.link.call(|reply| Request::Append {
            first: first_i64,
            records: texts,
            keep_open,
            reply,
        });
        if let Err(error) = appended {
            // The thread rolled the whole database transaction back.
            self.in_transaction = false;
            return Err(error);
        }
        self.last_seq += records.len() as u64;
        self.in_transaction = keep_open;
        Ok(first)
    }

    fn replay(
        &mut self,
        after: u64,
        apply: &mut dyn FnMut(u64, Record) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut next = after;
        loop {
            let after = seq_to_i64(next)?;
            let rows = self.link.call(|reply| Request::RowsAfter {
                after,
                limit: REPLAY_PAGE,
                reply,
            })?;
            let full_page = rows.len() as i64 >= REPLAY_PAGE;
            for row in rows {
                let seq = seq_to_u64(row.seq)?;
                let record: Record = serde_json::from_str(&row.record)
                    .map_err(|e| StoreError::Corrupt(format!("bank journal record {seq}: {e}")))?;
                apply(seq, record)?;
                next = seq;
            }
            if !full_page {
                break;
            }
        }
        // Rows committed since this journal was positioned are part of the banks now.
        self.last_seq = self.last_seq.max(next);
        Ok(())
    }

    fn last_seq(&self) -> u64 {
        self.last_seq
    }

    fn covered_up_to(&mut self, _seq: u64) -> Result<(), StoreError> {
        // The table is the banks' history: nothing is dropped when a machine snapshots.
        Ok(())
    }
}

impl Drop for TableJournal {
    fn drop(&mut self) {
        if self.in_transaction
            && let Err(error) = self.link.call(Request::Rollback)
        {
            tracing::warn!(%error, "rolling back an unfinished bank change");
        }
    }
}

/// The journal thread: connects, answers requests in order until every handle is dropped, then
/// rolls back an unfinished change and releases the writers' lock.
fn run_journal_thread(
    url: &str,
    ready: &SyncSender<Result<String, aranea_store::StoreError>>,
    inbox: &Receiver<Request>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(aranea_store::StoreError::Corrupt {
                what: "runtime for the bank journal",
                value: e.to_string(),
            }));
            return;
        }
    };
    let options = StoreOptions {
        // Reads, the open change's transaction and the writers' lock.
        max_connections: Some(3),
        ..StoreOptions::default()
    };
    let opened = runtime.block_on(async {
        let store = Store::open_with(url, &options).await?;
        let identity = store.bank_journal()?.identity().await?;
        Ok::<_, aranea_store::StoreError>((store, identity))
    });
    let store = match opened {
        Ok((store, identity)) => {
            if ready.send(Ok(identity)).is_err() {
                return;
            }
            store
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut session = Session {
        store: &store,
        open: None,
        lock: None,
    };
    while let Ok(request) = inbox.recv() {
        runtime.block_on(session.handle(request));
    }
    runtime.block_on(async {
        session.end().await;
        store.close().await;
    });
}

/// What the journal thread holds between requests.
struct Session<'a> {
    store: &'a Store,
    open: Option<JournalAppend>,
    lock: Option<BankWritersLock>,
}

impl Session<'_> {
    async fn handle(&mut self, request: Request) {
        // A reply whose asker has gone is nobody's business.
        match request {
            Request::LastSeq(reply) => {
                let _ = reply.send(self.last_seq().await);
            }
            Request::RowsAfter {
                after,
                limit,
                reply,
            } => {
                let _ = reply.send(self.rows_after(after, limit).await);
            }
            Request::Append {
                first,
                records,
                keep_open,
                reply,
            } => {
                let _ = reply.send(self.append(first, &records, keep_open).await);
            }
            Request::Rollback(reply) => {
                let _ = reply.send(self.rollback().await);
            }
            Request::Lock { waiting, reply } => {
                let _ = reply.send(self.lock(waiting).await);
            }
            Request::Unlock(reply) => {
                let _ = reply.send(self.unlock().await);
            }
        }
    }

    async fn last_seq(&self) -> Result<i64, aranea_store::StoreError> {
        self.store.bank_journal()?.last_seq().await
    }

    async fn rows_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<JournalRow>, aranea_store::StoreError> {
        self.store.bank_journal()?.rows_after(after, limit).await
    }

    async fn append(
        &mut self,
        first: i64,
        records: &[String],
        keep_open: bool,
    ) -> Result<(), aranea_store::StoreError> {
        let mut change = match self.open.take() {
            Some(change) => change,
            None => self.store.bank_journal()?.begin().await?,
        };
        if let Err(error) = change.append(first, records, crate::api::now_ms()).await {
            let _ = change.rollback().await;
            return Err(error);
        }
        if keep_open {
            self.open = Some(change);
            Ok(())
        } else {
            change.commit().await
        }
    }

    async fn rollback(&mut self) -> Result<(), aranea_store::StoreError> {
        match self.open.take() {
            Some(change) => change.rollback().await,
            None => Ok(()),
        }
    }

    async fn lock(
        &mut self,
        waiting: Box<dyn FnOnce() + Send>,
    ) -> Result<(), aranea_store::StoreError> {
        if self.lock.is_none() {
            self.lock = Some(self.store.bank_journal()?.lock_writers(waiting).await?);
        }
        Ok(())
    }

    async fn unlock(&mut self) -> Result<(), aranea_store::StoreError> {
        match self.lock.take() {
            Some(lock) => lock.release().await,
            None => Ok(()),
        }
    }

    async fn end(&mut self) {
        let _ = self.rollback().await;
        let _ = self.unlock().await;
    }
}
