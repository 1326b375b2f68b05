//! The hashing threads: a fixed set of long-lived threads that run CPU work (decoding and
//! hashing media, sealing bytes for review) fed in arrival order by a channel. The crawler
//! and the server's `/v1/media/` both hash on one of these.
//!
//! Why not Tokio's blocking pool behind a semaphore: every job then woke a parked blocking
//! thread and, when it finished, released its slot for the next job to be handed to a thread
//! again, even while work was queued. A thread here takes the next queued job without
//! sleeping (in the pipeline bench, ~7 % less CPU per crawled image). The blocking
//! pool also hands jobs to whichever of its (up to 512) threads is idle, so the hash crate's
//! per-thread buffers were faulted in again on cold threads; these stay warm.
//!
//! This module only runs closures; it must not know about media, HTTP or the banks.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

/// Work for one thread.
type Job = Box<dyn FnOnce() + Send>;

/// Why CPU work produced no result.
#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    /// The threads are gone.
    #[error("the hashing threads have stopped")]
    Closed,
    /// The job panicked; the thread survived it.
    #[error("a hashing job panicked: {0}")]
    Panicked(String),
}

/// A fixed set of threads; they end once every clone is dropped and the queue is empty.
#[derive(Clone)]
pub struct CpuPool {
    jobs: Sender<Job>,
}

impl CpuPool {
    /// Starts `count` threads (at least one). Started inside a Tokio runtime, the threads
    /// enter it, as blocking threads do, so a job may `block_on` the runtime's futures
    /// (the review vault's sink does).
    pub fn start(count: usize) -> std::io::Result<CpuPool> {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let runtime = tokio::runtime::Handle::try_current().ok();
        for i in 0..count.max(1) {
            let queue = Arc::clone(&queue);
            let runtime = runtime.clone();
            std::thread::Builder::new()
                .name(format!("aranea-hash-{i}"))
                .spawn(move || {
                    let _entered = runtime.as_ref().map(tokio::runtime::Handle::enter);
                    work(&queue);
                })?;
        }
        Ok(CpuPool { jobs })
    }

    /// Runs `job` on one of the threads once the jobs queued before it have started. When
    /// the caller stops waiting before its turn (an abandoned hash, a client gone), the job
    /// is skipped.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CpuError> {
        let (answer, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if answer.is_closed() {
                return;
            }
            let _ = answer.send(
                std::panic::catch_unwind(AssertUnwindSafe(job))
                    .map_err(|panic| panic_text(&*panic)),
            );
        });
        self.jobs.send(job).map_err(|_| CpuError::Closed)?;
        match result.await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(panic)) => Err(CpuError::Panicked(panic)),
            Err(_) => Err(CpuError::Closed),
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        // One thread waits in `recv` holding the lock; the others wait for the lock.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // Jobs catch their own panics; this keeps the thread should dropping a result panic.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_on_the_fixed_threads_and_survives_a_panic() {
        let pool = CpuPool::start(2).unwrap();
        let mut names = std::collections::HashSet::new();
        for _ in 0..20 {
            let name = pool
                .run(|| std::thread::current().name().map(str::to_owned))
                .await
                .unwrap();
            names.insert(name.unwrap());
        }
        assert!(names.iter().all(|n| n.starts_with("aranea-hash-")));
        assert!(names.len() <= 2, "{names:?}");
        let panicked = pool.run(|| -> u32 { panic!("hostile input") }).await;
        assert!(
            matches!(&panicked, Err(CpuError::Panicked(m)) if m == "hostile input"),
            "{panicked:?}"
        );
        // Both threads are still there after the panic: two jobs that wait for each other
        // only finish when each has a thread.
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let (a, b) = (Arc::clone(&barrier), Arc::clone(&barrier));
        let both = async { tokio::join!(pool.run(move || a.wait()), pool.run(move || b.wait())) };
        let (a, b) = tokio::time::timeout(std::time::Duration::from_secs(10), both)
            .await
            .expect("a hashing thread died with the panic");
        assert!(a.is_ok() && b.is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_job_may_wait_for_the_runtime_it_was_started_in() {
        let pool = CpuPool::start(1).unwrap();
        let answer = pool
            .run(|| {
                tokio::runtime::Handle::current().block_on(async {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    7
                })
            })
            .await
            .unwrap();
        assert_eq!(answer, 7);
    }

    #[tokio::test]
    async fn a_job_whose_caller_left_before_its_turn_is_skipped() {
        let pool = CpuPool::start(1).unwrap();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let blocker = pool.run(move || hold.recv().is_ok());
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        tokio::select! {
            biased;
            _ = blocker => unreachable!("the first job waits for the release"),
            _ = pool.run(move || flag.store(true, std::sync::atomic::Ordering::SeqCst)) => unreachable!("queued behind the blocker"),
            () = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
        }
        // Both callers are gone; the first job is released, the second must not run.
        release.send(()).unwrap();
        pool.run(|| ()).await.unwrap();
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }
}
