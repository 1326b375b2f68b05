//! Group commit of page verdicts: every leased host's settled page (its media, sightings,
//! matches, links and completions) goes into a shared queue, and whoever gets the writer's
//! turn writes everything queued so far in one write transaction
//! ([`aranea_store::Frontier::settle_pages`]). While one batch is being written the next
//! gathers, so batches grow with the load and an idle crawler waits for nobody.
//!
//! A settlement returns only once its own page is committed (or refused): nothing is
//! acknowledged before it is durable, and a killed worker loses only what the next lease
//! holder fetches again. (The host's next request does not wait for it: see
//! [`super::verdict`].) This module must not decide what is written: pages arrive settled.
//!
//! The media a page is mined for are queued the same way ([`GroupEnqueue`]): every host's
//! mined page waits for one transaction that enqueues what all of them found.
//!
//! On SQLite the group commit and the crawler's other hot-path writes also take one
//! [`WriteTurn`] per process, so they queue here rather than in SQLite's busy handler.

use std::sync::Mutex;

use aranea_store::{
    BackendKind, EnqueuedUrl, Lease, NewUrl, PageSettlement, SettledLinks, Store, StoreError,
};
use tokio::sync::oneshot;

use super::now_ms;

type Reply = oneshot::Sender<Result<SettledLinks, StoreError>>;

/// This process's turn to write, on SQLite. Its writers take turns on one database lock, and
/// a connection that finds the lock taken sleeps in SQLite's busy handler (1, 2, 5, … 100 ms
/// at a time) while holding its pool connection, so steps waited tens of milliseconds for
/// writes of one, and reads waited for the connections held. Taking turns here instead wakes
/// the next writer as soon as the last one is done and holds no connection while waiting.
/// Other processes on the same file still meet the busy handler. PostgreSQL locks rows, not
/// the database: no turn there.
pub(crate) struct WriteTurn {
    lock: Option<tokio::sync::Mutex<()>>,
}

impl WriteTurn {
    pub fn new(kind: BackendKind) -> WriteTurn {
        WriteTurn {
            lock: (kind == BackendKind::Sqlite).then(|| tokio::sync::Mutex::new(())),
        }
    }

    /// Waits for the turn; hold the guard over the whole write.
    pub async fn take(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }
}

/// The shared queue of page settlements and the writer's turn.
#[derive(Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Vec<(PageSettlement, Reply)>>,
    turn: tokio::sync::Mutex<()>,
}

impl GroupCommit {
    /// Writes `page` with whatever other pages are queued; returns when it is committed.
    pub async fn settle(
        &self,
        store: &Store,
        writes: &WriteTurn,
        page: PageSettlement,
    ) -> Result<SettledLinks, StoreError> {
        let (reply, mut answer) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((page.clone(), reply));
        loop {
            let _turn = self.turn.lock().await;
            match answer.try_recv() {
                Ok(result) => return result,
                Err(oneshot::error::TryRecvError::Closed) => {
                    // A writer that took it was cancelled before answering: write it alone.
                    let _turn = writes.take().await;
                    return self.write_alone(store, page).await;
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let batch: Vec<(PageSettlement, Reply)> = std::mem::take(
                &mut *self
                    .queue
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            );
            let _turn = writes.take().await;
            write(store, batch).await;
        }
    }

    async fn write_alone(
        &self,
        store: &Store,
        page: PageSettlement,
    ) -> Result<SettledLinks, StoreError> {
        let mut results = store.frontier().settle_pages(&[page], now_ms()).await?;
        results.pop().unwrap_or(Err(StoreError::NotFound {
            what: "settled page",
            id: String::new(),
        }))
    }
}

/// Writes a batch in one transaction and answers each page. If the transaction as a whole
/// fails, each page is written alone, so every page gets its own outcome.
async fn write(store: &Store, batch: Vec<(PageSettlement, Reply)>) {
    if batch.is_empty() {
        return;
    }
    let (pages, replies): (Vec<PageSettlement>, Vec<Reply>) = batch.into_iter().unzip();
    match store.frontier().settle_pages(&pages, now_ms()).await {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(_) => {
            for (page, reply) in pages.into_iter().zip(replies) {
                let result = match store.frontier().settle_pages(&[page], now_ms()).await {
                    Ok(mut results) => results.pop().unwrap_or(Err(StoreError::NotFound {
                        what: "settled page",
                        id: String::new(),
                    })),
                    Err(error) => Err(error),
                };
                let _ = reply.send(result);
            }
        }
    }
}

type Taken = Result<Vec<EnqueuedUrl>, StoreError>;
/// A page's media to enqueue, under its host's lease, and where the answer goes.
type PageMedia = (Lease, Vec<NewUrl>, oneshot::Sender<Taken>);

/// Pages' media enqueued together: each mined page's media (taken under its host's lease,
/// [`aranea_store::Frontier::enqueue_urls_taken`]) go into a shared queue, and whoever gets
/// the turn enqueues everything queued so far in one transaction. One page per transaction
/// made this the largest holder of SQLite's write turn (a thousand transactions of six
/// statements in the pipeline bench); together, the statements are per host, not per page.
#[derive(Default)]
pub(crate) struct GroupEnqueue {
    queue: Mutex<Vec<PageMedia>>,
    turn: tokio::sync::Mutex<()>,
}

impl GroupEnqueue {
    /// Enqueues `urls` with whatever other pages' media are queued, the new ones on the
    /// lease's host taken under `lease`; returns one entry per URL once committed.
    pub async fn enqueue(
        &self,
        store: &Store,
        writes: &WriteTurn,
        lease: &Lease,
        urls: &[NewUrl],
    ) -> Taken {
        if urls.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, mut answer) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((lease.clone(), urls.to_vec(), reply));
        loop {
            let _turn = self.turn.lock().await;
            match answer.try_recv() {
                Ok(result) => return result,
                Err(oneshot::error::TryRecvError::Closed) => {
                    // A writer that took it was cancelled before answering: write it alone.
                    let _turn = writes.take().await;
                    let leases = [lease.clone()];
                    return store
                        .frontier()
                        .enqueue_urls_taken(&leases, urls, now_ms())
                        .await;
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let batch = std::mem::take(
                &mut *self
                    .queue
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            );
            let _turn = writes.take().await;
            enqueue_together(store, batch).await;
        }
    }
}

/// Enqueues every page's URLs in one transaction and answers each page. If that fails (one
/// page's URL refused fails them all), each page is enqueued alone, so every page gets its
/// own outcome.
async fn enqueue_together(store: &Store, batch: Vec<PageMedia>) {
    if batch.is_empty() {
        return;
    }
    let leases: Vec<Lease> = batch.iter().map(|(lease, _, _)| lease.clone()).collect();
    let all: Vec<NewUrl> = batch
        .iter()
        .flat_map(|(_, urls, _)| urls.iter().cloned())
        .collect();
    match store
        .frontier()
        .enqueue_urls_taken(&leases, &all, now_ms())
        .await
    {
        Ok(done) => {
            let mut done = done.into_iter();
            for (_, urls, reply) in batch {
                let _ = reply.send(Ok(done.by_ref().take(urls.len()).collect()));
            }
        }
        Err(_) => {
            for (lease, urls, reply) in batch {
                let result = store
                    .frontier()
                    .enqueue_urls_taken(&[lease], &urls, now_ms())
                    .await;
                let _ = reply.send(result);
            }
        }
    }
}
