//! The benign photo corpus that every simulated image is drawn from.
//!
//! Files are listed once (sorted, so indices are stable) and read lazily. Must not hold
//! anything but the shared benign corpus.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::SimWebError;

/// Where the shared corpus sits relative to this crate in the workspace checkout.
pub const DEFAULT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

#[derive(Debug)]
pub struct Corpus {
    dir: PathBuf,
    files: Vec<String>,
    cache: Mutex<Vec<Option<Arc<Vec<u8>>>>>,
}

impl Corpus {
    pub fn open(dir: &Path) -> Result<Corpus, SimWebError> {
        let entries = std::fs::read_dir(dir).map_err(|source| SimWebError::Io {
            what: format!("listing corpus {}", dir.display()),
            source,
        })?;
        let mut files: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| extension(name).is_some())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(SimWebError::EmptyCorpus {
                dir: dir.display().to_string(),
            });
        }
        let cache = Mutex::new(vec![None; files.len()]);
        Ok(Corpus {
            dir: dir.to_path_buf(),
            files,
            cache,
        })
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn file_name(&self, index: usize) -> &str {
        self.files.get(index).map_or("", String::as_str)
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.files.iter().position(|f| f == name)
    }

    /// The file's extension as served (`jpg`, `png`, `gif`, `webp`).
    pub fn ext(&self, index: usize) -> &'static str {
        extension(self.file_name(index)).unwrap_or("jpg")
    }

    pub fn bytes(&self, index: usize) -> Result<Arc<Vec<u8>>, SimWebError> {
        if let Some(Some(hit)) = self.cache.lock().ok().and_then(|c| c.get(index).cloned()) {
            return Ok(hit);
        }
        let name = self.file_name(index);
        let path = self.dir.join(name);
        let bytes = Arc::new(std::fs::read(&path).map_err(|source| SimWebError::Io {
            what: format!("reading {}", path.display()),
            source,
        })?);
        if let Ok(mut cache) = self.cache.lock()
            && let Some(slot) = cache.get_mut(index)
        {
            *slot = Some(bytes.clone());
        }
        Ok(bytes)
    }
}

fn extension(name: &str) -> Option<&'static str> {
    let lower = name.rsplit_once('.')?.1.to_ascii_lowercase();
    match lower.as_str() {
        "jpg" | "jpeg" => Some("jpg"),
        "png" => Some("png"),
        "gif" => Some("gif"),
        "webp" => Some("webp"),
        _ => None,
    }
}

pub fn content_type_for_ext(ext: &str) -> &'static str {
    match ext {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => "image/jpeg",
    }
}
