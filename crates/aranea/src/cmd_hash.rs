//! `aranea hash`: hash image files (type, size, MD5, SHA-1, SHA-256, PDQ) and videos or
//! animations (the same plus their vPDQ frames, JSON formats only) and print one record per
//! file, or the Hamming distance between two PDQ hashes.
//!
//! Files are hashed on all cores but printed in path order, so output is reproducible. A file
//! that cannot be read or hashed gets a record with `error` set; the others are still reported
//! and the exit status is 1. This module only walks, schedules and prints: hashing lives in
//! `aranea-hash`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use anyhow::Context;
use aranea_hash::{HashError, Limits, PdqHash, hash_media};
use serde::Serialize;

use crate::cli::GlobalOptions;

#[derive(Debug, clap::Args)]
pub struct HashArgs {
    /// Files or directories (searched recursively; symbolic links to directories are not
    /// followed inside the tree).
    #[arg(value_name = "PATH", required_unless_present = "distance")]
    pub paths: Vec<PathBuf>,
    /// Output format: one JSON object per line, a JSON array, CSV or TSV with a header row.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// Also print the 8 rotation/flip PDQ hashes (the plain one first).
    #[arg(long)]
    pub dihedral: bool,
    /// Leave out files that are not media at all (empty, or magic bytes of no known image or
    /// video type), e.g. the README in a folder of photos, instead of reporting them as errors.
    #[arg(long)]
    pub skip_unknown: bool,
    /// For videos and animations: seconds between hashed frames (0 = every frame).
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub seconds_per_hash: f64,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print the Hamming distance between two PDQ hashes (64 hex digits each) and exit.
    #[arg(long, num_args = 2, value_names = ["HEX", "HEX"], conflicts_with = "paths")]
    pub distance: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Jsonl,
    Json,
    Csv,
    Tsv,
}

/// One output record. Hash fields are `None` when `error` is set.
#[derive(Debug, Default, Serialize)]
struct Record {
    path: String,
    kind: Option<&'static str>,
    width: Option<u32>,
    height: Option<u32>,
    md5: Option<String>,
    sha1: Option<String>,
    sha256: Option<String>,
    pdq: Option<String>,
    pdq_quality: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dihedral: Option<Vec<String>>,
    /// vPDQ features of a video or animation (frame, timestamp, quality, hash).
    #[serde(skip_serializing_if = "Option::is_none")]
    vpdq: Option<Vec<crate::cmd_video::FeatureRecord>>,
    error: Option<String>,
}

pub fn run(_global: &GlobalOptions, args: HashArgs) -> anyhow::Result<ExitCode> {
    if let Some(pair) = &args.distance {
        return print_distance(pair);
    }
    let (files, walk_errors) = collect_files(&args.paths);
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let progress = progress_bar(files.len() as u64);
    let stdout = std::io::stdout();
    let mut printer = Printer::new(stdout.lock(), args.format, args.dihedral)?;
    let mut failed = false;
    for record in walk_errors {
        failed = true;
        printer.print(&record)?;
    }
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel::<(usize, Option<Record>)>();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..jobs.min(files.len().max(1)) {
            let sender = sender.clone();
            let (files, next, dihedral, skip_unknown) =
                (&files, &next, args.dihedral, args.skip_unknown);
            let video = crate::cmd_video::video_options(args.seconds_per_hash);
            scope.spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(index) else { break };
                    if sender
                        .send((index, hash_file(path, dihedral, skip_unknown, &video)))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(sender);
        // Results arrive in any order; hold them until every earlier path has been printed.
        let mut pending = BTreeMap::new();
        let mut next_to_print = 0;
        for (index, record) in receiver {
            pending.insert(index, record);
            while let Some(outcome) = pending.remove(&next_to_print) {
                if let Some(record) = outcome {
                    failed |= record.error.is_some();
                    printer.print(&record)?;
                }
                progress.inc(1);
                next_to_print += 1;
            }
        }
        Ok(())
    })?;
    printer.finish()?;
    progress.finish_and_clear();
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_distance(pair: &[String]) -> anyhow::Result<ExitCode> {
    let [a, b] = pair else {
        anyhow::bail!("--distance takes exactly two hashes")
    };
    let a = PdqHash::from_hex(a.trim()).with_context(|| format!("first hash {a:?}"))?;
    let b = PdqHash::from_hex(b.trim()).with_context(|| format!("second hash {b:?}"))?;
    println!("{}", a.hamming_distance(&b));
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files  {per_sec}  eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// Every regular file under `paths`, sorted and deduplicated, plus error records for paths
/// that could not be listed.
fn collect_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Record>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk(path, &mut files, &mut errors),
            Ok(_) => files.push(path.clone()),
            Err(error) => errors.push(error_record(path, &error.to_string())),
        }
    }
    files.sort();
    files.dedup();
    (files, errors)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<Record>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => return errors.push(error_record(dir, &error.to_string())),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                errors.push(error_record(dir, &error.to_string()));
                continue;
            }
        };
        let path = entry.path();
        match entry.file_type() {
            // A symlinked directory could loop back on the tree; linked files are hashed.
            Ok(kind) if kind.is_dir() => walk(&path, files, errors),
            Ok(kind) if kind.is_symlink() => {
                if std::fs::metadata(&path).is_ok_and(|meta| meta.is_file()) {
                    files.push(path);
                }
            }
            Ok(_) => files.push(path),
            Err(error) => errors.push(error_record(&path, &error.to_string())),
        }
    }
}

