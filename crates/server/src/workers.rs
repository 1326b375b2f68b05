//! The hashing threads: `hash_workers` long-lived threads that decode and hash submitted
//! media, fed in arrival order by a channel.
//!
//! Why not tokio's blocking pool: it hands each job to whichever of its (up to 512) threads
//! is idle, so the hash crate's per-thread filter buffers were allocated and faulted in again
//! on cold threads, and more threads than cores competed for the caches. A fixed set of
//! threads keeps those buffers warm and bounds the work in flight at the same time.
//!
//! This module only runs closures; it must not know about HTTP or the banks.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

/// Work for one hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// Why a job did not produce its result.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The threads are gone (the server is shutting down).
    #[error("the hashing threads have stopped")]
    Stopped,
    /// The job panicked; the thread survived it.
    #[error("the hashing job panicked")]
    Panicked,
}

/// A fixed set of hashing threads; they end when this is dropped and the queue is empty.
pub struct HashWorkers {
    jobs: Sender<Job>,
}

impl HashWorkers {
    /// Starts `count` threads (at least one).
    pub fn start(count: usize) -> std::io::Result<HashWorkers> {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..count.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("aranea-hash-{i}"))
                .spawn(move || work(&queue))?;
        }
        Ok(HashWorkers { jobs })
    }

    /// Runs `job` on a hashing thread once the jobs queued before it have started. When the
    /// caller stops waiting (the client went away) before its turn, the job is skipped.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, WorkerError> {
        let (answer, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if answer.is_closed() {
                return;
            }
            let _ = answer.send(job());
        });
        self.jobs.send(job).map_err(|_| WorkerError::Stopped)?;
        // A panicking job drops its sender without answering.
        result.await.map_err(|_| WorkerError::Panicked)
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        // One thread waits in `recv` holding the lock; the others wait for the lock.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // A panic must not cost the server a hashing thread (the lock is not held here).
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_on_the_fixed_threads_and_survives_a_panic() {
        let workers = HashWorkers::start(2).unwrap();
        let mut names = std::collections::HashSet::new();
        for _ in 0..20 {
            let name = workers
                .run(|| std::thread::current().name().map(str::to_owned))
                .await
                .unwrap();
            names.insert(name.unwrap());
        }
        assert!(names.iter().all(|n| n.starts_with("aranea-hash-")));
        assert!(names.len() <= 2, "{names:?}");
        let panicked = workers.run(|| -> u32 { panic!("hostile input") }).await;
        assert!(matches!(panicked, Err(WorkerError::Panicked)));
        // Both threads are still there after the panic: two jobs that wait for each other
        // only finish when each has a thread.
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let (a, b) = (Arc::clone(&barrier), Arc::clone(&barrier));
        let both =
            async { tokio::join!(workers.run(move || a.wait()), workers.run(move || b.wait())) };
        let (a, b) = tokio::time::timeout(std::time::Duration::from_secs(10), both)
            .await
            .expect("a hashing thread died with the panic");
        assert!(a.is_ok() && b.is_ok());
    }
}
