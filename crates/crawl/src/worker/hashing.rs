//! Media hashed while its host goes on: a step that fetched media hands the body to the
//! hashing pool and ends, so the host's next request (still one at a time, at its polite
//! pace) does not wait for our CPU; the host's next steps record the results in the order
//! the media were fetched, and pages waiting for the media settle then as before.
//!
//! A host keeps at most [`JOBS_PER_HOST`] media (and [`BYTES_PER_HOST`] bytes) hashing, and
//! has all its media recorded before it reports that nothing is left to do or ends a step
//! to be released for a long wait. A job whose
//! result was never recorded (the worker died, the lease was lost) left its URL in flight:
//! the next lease holder fetches it again. This module must not record anything itself:
//! [`HostWork::media_hashed`] does.

use std::sync::Arc;

use aranea_hash::HashError;
use aranea_store::{StoreError, UrlRecord};
use tokio::task::JoinHandle;

use super::Context;
use super::host::HostWork;
use crate::fetch::Response;
use crate::pipeline::{CpuError, MatchedMedia};

/// Media hashing per host at most: a few keep the hashing pool fed from one host's
/// requests (which matters when few hosts are left) without one host filling the pool's
/// queue while others wait behind it.
pub(super) const JOBS_PER_HOST: usize = 4;
/// Bytes of media hashing per host at most, beyond which the host waits for its oldest job
/// before its next request.
pub(super) const BYTES_PER_HOST: u64 = 16 * 1024 * 1024;

/// What hashing a body came to.
pub(super) type Hashed = Result<Result<MatchedMedia, HashError>, CpuError>;

/// Media fetched and being hashed.
pub(crate) struct HashJob {
    url: UrlRecord,
    response: Response,
    task: JoinHandle<Hashed>,
}

impl HashJob {
    /// Gives the result up (its URL stays in flight); hashing not started is not started.
    pub(super) fn abandon(self) {
        self.task.abort();
    }
}

/// Which hashing jobs [`HostWork::harvest`] waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Harvest {
    /// Those finished (oldest first, up to the first unfinished), and the oldest until the
    /// host is within its bounds for one more job.
    Room,
    /// Every one.
    All,
}

impl HostWork {
    /// Hands `response`'s body to the hashing pool; its result is recorded by a later
    /// [`HostWork::harvest`].
    pub(super) fn start_hashing(&mut self, url: UrlRecord, response: Response) {
        let body = response.body.clone();
        let shared = Arc::clone(&self.shared);
        let task = tokio::spawn(async move {
            let _open = shared.hash_gate.read().await;
            let matcher = shared.matcher.clone();
            shared.cpu.run(move || matcher.hash_and_match(&body)).await
        });
        self.hashing_bytes += response.body.len() as u64;
        self.hashing.push_back(HashJob {
            url,
            response,
            task,
        });
    }

    /// Records the results of the media hashed so far, oldest first; `how` says which jobs
    /// to wait for.
    pub(crate) async fn harvest(&mut self, cx: &Context, how: Harvest) -> Result<(), StoreError> {
        loop {
            let Some(oldest) = self.hashing.front() else {
                return Ok(());
            };
            let wait = match how {
                Harvest::Room => {
                    self.hashing.len() >= JOBS_PER_HOST || self.hashing_bytes >= BYTES_PER_HOST
                }
                Harvest::All => true,
            };
            if !wait && !oldest.task.is_finished() {
                return Ok(());
            }
            let Some(job) = self.hashing.pop_front() else {
                return Ok(());
            };
            self.hashing_bytes = self
                .hashing_bytes
                .saturating_sub(job.response.body.len() as u64);
            let hashed = match job.task.await {
                Ok(hashed) => hashed,
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                // Cancelled only when the runtime shuts down: the URL stays in flight.
                Err(_) => continue,
            };
            self.media_hashed(cx, job.url, job.response, hashed).await?;
        }
    }
}