fn error_record(path: &Path, error: &str) -> Record {
    Record {
        path: path.display().to_string(),
        error: Some(error.to_string()),
        ..Record::default()
    }
}

/// The record for one file; `None` when it is not media and `skip_unknown` asks to leave it out.
fn hash_file(
    path: &Path,
    dihedral: bool,
    skip_unknown: bool,
    video: &aranea_hash::VideoOptions,
) -> Option<Record> {
    let limits = Limits::default();
    let bytes = match read_bounded(path, limits.max_bytes) {
        Ok(bytes) => bytes,
        Err(error) => return Some(error_record(path, &error)),
    };
    Some(match hash_media(&bytes, &limits) {
        Ok(hashes) => {
            let pdq = hashes.pdq.as_ref();
            let (vpdq, size, error) = match crate::cmd_video::features_of(&bytes, video) {
                Ok(Some((features, width, height))) => (
                    Some(crate::cmd_video::feature_records(&features)),
                    Some((width, height)),
                    None,
                ),
                Ok(None) => (None, None, None),
                Err(error) => (None, None, Some(format!("vPDQ: {error}"))),
            };
            let (width, height) = match size {
                Some(size) if hashes.kind.is_video() => size,
                _ => (hashes.width, hashes.height),
            };
            Record {
                path: path.display().to_string(),
                kind: Some(hashes.kind.name()),
                width: Some(width),
                height: Some(height),
                md5: Some(hashes.md5_hex()),
                sha1: Some(hashes.sha1_hex()),
                sha256: Some(hashes.sha256_hex()),
                pdq: pdq.map(|p| p.hash.to_hex()),
                pdq_quality: pdq.map(|p| p.quality),
                dihedral: pdq
                    .filter(|_| dihedral)
                    .map(|p| p.dihedral().iter().map(PdqHash::to_hex).collect()),
                vpdq,
                error,
            }
        }
        Err(HashError::UnknownFormat | HashError::Empty) if skip_unknown => return None,
        Err(error) => error_record(path, &error.to_string()),
    })
}

/// Read a file unless it is over the byte limit, checked before reading so a huge file is
/// refused without loading it.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size > limit {
        return Err(HashError::TooLarge { size, limit }.to_string());
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

/// Writes records in the chosen format.
struct Printer<W: Write> {
    out: W,
    format: Format,
    dihedral: bool,
    records: usize,
}

const COLUMNS: [&str; 10] = [
    "path",
    "kind",
    "width",
    "height",
    "md5",
    "sha1",
    "sha256",
    "pdq",
    "pdq_quality",
    "error",
];

impl<W: Write> Printer<W> {
    fn new(mut out: W, format: Format, dihedral: bool) -> anyhow::Result<Self> {
        match format {
            Format::Json => write!(out, "[")?,
            Format::Csv | Format::Tsv => {
                let mut header: Vec<&str> = COLUMNS[..9].to_vec();
                if dihedral {
                    header.push("dihedral");
                }
                header.push("error");
                let separator = if format == Format::Csv { "," } else { "\t" };
                writeln!(out, "{}", header.join(separator))?;
            }
            Format::Jsonl => {}
        }
        Ok(Self {
            out,
            format,
            dihedral,
            records: 0,
        })
    }

    fn print(&mut self, record: &Record) -> anyhow::Result<()> {
        match self.format {
            Format::Jsonl => writeln!(self.out, "{}", serde_json::to_string(record)?)?,
            Format::Json => {
                let separator = if self.records == 0 { "\n" } else { ",\n" };
                write!(self.out, "{separator}{}", serde_json::to_string(record)?)?;
            }
            Format::Csv => writeln!(
                self.out,
                "{}",
                self.fields(record)
                    .iter()
                    .map(|f| csv_field(f))
                    .collect::<Vec<_>>()
                    .join(",")
            )?,
            Format::Tsv => writeln!(
                self.out,
                "{}",
                self.fields(record)
                    .iter()
                    .map(|f| tsv_field(f))
                    .collect::<Vec<_>>()
                    .join("\t")
            )?,
        }
        self.records += 1;
        Ok(())
    }

    fn fields(&self, record: &Record) -> Vec<String> {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let number = |value: Option<u32>| value.map(|v| v.to_string()).unwrap_or_default();
        let mut fields = vec![
            record.path.clone(),
            record.kind.unwrap_or_default().to_string(),
            number(record.width),
            number(record.height),
            text(&record.md5),
            text(&record.sha1),
            text(&record.sha256),
            text(&record.pdq),
            number(record.pdq_quality.map(u32::from)),
        ];
        if self.dihedral {
            fields.push(
                record
                    .dihedral
                    .as_ref()
                    .map(|d| d.join(" "))
                    .unwrap_or_default(),
            );
        }
        fields.push(text(&record.error));
        fields
    }

    fn finish(mut self) -> anyhow::Result<()> {
        if self.format == Format::Json {
            writeln!(self.out, "{}]", if self.records == 0 { "" } else { "\n" })?;
        }
        self.out.flush()?;
        Ok(())
    }
}

/// RFC 4180: quote a field holding a comma, quote or line break; double inner quotes.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// TSV has no quoting: escape the characters that would break the row.
fn tsv_field(field: &str) -> String {
    field
        .replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}
