//! The configuration file (`--config FILE`, env `ARANEA_CONFIG`): TOML with one table per
//! room (`[crawl]`, `[server]`, `[review]`, `[notice]`, …).
//!
//! Each subcommand reads only the tables it needs, with the room's own serde type, so adding
//! a room's settings never touches another room's code. A missing table means that room's
//! defaults; a malformed file or a wrong value is an error naming the file and the table,
//! never a silent fallback to defaults.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::de::DeserializeOwned;

/// The parsed configuration file, or an empty one when none was given.
#[derive(Debug, Default)]
pub struct ConfigFile {
    path: Option<PathBuf>,
    table: toml::Table,
}

impl ConfigFile {
    /// Reads `path` if given; no path is an empty configuration (every room's defaults).
    pub fn load(path: Option<&Path>) -> anyhow::Result<ConfigFile> {
        let Some(path) = path else {
            return Ok(ConfigFile::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading configuration file {}", path.display()))?;
        let table: toml::Table = text
            .parse()
            .with_context(|| format!("parsing configuration file {}", path.display()))?;
        Ok(ConfigFile {
            path: Some(path.to_path_buf()),
            table,
        })
    }

    /// The `[name]` table as `T`; `T::default()` when the table is absent.
    pub fn section<T: DeserializeOwned + Default>(&self, name: &str) -> anyhow::Result<T> {
        let Some(value) = self.table.get(name) else {
            return Ok(T::default());
        };
        value.clone().try_into().with_context(|| {
            let file = self
                .path
                .as_deref()
                .map_or_else(|| "configuration".to_owned(), |p| p.display().to_string());
            format!("invalid [{name}] table in {file}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        delay_ms: u64,
        allow: Vec<String>,
    }

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aranea.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_table_is_read_with_its_rooms_type() {
        let (_dir, path) = write("[crawl]\ndelay_ms = 250\nallow = [\"127.0.0.0/8\"]\n");
        let config = ConfigFile::load(Some(&path)).unwrap();
        let crawl: Sample = config.section("crawl").unwrap();
        assert_eq!(crawl.delay_ms, 250);
        assert_eq!(crawl.allow, ["127.0.0.0/8"]);
    }

    #[test]
    fn an_absent_table_or_file_gives_defaults() {
        let (_dir, path) = write("[server]\nlisten = \"127.0.0.1:8080\"\n");
        let config = ConfigFile::load(Some(&path)).unwrap();
        assert_eq!(
            config.section::<Sample>("crawl").unwrap(),
            Sample::default()
        );
        let none = ConfigFile::load(None).unwrap();
        assert_eq!(none.section::<Sample>("crawl").unwrap(), Sample::default());
    }

    #[test]
    fn bad_files_and_values_are_errors_naming_where() {
        let missing = ConfigFile::load(Some(Path::new("/nonexistent/aranea.toml"))).unwrap_err();
        assert!(format!("{missing:#}").contains("/nonexistent/aranea.toml"));

        let (_dir, path) = write("[crawl\ndelay_ms = 1");
        let malformed = ConfigFile::load(Some(&path)).unwrap_err();
        assert!(format!("{malformed:#}").contains("parsing configuration file"));

        let (_dir, path) = write("[crawl]\ndelay_ms = \"soon\"\n");
        let config = ConfigFile::load(Some(&path)).unwrap();
        let wrong_type = config.section::<Sample>("crawl").unwrap_err();
        assert!(format!("{wrong_type:#}").contains("invalid [crawl] table"));

        let (_dir, path) = write("[crawl]\ndelay_msec = 5\n");
        let config = ConfigFile::load(Some(&path)).unwrap();
        let unknown = config.section::<Sample>("crawl").unwrap_err();
        assert!(format!("{unknown:#}").contains("delay_msec"));
    }
}
