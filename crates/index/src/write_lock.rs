//! The bank directory's write lock, shared by every process that writes the directory.
//!
//! The journal appends at the end of its last segment and numbers records from the last one
//! it has read, so two processes appending at once (a server banking a review decision while
//! `aranea bank import` runs) would overwrite each other's records and reuse sequence
//! numbers. A writer takes this lock, catches up with what others wrote (reopens the store if
//! the directory changed), changes, publishes, and drops the lock. Readers never take it: a
//! half-written record or an uncommitted transaction is already invisible to them.
//!
//! The lock is an advisory `flock` on `write.lock` in the directory, released by the kernel
//! when the holder exits or dies, so a crashed writer never leaves the banks locked. It does
//! not serialise threads of one process against each other (they share one `BankStore`
//! behind a mutex) and must not be taken twice by one thread (that would wait forever).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// Name of the lock file inside the bank directory.
pub const WRITE_LOCK_FILE: &str = "write.lock";

/// Held while a process writes the bank directory; released on drop.
#[derive(Debug)]
pub struct WriteLock {
    // Closing the file releases the lock.
    _file: File,
}

impl WriteLock {
    /// Takes the lock, waiting for another process that holds it. `waiting` is called once,
    /// before the wait, when the lock is taken elsewhere (so a command line can say why it
    /// pauses).
    pub fn acquire(dir: &Path, waiting: impl FnOnce()) -> Result<WriteLock, StoreError> {
        let (file, path) = open_lock_file(dir)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                waiting();
                file.lock().map_err(|e| StoreError::io(&path, e))?;
            }
            Err(TryLockError::Error(e)) => return Err(StoreError::io(&path, e)),
        }
        Ok(WriteLock { _file: file })
    }

    /// Takes the lock only if no other holder has it.
    pub fn try_acquire(dir: &Path) -> Result<Option<WriteLock>, StoreError> {
        let (file, path) = open_lock_file(dir)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(WriteLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(StoreError::io(&path, e)),
        }
    }
}

fn open_lock_file(dir: &Path) -> Result<(File, PathBuf), StoreError> {
    fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    let path = dir.join(WRITE_LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    Ok((file, path))
}
