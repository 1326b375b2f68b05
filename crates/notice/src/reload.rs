//! Data files that are reloaded while the worker runs (the iptoasn table, the RFC 9224 RDAP
//! bootstrap files): at the start of every pass the files' modification time, length and
//! inode are compared with those loaded; when one changed, all are read again and the new
//! data replaces the old in one step. A replacement that cannot be used (unreadable,
//! malformed, empty) leaves the old data in use, is logged once at ERROR level with the
//! file and the reason, and stays visible through [`Reloading::last_error`] until a good
//! file replaces it.
//!
//! Operators should replace a file by writing a new one beside it and renaming it over the
//! old (an atomic rename): a file read halfway through a copy is most likely refused as
//! malformed, and the next change is picked up on the next pass. Must not reach the network.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// What identifies one version of a file: modification time, length and inode.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.modified().ok()?, meta.len(), inode))
}

/// How a [`Reloading::reload`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// No file changed since the last look.
    Unchanged,
    /// New data is in use.
    Reloaded,
    /// The changed files cannot be used; the previous data stays in use.
    Refused(String),
}

struct Loaded<T> {
    stamps: Vec<Stamp>,
    value: Arc<T>,
    /// Why the newest version of the files was refused, if it was.
    error: Option<String>,
}

/// A value read from files and replaced when they change.
pub struct Reloading<T> {
    what: &'static str,
    paths: Vec<PathBuf>,
    load: fn(&[PathBuf]) -> Result<T, String>,
    loaded: RwLock<Loaded<T>>,
}

impl<T> std::fmt::Debug for Reloading<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("what", &self.what)
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl<T> Reloading<T> {
    /// Loads `paths` with `load` now; at start-up a file that cannot be used is an error.
    pub fn open(
        what: &'static str,
        paths: Vec<PathBuf>,
        load: fn(&[PathBuf]) -> Result<T, String>,
    ) -> Result<Reloading<T>, String> {
        let stamps = paths.iter().map(|p| stamp(p)).collect();
        let value = Arc::new(load(&paths)?);
        Ok(Reloading {
            what,
            paths,
            load,
            loaded: RwLock::new(Loaded {
                stamps,
                value,
                error: None,
            }),
        })
    }

    /// The data in use.
    pub fn current(&self) -> Arc<T> {
        match self.loaded.read() {
            Ok(loaded) => loaded.value.clone(),
            Err(poisoned) => poisoned.into_inner().value.clone(),
        }
    }

    /// Why the newest version of the files was refused, while the older data stays in use.
    pub fn last_error(&self) -> Option<String> {
        self.loaded.read().ok().and_then(|l| l.error.clone())
    }

    /// Reads the files again if any changed since they were last looked at.
    pub fn reload(&self) -> Reload {
        let stamps: Vec<Stamp> = self.paths.iter().map(|p| stamp(p)).collect();
        if self.loaded.read().is_ok_and(|l| l.stamps == stamps) {
            return Reload::Unchanged;
        }
        let outcome = (self.load)(&self.paths);
        let Ok(mut loaded) = self.loaded.write() else {
            return Reload::Unchanged;
        };
        // This version of the files is settled either way: a refused one is not read (nor
        // logged) again until it changes.
        loaded.stamps = stamps;
        match outcome {
            Ok(value) => {
                loaded.value = Arc::new(value);
                loaded.error = None;
                tracing::info!(what = self.what, files = ?self.paths, "reloaded");
                Reload::Reloaded
            }
            Err(error) => {
                tracing::error!(
                    what = self.what,
                    files = ?self.paths,
                    %error,
                    "a changed data file cannot be used; keeping the data loaded before"
                );
                loaded.error = Some(error.clone());
                Reload::Refused(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(paths: &[PathBuf]) -> Result<Vec<u32>, String> {
        let mut all = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
            for word in text.split_whitespace() {
                all.push(word.parse().map_err(|_| format!("not a number: {word}"))?);
            }
        }
        Ok(all)
    }

    /// Writes `text` to a sibling and renames it over `path`, as an operator should.
    fn replace(path: &Path, text: &str) {
        let fresh = path.with_extension("new");
        std::fs::write(&fresh, text).unwrap();
        std::fs::rename(&fresh, path).unwrap();
    }

    #[test]
    fn a_changed_file_is_swapped_in_and_a_bad_one_keeps_the_old_data() {
        let dir = std::env::temp_dir().join(format!("aranea-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("numbers.txt");
        std::fs::write(&path, "1 2").unwrap();
        let data = Reloading::open("numbers", vec![path.clone()], numbers).unwrap();
        assert_eq!(*data.current(), [1, 2]);
        assert_eq!(data.reload(), Reload::Unchanged);

        replace(&path, "3 4 5");
        assert_eq!(data.reload(), Reload::Reloaded);
        assert_eq!(*data.current(), [3, 4, 5]);

        let held = data.current();
        replace(&path, "6 seven");
        assert!(matches!(data.reload(), Reload::Refused(e) if e.contains("seven")));
        assert_eq!(*data.current(), [3, 4, 5], "the old data stays in use");
        assert!(data.last_error().unwrap().contains("seven"));
        assert_eq!(
            data.reload(),
            Reload::Unchanged,
            "refused once, not every pass"
        );

        std::fs::remove_file(&path).unwrap();
        assert!(matches!(data.reload(), Reload::Refused(_)));
        assert_eq!(*data.current(), [3, 4, 5]);

        replace(&path, "8");
        assert_eq!(data.reload(), Reload::Reloaded);
        assert_eq!(*data.current(), [8]);
        assert_eq!(data.last_error(), None);
        assert_eq!(*held, [3, 4, 5], "readers keep the value they took");
        assert!(Reloading::open("numbers", vec![dir.join("none")], numbers).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
