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

/// Items waiting to be written together, each with where its answer goes, and the turn to
/// write them: whoever gets the turn writes everything queued so far, while the next batch
/// gathers.
pub(crate) struct Group<T, R> {
    queue: Mutex<Vec<(T, oneshot::Sender<R>)>>,
    turn: tokio::sync::Mutex<()>,
}

impl<T, R> Default for Group<T, R> {
    fn default() -> Self {
        Group {
            queue: Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
        }
    }
}

impl<T: Clone, R> Group<T, R> {
    /// Queues `item` and returns its answer once it is written: by this caller, with
    /// everything queued meanwhile (`write_batch`, which answers each item), or by a caller
    /// that got the turn first. An item whose writer was cancelled before answering is
    /// written alone (`write_alone`).
    async fn submit<Batch, Alone>(
        &self,
        writes: &WriteTurn,
        item: T,
        write_batch: impl Fn(Vec<(T, oneshot::Sender<R>)>) -> Batch,
        write_alone: impl FnOnce(T) -> Alone,
    ) -> R
    where
        Batch: Future<Output = ()>,
        Alone: Future<Output = R>,
    {
        let (reply, mut answer) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((item.clone(), reply));
        loop {
            let _turn = self.turn.lock().await;
            match answer.try_recv() {
                Ok(result) => return result,
                Err(oneshot::error::TryRecvError::Closed) => {
                    let _turn = writes.take().await;
                    return write_alone(item).await;
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
            write_batch(batch).await;
        }
    }
}

/// What a page's settlement came to.
type Settled = Result<SettledLinks, StoreError>;

/// Page settlements written together.
pub(crate) type GroupCommit = Group<PageSettlement, Settled>;

impl GroupCommit {
    /// Writes `page` with whatever other pages are queued; returns when it is committed.
    pub async fn settle(&self, store: &Store, writes: &WriteTurn, page: PageSettlement) -> Settled {
        self.submit(
            writes,
            page,
            |batch| write(store, batch),
            |page| write_alone(store, page),
        )
        .await
    }
}

async fn write_alone(store: &Store, page: PageSettlement) -> Settled {
    let mut results = store.frontier().settle_pages(&[page], now_ms()).await?;
    results.pop().unwrap_or(Err(StoreError::NotFound {
        what: "settled page",
        id: String::new(),
    }))
}

/// Writes a batch in one transaction and answers each page. If the transaction as a whole
/// fails, each page is written alone, so every page gets its own outcome.
async fn write(store: &Store, batch: Vec<(PageSettlement, oneshot::Sender<Settled>)>) {
    if batch.is_empty() {
        return;
    }
    let (pages, replies): (Vec<PageSettlement>, Vec<oneshot::Sender<Settled>>) =
        batch.into_iter().unzip();
    match store.frontier().settle_pages(&pages, now_ms()).await {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(_) => {
            for (page, reply) in pages.into_iter().zip(replies) {
                let _ = reply.send(write_alone(store, page).await);
            }
        }
    }
}

type Taken = Result<Vec<EnqueuedUrl>, StoreError>;
/// A page's media to enqueue, under its host's lease.
type PageMedia = (Lease, Vec<NewUrl>);

/// Pages' media enqueued together: each mined page's media (taken under its host's lease,
/// [`aranea_store::Frontier::enqueue_urls_taken`]) go into a shared queue, and whoever gets
/// the turn enqueues everything queued so far in one transaction. One page per transaction
/// made this the largest holder of SQLite's write turn (a thousand transactions of six
/// statements in the pipeline bench); together, the statements are per host, not per page.
pub(crate) type GroupEnqueue = Group<PageMedia, Taken>;

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
        self.submit(
            writes,
            (lease.clone(), urls.to_vec()),
            |batch| enqueue_together(store, batch),
            |(lease, urls)| enqueue_alone(store, lease, urls),
        )
        .await
    }
}

async fn enqueue_alone(store: &Store, lease: Lease, urls: Vec<NewUrl>) -> Taken {
    store
        .frontier()
        .enqueue_urls_taken(&[lease], &urls, now_ms())
        .await
}

/// Enqueues every page's URLs in one transaction and answers each page. If that fails (one
/// page's URL refused fails them all), each page is enqueued alone, so every page gets its
/// own outcome.
async fn enqueue_together(store: &Store, batch: Vec<(PageMedia, oneshot::Sender<Taken>)>) {
    if batch.is_empty() {
        return;
    }
    let leases: Vec<Lease> = batch.iter().map(|((lease, _), _)| lease.clone()).collect();
    let all: Vec<NewUrl> = batch
        .iter()
        .flat_map(|((_, urls), _)| urls.iter().cloned())
        .collect();
    match store
        .frontier()
        .enqueue_urls_taken(&leases, &all, now_ms())
        .await
    {
        Ok(done) => {
            let mut done = done.into_iter();
            for ((_, urls), reply) in batch {
                let _ = reply.send(Ok(done.by_ref().take(urls.len()).collect()));
            }
        }
        Err(_) => {
            for ((lease, urls), reply) in batch {
                let _ = reply.send(enqueue_alone(store, lease, urls).await);
            }
        }
    }
}
