//! IP → ASN, prefix and country from an iptoasn-format TSV (`range_start  range_end
//! AS_number  country_code  AS_description`), loaded into a sorted table and reloaded when
//! the file changes.
//!
//! Bad lines are counted and skipped, never fatal: the file comes from outside. Must not
//! reach the network.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use crate::NoticeError;

/// Lines accepted at most (the full public table has about 500,000).
const MAX_LINES: usize = 5_000_000;

/// One announced range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsnRange {
    pub start: IpAddr,
    pub end: IpAddr,
    pub asn: u32,
    pub country: Option<String>,
    pub description: String,
}

impl AsnRange {
    /// The range as CIDR prefix text when it is one (else `start-end`).
    pub fn prefix(&self) -> String {
        if let (IpAddr::V4(s), IpAddr::V4(e)) = (self.start, self.end) {
            let (s, e) = (u32::from(s), u32::from(e));
            let size = e.wrapping_sub(s).wrapping_add(1);
            if size.is_power_of_two() && s % size == 0 {
                return format!("{}/{}", self.start, 32 - size.trailing_zeros());
            }
        }
        format!("{}-{}", self.start, self.end)
    }
}

/// A loaded table.
#[derive(Debug, Default)]
pub struct AsnTable {
    ranges: Vec<AsnRange>,
    skipped: usize,
}

impl AsnTable {
    /// Parses TSV text; rows with ASN 0 ("not routed") are dropped.
    pub fn parse(text: &str) -> AsnTable {
        let mut table = AsnTable::default();
        for line in text.lines().take(MAX_LINES) {
            let line = line.trim_end_matches('\r');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Some(range) if range.asn != 0 => table.ranges.push(range),
                Some(_) => {}
                None => table.skipped += 1,
            }
        }
        table.ranges.sort_by_key(|r| r.start);
        table
    }

    /// Lines that could not be read.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The range holding `ip`, if any.
    pub fn lookup(&self, ip: IpAddr) -> Option<&AsnRange> {
        let after = self.ranges.partition_point(|r| r.start <= ip);
        let candidate = self.ranges.get(after.checked_sub(1)?)?;
        (candidate.end >= ip && same_family(candidate.start, ip)).then_some(candidate)
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

fn parse_line(line: &str) -> Option<AsnRange> {
    let mut fields = line.splitn(5, '\t');
    let start: IpAddr = fields.next()?.trim().parse().ok()?;
    let end: IpAddr = fields.next()?.trim().parse().ok()?;
    let asn: u32 = fields
        .next()?
        .trim()
        .trim_start_matches("AS")
        .parse()
        .ok()?;
    let country = fields.next()?.trim();
    let description = fields
        .next()
        .unwrap_or("")
        .trim()
        .chars()
        .take(200)
        .collect();
    if !same_family(start, end) || end < start {
        return None;
    }
    let country = (country.len() == 2
        && country.chars().all(|c| c.is_ascii_alphabetic())
        && country != "None")
        .then(|| country.to_ascii_uppercase());
    Some(AsnRange {
        start,
        end,
        asn,
        country,
        description,
    })
}

/// The table from a file, reloaded when its modification time changes.
#[derive(Debug)]
pub struct AsnDb {
    path: PathBuf,
    current: RwLock<(Option<SystemTime>, Arc<AsnTable>)>,
}

impl AsnDb {
    /// Loads `path` now (an unreadable file is an error at start-up).
    pub fn open(path: &Path) -> Result<AsnDb, NoticeError> {
        let db = AsnDb {
            path: path.to_path_buf(),
            current: RwLock::new((None, Arc::new(AsnTable::default()))),
        };
        db.reload()?;
        Ok(db)
    }

    /// Re-reads the file if it changed; returns whether it did.
    pub fn reload(&self) -> Result<bool, NoticeError> {
        let read_error = |e: std::io::Error| NoticeError::AsnTable {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .map_err(read_error)?;
        if self.current.read().ok().and_then(|c| c.0) == Some(modified) {
            return Ok(false);
        }
        let bytes = std::fs::read(&self.path).map_err(read_error)?;
        let table = AsnTable::parse(&String::from_utf8_lossy(&bytes));
        if let Ok(mut current) = self.current.write() {
            *current = (Some(modified), Arc::new(table));
        }
        Ok(true)
    }

    /// The table as loaded last.
    pub fn table(&self) -> Arc<AsnTable> {
        self.current.read().map(|c| c.1.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_the_enclosing_range_and_its_prefix() {
        let table = AsnTable::parse(
            "127.10.1.0\t127.10.1.255\t64501\tNL\tQuickhost\n\
             127.10.9.0\t127.10.9.255\t64510\tUS\tEdgeShield\n\
             10.0.0.0\t10.0.0.255\t0\tNone\tNot routed\n",
        );
        let hit = table.lookup("127.10.1.7".parse().unwrap()).unwrap();
        assert_eq!((hit.asn, hit.country.as_deref()), (64501, Some("NL")));
        assert_eq!(hit.prefix(), "127.10.1.0/24");
        assert!(table.lookup("127.10.2.1".parse().unwrap()).is_none());
        assert!(table.lookup("10.0.0.1".parse().unwrap()).is_none());
        assert!(table.lookup("::1".parse().unwrap()).is_none());
    }

    #[test]
    fn hostile_lines_are_skipped_not_fatal() {
        let long = "x".repeat(100_000);
        let text = format!(
            "garbage\n1.2.3.4\n1.2.3.4\tnope\t1\tNL\tx\n9.9.9.9\t1.1.1.1\t5\tUS\tbackwards\n\
             ::1\t1.1.1.1\t5\tUS\tmixed\n{long}\n1.1.1.0\t1.1.1.255\t13335\tUS\tok\n\u{0}\t\t\n"
        );
        let table = AsnTable::parse(&text);
        assert_eq!(table.len(), 1);
        assert_eq!(table.skipped(), 7);
        assert_eq!(table.lookup("1.1.1.1".parse().unwrap()).unwrap().asn, 13335);
    }

    #[test]
    fn reload_picks_up_a_changed_file() {
        let dir = std::env::temp_dir().join(format!("aranea-asn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ip2asn.tsv");
        std::fs::write(&path, "1.0.0.0\t1.0.0.255\t1\tAU\tone\n").unwrap();
        let db = AsnDb::open(&path).unwrap();
        assert_eq!(
            db.table().lookup("1.0.0.1".parse().unwrap()).unwrap().asn,
            1
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, "1.0.0.0\t1.0.0.255\t2\tAU\ttwo\n").unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        assert!(db.reload().unwrap());
        assert_eq!(
            db.table().lookup("1.0.0.1".parse().unwrap()).unwrap().asn,
            2
        );
        assert!(!db.reload().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
