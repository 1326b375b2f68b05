//! IP → ASN, prefix and country from an iptoasn-format TSV (`range_start  range_end
//! AS_number  country_code  AS_description`), loaded into a sorted table and reloaded when
//! the file changes (a malformed replacement keeps the table in use).
//!
//! Bad lines are counted and skipped, never fatal: the file comes from outside. Must not
//! reach the network.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::NoticeError;
use crate::reload::{Reload, Reloading};

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

/// The table from a file, reloaded when the file changes (see [`crate::reload`]): a
/// replacement with no usable line, or with more unreadable lines than usable ones, is
/// refused and the table loaded before stays in use.
#[derive(Debug)]
pub struct AsnDb {
    path: PathBuf,
    table: Reloading<AsnTable>,
}

fn load_table(paths: &[PathBuf]) -> Result<AsnTable, String> {
    let Some(path) = paths.first() else {
        return Err("no file".to_owned());
    };
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let table = AsnTable::parse(&String::from_utf8_lossy(&bytes));
    if table.is_empty() {
        return Err(format!(
            "no usable line ({} unreadable): not an iptoasn TSV file",
            table.skipped()
        ));
    }
    if table.skipped() > table.len() {
        return Err(format!(
            "{} unreadable lines and only {} usable: not an iptoasn TSV file, or cut short",
            table.skipped(),
            table.len()
        ));
    }
    Ok(table)
}

impl AsnDb {
    /// Loads `path` now (a file that cannot be used is an error at start-up).
    pub fn open(path: &Path) -> Result<AsnDb, NoticeError> {
        let table = Reloading::open("ip-to-asn table", vec![path.to_path_buf()], load_table)
            .map_err(|message| NoticeError::AsnTable {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(AsnDb {
            path: path.to_path_buf(),
            table,
        })
    }

    /// Re-reads the file if it changed; a bad replacement keeps the table in use.
    pub fn reload(&self) -> Reload {
        self.table.reload()
    }

    /// The table in use.
    pub fn table(&self) -> Arc<AsnTable> {
        self.table.current()
    }

    /// Why the file's newest version was refused, while the older table stays in use.
    pub fn last_error(&self) -> Option<NoticeError> {
        self.table
            .last_error()
            .map(|message| NoticeError::AsnTable {
                path: self.path.clone(),
                message,
            })
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
    fn reload_picks_up_a_changed_file_and_refuses_a_corrupt_one() {
        let dir = std::env::temp_dir().join(format!("aranea-asn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ip2asn.tsv");
        let replace = |text: &str| {
            std::fs::write(dir.join("next.tsv"), text).unwrap();
            std::fs::rename(dir.join("next.tsv"), &path).unwrap();
        };
        std::fs::write(&path, "1.0.0.0\t1.0.0.255\t1\tAU\tone\n").unwrap();
        let db = AsnDb::open(&path).unwrap();
        let asn = |db: &AsnDb| db.table().lookup("1.0.0.1".parse().unwrap()).unwrap().asn;
        assert_eq!(asn(&db), 1);
        replace("1.0.0.0\t1.0.0.255\t2\tAU\ttwo\n");
        assert_eq!(db.reload(), Reload::Reloaded);
        assert_eq!(asn(&db), 2);
        assert_eq!(db.reload(), Reload::Unchanged);
        for corrupt in [
            "",
            "<html>not found</html>\n",
            "garbage\nmore\n1.0.0.0\t1.0.0.255\t3\tAU\tx\n",
        ] {
            replace(corrupt);
            assert!(matches!(db.reload(), Reload::Refused(_)), "{corrupt:?}");
            assert_eq!(asn(&db), 2, "{corrupt:?}: the old table stays");
            assert!(db.last_error().is_some());
        }
        replace("1.0.0.0\t1.0.0.255\t4\tAU\tfour\n");
        assert_eq!(db.reload(), Reload::Reloaded);
        assert_eq!(asn(&db), 4);
        assert!(db.last_error().is_none());
        assert!(AsnDb::open(&dir.join("missing.tsv")).is_err());
        std::fs::write(dir.join("empty.tsv"), "").unwrap();
        assert!(AsnDb::open(&dir.join("empty.tsv")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
