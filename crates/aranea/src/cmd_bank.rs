//! `aranea bank`: create, inspect, fill and query hash banks (in `DATA/banks/`, or on
//! PostgreSQL in the database's bank journal).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use aranea_hash::PdqHash;
use aranea_index::export::{ExportOptions, write_list};
use aranea_index::import::{ImportInto, ImportListError, ImportSummary, ListFormat};
use aranea_index::store::ALL_BANKS;
use aranea_index::{
    BankFilter, BankKind, BankSpec, BankStore, Hit, MatchResult, Origin, Provenance, Signal,
    SignalType,
};
use aranea_server::BankHome;
use serde_json::{Value, json};

use crate::cli::{GlobalOptions, OutputFormat};

/// Line errors and duplicates printed before the rest are only counted.
const SHOWN_PROBLEMS: usize = 50;

#[derive(Debug, clap::Args)]
pub struct BankArgs {
    #[command(subcommand)]
    command: BankCommand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FileFormat {
    HmaCsv,
    Hex,
    Jsonl,
}

impl From<FileFormat> for ListFormat {
    fn from(format: FileFormat) -> Self {
        match format {
            FileFormat::HmaCsv => ListFormat::HmaCsv,
            FileFormat::Hex => ListFormat::Hex,
            FileFormat::Jsonl => ListFormat::Jsonl,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum BankCommand {
    /// Create a bank.
    Create {
        name: String,
        /// Where the list comes from, e.g. hotline:ca, ncmec, iwf, local (one line, at most 500
        /// bytes).
        #[arg(long, default_value = "local")]
        source: String,
        /// Classification of entries that carry none (a label the operator defines).
        #[arg(long)]
        classification: String,
        /// Free text for people reading the bank list (at most 64 KiB; line breaks and tabs, no
        /// other control characters).
        #[arg(long, default_value = "")]
        description: String,
        /// An allow-list bank: its hits suppress ordinary hits on the same media.
        #[arg(long)]
        allow_list: bool,
        /// PDQ distance threshold for this bank.
        #[arg(long, default_value_t = aranea_index::bank::DEFAULT_PDQ_THRESHOLD)]
        threshold: u32,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List banks.
    List {
        /// text: one line per bank; json: one array; jsonl: one object per line.
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Show one bank's settings and counts.
    Show {
        name: String,
        /// text: one `key: value` line per field; json and jsonl: one object on one line.
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Entry counts per bank and signal type, and the index state.
    Stats {
        name: Option<String>,
        /// text: `key: value` lines (and one line per bank); json and jsonl: one object on
        /// one line.
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Change a bank's settings (at least one); the others stay as they are. Matching uses
    /// the new settings at once, and a running server within its bank poll interval.
    #[command(group(clap::ArgGroup::new("setting").required(true).multiple(true)))]
    Set {
        name: String,
        /// PDQ distance threshold for this bank.
        #[arg(long, group = "setting")]
        threshold: Option<u32>,
        /// Classification of entries that carry none (a label the operator defines).
        #[arg(long, group = "setting")]
        classification: Option<String>,
        /// Free text for people reading the bank list (at most 64 KiB; line breaks and tabs, no
        /// other control characters).
        #[arg(long, group = "setting")]
        description: Option<String>,
        /// Where the list comes from, e.g. hotline:ca, ncmec, iwf, local (one line, at most 500
        /// bytes).
        #[arg(long, group = "setting")]
        source: Option<String>,
        /// An allow-list bank: its hits suppress ordinary hits on the same media.
        #[arg(long, group = "setting", value_name = "true|false")]
        allow_list: Option<bool>,
        /// text: one `key: value` line per field; json and jsonl: one object on one line.
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Enable a bank (its entries match again).
    Enable { name: String },
    /// Disable a bank, or with --entry one entry of it (kept for the record, never matched).
    Disable {
        name: String,
        /// Disable only this entry (its id, as `match` and `export` print it).
        #[arg(long)]
        entry: Option<u64>,
        /// Who did it, recorded in the provenance (default: $USER).
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
    /// Import a hash list into a bank.
    Import {
        name: String,
        /// The list: a file, or `-` (or a pipe such as `/dev/stdin`) for standard input.
        file: PathBuf,
        /// The list's format (see docs/banks.md).
        #[arg(long, value_enum)]
        format: FileFormat,
        /// Type of the values (needed for hex lists).
        #[arg(long)]
        signal_type: Option<SignalType>,
        /// Classification for rows that carry none.
        #[arg(long)]
        classification: Option<String>,
        /// Import the valid rows of a file that has invalid ones.
        #[arg(long)]
        skip_invalid: bool,
        /// Who did it, recorded in the provenance (default: $USER).
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
    /// Export a bank's enabled entries.
    Export {
        name: String,
        /// The list's format; a hex list needs --signal-type.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: FileFormat,
        /// Only entries of this signal type.
        #[arg(long)]
        signal_type: Option<SignalType>,
        /// Disabled entries too.
        #[arg(long)]
        include_disabled: bool,
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Match media files or hashes against a bank (or `all`); one result per query.
    Match {
        bank: String,
        files: Vec<PathBuf>,
        /// A PDQ hash (64 hex digits) to match within the bank's threshold; repeatable.
        #[arg(long)]
        pdq: Vec<String>,
        /// An MD5 (32 hex digits) to match exactly; repeatable.
        #[arg(long)]
        md5: Vec<String>,
        /// A SHA-1 (40 hex digits) to match exactly; repeatable.
        #[arg(long)]
        sha1: Vec<String>,
        /// A SHA-256 (64 hex digits) to match exactly; repeatable.
        #[arg(long)]
        sha256: Vec<String>,
        /// A file of PDQ hex lines, matched as one batch.
        #[arg(long)]
        queries: Option<PathBuf>,
        /// Also match the 8 rotations and flips of each file's PDQ.
        #[arg(long)]
        dihedral: bool,
        /// For videos: seconds between hashed frames (0 = every frame).
        #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
        seconds_per_hash: f64,
        /// jsonl: one JSON object per query, printed as it is matched; json: one array of
        /// them; text: one tab-separated line per query (what was asked, the hit count, the
        /// hits as BANK#ENTRY).
        #[arg(long, value_enum, default_value_t = OutputFormat::Jsonl)]
        format: OutputFormat,
    },
    /// Add videos to a bank as vPDQ entries (plus `video_md5`), from video files or vPDQ text
    /// files in Meta's reference format (`frame,quality,hash,timestamp` lines).
    AddVideo {
        name: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Classification of the new entries (default: the bank's).
        #[arg(long)]
        classification: Option<String>,
        /// Seconds between hashed frames of a video file (0 = every frame).
        #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
        seconds_per_hash: f64,
        /// Who did it, recorded in the provenance (default: $USER).
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
    /// Write each enabled vPDQ entry of a bank as a reference-format text file `ENTRY.txt`.
    ExportVpdq { name: String, dir: PathBuf },
}

impl BankCommand {
    /// Whether the command changes the bank directory (and so must hold its write lock).
    fn writes(&self) -> bool {
        match self {
            Self::Create { .. }
            | Self::Set { .. }
            | Self::Enable { .. }
            | Self::Disable { .. }
            | Self::Import { .. }
            | Self::AddVideo { .. } => true,
            Self::List { .. }
            | Self::Show { .. }
            | Self::Stats { .. }
            | Self::Export { .. }
            | Self::Match { .. }
            | Self::ExportVpdq { .. } => false,
        }
    }
}

pub fn run(global: &GlobalOptions, args: BankArgs) -> anyhow::Result<ExitCode> {
    let home = global.bank_home()?;
    let at = home.path().display().to_string();
    // Held until the command ends: opening under the lock is what catches this process up
    // with every other writer's records before it appends its own.
    let _write_lock = if args.command.writes() {
        let waiting_at = at.clone();
        let lock = home
            .lock_writers(move || {
                eprintln!("aranea: waiting for another process writing the banks in {waiting_at}")
            })
            .with_context(|| format!("locking banks in {at} for writing"))?;
        Some(lock)
    } else {
        None
    };
    let mut store = home
        .open_store()
        .with_context(|| format!("opening banks in {at}"))?;
    for warning in store.warnings() {
        eprintln!("aranea: warning: {warning}");
    }
    match args.command {
        BankCommand::Create {
            name,
            source,
            classification,
            description,
            allow_list,
            threshold,
            disabled,
        } => {
            let mut spec = BankSpec::new(&name, &source, &classification);
            spec.description = description;
            spec.kind = if allow_list {
                BankKind::AllowList
            } else {
                BankKind::Ordinary
            };
            spec.pdq_threshold = threshold;
            spec.enabled = !disabled;
            store.create_bank(spec)?;
            println!("{}", bank_json(&store, store.bank_id(&name)?));
        }
        BankCommand::List { format } => {
            let banks: Vec<Value> = store
                .state()
                .banks()
                .iter()
                .map(|b| bank_json(&store, b.id))
                .collect();
            match format {
                OutputFormat::Text => banks.iter().for_each(|b| println!("{}", bank_line(b))),
                OutputFormat::Json | OutputFormat::Jsonl => format.print_records(&banks)?,
            }
        }
        BankCommand::Show { name, format }
        | BankCommand::Stats {
            name: Some(name),
            format,
        } => {
            let value = bank_json(&store, store.bank_id(&name)?);
            print_one(&value, format, key_value_lines);
        }
        BankCommand::Stats { name: None, format } => {
            let generation = store.live().load();
            let (base, delta) = generation.segment_sizes();
            let banks: Vec<Value> = store
                .state()
                .banks()
                .iter()
                .map(|b| bank_json(&store, b.id))
                .collect();
            let value = json!({
                "banks": banks,
                "journal_seq": store.state().seq(),
                "snapshot_seq": store.snapshot_seq(),
                "index": {"base_entries": base, "delta_entries": delta},
            });
            print_one(&value, format, |v| {
                let mut settings = v.clone();
                if let Some(fields) = settings.as_object_mut() {
                    fields.remove("banks");
                }
                let mut text = key_value_lines(&settings);
                text.push_str("\nbanks:");
                for bank in v["banks"].as_array().map_or(&[][..], Vec::as_slice) {
                    text.push('\n');
                    text.push_str(&bank_line(bank));
                }
                text
            });
        }
        BankCommand::Set {
            name,
            threshold,
            classification,
            description,
            source,
            allow_list,
            format,
        } => {
            // The index checks the result as a whole and records nothing if any of it is
            // refused, so a bad value never leaves a bank half changed.
            store.update_bank(&name, |spec| {
                if let Some(threshold) = threshold {
                    spec.pdq_threshold = threshold;
                }
                if let Some(classification) = classification {
                    spec.classification = classification;
                }
                if let Some(description) = description {
                    spec.description = description;
                }
                if let Some(source) = source {
                    spec.source = source;
                }
                if let Some(allow_list) = allow_list {
                    spec.kind = if allow_list {
                        BankKind::AllowList
                    } else {
                        BankKind::Ordinary
                    };
                }
            })?;
            let value = bank_json(&store, store.bank_id(&name)?);
            print_one(&value, format, key_value_lines);
        }
        BankCommand::Enable { name } => {
            store.update_bank(&name, |spec| spec.enabled = true)?;
            println!("{}", bank_json(&store, store.bank_id(&name)?));
        }
        BankCommand::Disable {
            name, entry: None, ..
        } => {
            store.update_bank(&name, |spec| spec.enabled = false)?;
            println!("{}", bank_json(&store, store.bank_id(&name)?));
        }
        BankCommand::Disable {
            name,
            entry: Some(entry),
            by,
        } => {
            let bank = store.bank_id(&name)?;
            if store.state().entry(entry).is_none_or(|e| e.bank != bank) {
                bail!("bank {name} has no entry {entry}");
            }
            // The provenance and the change count together or not at all.
            store.begin_transaction()?;
            let provenance = store.add_provenance(Provenance {
                added_by: by,
                added_at: now(),
                origin: Origin::Manual,
            })?;
            store.disable_entry(entry, provenance)?;
            store.commit_transaction()?;
            println!(
                "{}",
                json!({"bank": name, "entry": entry, "disabled": true})
            );
        }
        BankCommand::Import {
            name,
            file,
            format,
            signal_type,
            classification,
            skip_invalid,
            by,
        } => {
            let options = ImportOptions {
                format: format.into(),
                signal_type,
                classification,
                skip_invalid,
                by,
            };
            return import(&home, &mut store, &name, &file, &global.data, &options);
        }
        BankCommand::Export {
            name,
            format,
            signal_type,
            include_disabled,
            output,
        } => {
            let bank = store.bank_id(&name)?;
            if format == FileFormat::Hex && signal_type.is_none() {
                bail!("a hex list holds one signal type: give --signal-type");
            }
            let options = ExportOptions {
                signal_type,
                include_disabled,
            };
            let mut out: Box<dyn Write> = match &output {
                Some(path) => Box::new(BufWriter::new(
                    File::create(path).with_context(|| path.display().to_string())?,
                )),
                None => Box::new(BufWriter::new(std::io::stdout().lock())),
            };
            let written = write_list(store.state(), bank, format.into(), &options, &mut out)?;
            if output.is_some() {
                eprintln!("aranea: exported {written} entries");
            }
        }
        BankCommand::Match {
            bank,
            files,
            pdq,
            md5,
            sha1,
            sha256,
            queries,
            dihedral,
            seconds_per_hash,
            format,
        } => {
            let request = MatchRequest {
                files,
                pdq,
                md5,
                sha1,
                sha256,
                queries,
                dihedral,
                seconds_per_hash,
            };
            return run_match(&store, &bank, &request, format);
        }
        BankCommand::AddVideo {
            name,
            files,
            classification,
            seconds_per_hash,
            by,
        } => {
            return crate::cmd_video::add_videos(
                &mut store,
                &name,
                &files,
                classification.as_deref(),
                &by,
                seconds_per_hash,
            );
        }
        BankCommand::ExportVpdq { name, dir } => {
            return crate::cmd_video::export_vpdq(&store, &name, &dir);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn now() -> u64 {
    aranea_index::bank::unix_now()
}

/// A single result: one object on one line for both JSON formats, as [`OutputFormat`] says.
fn print_one(value: &Value, format: OutputFormat, text: impl Fn(&Value) -> String) {
    match format {
        OutputFormat::Json | OutputFormat::Jsonl => println!("{value}"),
        OutputFormat::Text => println!("{}", text(value)),
    }
}

/// One bank on one line, as `bank list` and `bank stats` print it.
fn bank_line(bank: &Value) -> String {
    format!(
        "{:<24} {:<10} {:<9} {:<24} threshold {:>3}  {} entries",
        bank["name"].as_str().unwrap_or(""),
        bank["kind"].as_str().unwrap_or(""),
        if bank["enabled"] == true {
            "enabled"
        } else {
            "disabled"
        },
        bank["classification"].as_str().unwrap_or(""),
        bank["pdq_threshold"],
        bank["entries"]["enabled"],
    )
}

/// An object as one `key: value` line per field, nested objects' fields as `outer.inner`. The
/// further lines of a multi-line value (a bank's description) are indented by two spaces, so
/// every line that starts a field starts with its key and a description cannot forge one.
fn key_value_lines(value: &Value) -> String {
    fn walk(prefix: &str, value: &Value, lines: &mut Vec<String>) {
        match value {
            Value::Object(fields) if !fields.is_empty() => {
                for (key, field) in fields {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, field, lines);
                }
            }
            Value::String(text) => {
                lines.push(format!("{prefix}: {}", text.replace('\n', "\n  ")));
            }
            Value::Object(_) => lines.push(format!("{prefix}: -")),
            other => lines.push(format!("{prefix}: {other}")),
        }
    }
    let mut lines = Vec::new();
    walk("", value, &mut lines);
    lines.join("\n")
}

fn bank_json(store: &BankStore, id: u32) -> Value {
    let state = store.state();
    let Some(bank) = state.bank(id) else {
        return Value::Null;
    };
    let mut enabled = 0u64;
    let mut disabled = 0u64;
    let mut by_type = serde_json::Map::new();
    for entry in state.entries().iter().filter(|e| e.bank == id) {
        if entry.disabled {
            disabled += 1;
        } else {
            enabled += 1;
            let count = by_type
                .entry(entry.signal.signal_type().name())
                .or_insert(json!(0));
            *count = json!(count.as_u64().unwrap_or(0) + 1);
        }
    }
    let mut value = serde_json::to_value(bank).unwrap_or(Value::Null);
    value["entries"] = json!({"enabled": enabled, "disabled": disabled, "by_signal_type": by_type});
    value
}

struct ImportOptions {
    format: ListFormat,
    signal_type: Option<SignalType>,
    classification: Option<String>,
    skip_invalid: bool,
    by: String,
}

/// `bank import`: the index's one import ([`BankStore::import_list`]: every row checked first,
/// then added in one transaction), its problems printed with line numbers and its summary as
/// JSON; exit status 1 when invalid rows made it import nothing.
fn import(
    home: &BankHome,
    store: &mut BankStore,
    name: &str,
    file: &Path,
    data_dir: &Path,
    options: &ImportOptions,
) -> anyhow::Result<ExitCode> {
    let bank = store.bank_id(name)?;
    let mut list_options = aranea_index::import::ImportOptions::new(options.format);
    list_options.read.signal_type = options.signal_type;
    list_options.classification = options.classification.clone();
    list_options.skip_invalid = options.skip_invalid;
    list_options.keep_problems = SHOWN_PROBLEMS;
    let list = ReadTwice::of(file, data_dir)?;
    let provenance = Provenance {
        added_by: options.by.clone(),
        added_at: now(),
        origin: Origin::Import {
            file: file.display().to_string(),
        },
    };
    let imported = store.import_list(
        ImportInto::Bank(bank),
        &mut || list.open(),
        &list_options,
        provenance,
    );
    let summary = match imported {
        Ok(summary) => summary,
        Err(ImportListError::Refused(summary)) => {
            print_problems(file, &summary);
            eprintln!(
                "aranea: {} invalid lines in {}: nothing imported (use --skip-invalid to import the {} valid ones)",
                summary.invalid,
                file.display(),
                summary.rows
            );
            println!(
                "{}",
                json!({"bank": name, "file": file, "rows": summary.rows, "invalid": summary.invalid, "added": 0, "duplicates": 0})
            );
            return Ok(ExitCode::from(1));
        }
        Err(error) => return Err(error).with_context(|| file.display().to_string()),
    };
    print_problems(file, &summary);
    home.write_snapshot(store)?;
    println!(
        "{}",
        json!({"bank": name, "file": file, "rows": summary.rows, "invalid": summary.invalid, "added": summary.added, "duplicates": summary.duplicates})
    );
    Ok(ExitCode::SUCCESS)
}

/// A new bank filled from an HMA CSV list in one transaction (`aranea demo`'s known bank): a
/// list with any invalid row, or that cannot be read, creates nothing and is the inner error,
/// naming its first bad lines. Only a failure while writing is a `StoreError`, for a bank
/// writer to reopen the store on (which discards the open transaction).
pub(crate) fn create_bank_from_list(
    store: &mut BankStore,
    spec: BankSpec,
    list: &Path,
    by: &str,
) -> Result<anyhow::Result<ImportSummary>, aranea_index::StoreError> {
    let provenance = Provenance {
        added_by: by.to_owned(),
        added_at: now(),
        origin: Origin::Import {
            file: list.display().to_string(),
        },
    };
    let options = aranea_index::import::ImportOptions::new(ListFormat::HmaCsv);
    let imported = store.import_list(
        ImportInto::NewBank(spec),
        &mut || File::open(list),
        &options,
        provenance,
    );
    Ok(match imported {
        Ok(summary) => Ok(summary),
        Err(ImportListError::Store(error)) => return Err(error),
        Err(ImportListError::Refused(summary)) => {
            let lines: Vec<String> = summary.errors.iter().map(ToString::to_string).collect();
            Err(anyhow::anyhow!(
                "{}: {} invalid lines, nothing imported: {}",
                list.display(),
                summary.invalid,
                lines.join("; ")
            ))
        }
        Err(error) => Err(anyhow::Error::new(error).context(list.display().to_string())),
    })
}

/// The first line errors and duplicates of an import, then how many more there were.
fn print_problems(file: &Path, summary: &ImportSummary) {
    let file = file.display();
    for error in &summary.errors {
        eprintln!("{file}: {error}");
    }
    let unshown = summary.invalid - summary.errors.len() as u64;
    if unshown > 0 {
        eprintln!("{file}: {unshown} more invalid lines");
    }
    for duplicate in &summary.duplicate_rows {
        eprintln!(
            "{file}: line {}: duplicate of entry {}, not added again",
            duplicate.line, duplicate.existing
        );
    }
    let unshown = summary.duplicates - summary.duplicate_rows.len() as u64;
    if unshown > 0 {
        eprintln!("{file}: {unshown} more duplicates");
    }
}

/// The import list, opened once per pass. A regular file is read twice where it lies. A pipe
/// (`-`, `/dev/stdin`, `<(…)`) can be read only once, so it is copied first into a temporary
/// file in the data directory: on disk rather than in memory, so a list of any size still
/// imports in bounded memory, and beside the banks, where there is room for them.
enum ReadTwice {
    InPlace(PathBuf),
    Copied(TemporaryFile),
}

impl ReadTwice {
    fn of(file: &Path, data_dir: &Path) -> anyhow::Result<Self> {
        let from_stdin = file == Path::new("-");
        if !from_stdin {
            let metadata =
                std::fs::metadata(file).with_context(|| format!("opening {}", file.display()))?;
            if metadata.is_file() {
                return Ok(Self::InPlace(file.to_owned()));
            }
        }
        let copy = TemporaryFile::create_in(data_dir)?;
        let mut writer = BufWriter::new(File::create(&copy.0)?);
        let copied = if from_stdin {
            std::io::copy(&mut std::io::stdin().lock(), &mut writer)
        } else {
            File::open(file).and_then(|mut source| std::io::copy(&mut source, &mut writer))
        };
        copied.with_context(|| format!("reading {}", file.display()))?;
        writer
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|written| written.sync_all())
            .with_context(|| format!("copying {} to {}", file.display(), copy.0.display()))?;
        Ok(Self::Copied(copy))
    }

    fn open(&self) -> std::io::Result<File> {
        let path = match self {
            Self::InPlace(path) => path,
            Self::Copied(copy) => &copy.0,
        };
        File::open(path)
    }
}

/// A file removed when dropped, whether the import succeeds or fails.
struct TemporaryFile(PathBuf);

impl TemporaryFile {
    fn create_in(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = dir.join(format!(".import-{}-{nanos}.part", std::process::id()));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

struct MatchRequest {
    files: Vec<PathBuf>,
    pdq: Vec<String>,
    md5: Vec<String>,
    sha1: Vec<String>,
    sha256: Vec<String>,
    queries: Option<PathBuf>,
    dihedral: bool,
    seconds_per_hash: f64,
}

fn run_match(
    store: &BankStore,
    bank: &str,
    request: &MatchRequest,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let filter = if bank == ALL_BANKS {
        BankFilter::All
    } else {
        BankFilter::Only(vec![store.bank_id(bank)?])
    };
    let generation = store.live().load();
    let mut out = MatchOutput {
        out: BufWriter::new(std::io::stdout().lock()),
        format,
        gathered: Vec::new(),
    };
    let typed = [
        (SignalType::Pdq, &request.pdq),
        (SignalType::Md5, &request.md5),
        (SignalType::Sha1, &request.sha1),
        (SignalType::Sha256, &request.sha256),
    ];
    for (signal_type, values) in typed {
        for value in values {
            let signal = Signal::from_hex(signal_type, value.trim())
                .with_context(|| format!("--{signal_type} {value}"))?;
            let result = match (signal, request.dihedral) {
                (Signal::Pdq(hash), true) => {
                    generation.match_pdq_variants(&pdq_dihedral_of_hash(hash), &filter)
                }
                _ => generation.match_signal(&signal, &filter),
            };
            let query = json!({"signal_type": signal_type.name(), "value": signal.to_hex()});
            out.push(result_json(query, &result))?;
        }
    }
    for file in &request.files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let hashes = aranea_hash::hash_media(&bytes, &aranea_hash::Limits::default())
            .with_context(|| format!("hashing {}", file.display()))?;
        let options = crate::cmd_video::video_options(request.seconds_per_hash);
        if let Some((features, _, _)) = crate::cmd_video::features_of(&bytes, &options)
            .with_context(|| format!("hashing the frames of {}", file.display()))?
        {
            let result = crate::cmd_video::match_video(
                store,
                &generation,
                &filter,
                file,
                &hashes,
                &features,
            )?;
            out.push(result)?;
            continue;
        }
        let digests = [
            Signal::Md5(hashes.md5),
            Signal::Sha1(hashes.sha1),
            Signal::Sha256(hashes.sha256),
        ];
        let variants: Vec<PdqHash> = match &hashes.pdq {
            Some(pdq) if request.dihedral => pdq.dihedral().to_vec(),
            Some(pdq) => vec![pdq.hash],
            None => Vec::new(),
        };
        let result = generation.match_media(&digests, &variants, &filter);
        let query = json!({
            "file": file,
            "md5": hashes.md5_hex(),
            "sha1": hashes.sha1_hex(),
            "sha256": hashes.sha256_hex(),
            "pdq": hashes.pdq.as_ref().map(|p| p.hash.to_hex()),
            "pdq_quality": hashes.pdq.as_ref().map(|p| p.quality),
        });
        out.push(result_json(query, &result))?;
    }
    if let Some(path) = &request.queries {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut lines = Vec::new();
        let mut signals = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim().trim_start_matches('\u{feff}');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let hash = PdqHash::from_hex(line)
                .with_context(|| format!("{}: line {}", path.display(), number + 1))?;
            lines.push(number + 1);
            signals.push(Signal::Pdq(hash));
        }
        for ((line, signal), result) in lines
            .iter()
            .zip(&signals)
            .zip(generation.match_batch(&signals, &filter))
        {
            let query = json!({"signal_type": "pdq", "value": signal.to_hex(), "line": line});
            out.push(result_json(query, &result))?;
        }
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

/// Match results written as they come (`jsonl`, `text`), or gathered into one array (`json`).
struct MatchOutput<W: Write> {
    out: W,
    format: OutputFormat,
    gathered: Vec<Value>,
}

impl<W: Write> MatchOutput<W> {
    fn push(&mut self, result: Value) -> anyhow::Result<()> {
        match self.format {
            OutputFormat::Jsonl => writeln!(self.out, "{result}")?,
            OutputFormat::Text => writeln!(self.out, "{}", match_text(&result))?,
            OutputFormat::Json => self.gathered.push(result),
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        if self.format == OutputFormat::Json {
            writeln!(self.out, "{}", Value::Array(self.gathered))?;
        }
        self.out.flush()?;
        Ok(())
    }
}

/// One result as a tab-separated line: the query (its file, or type:value and batch line),
/// the hit count, then each hit as `BANK#ENTRY TYPE [distance D]` and any allow-list hit.
fn match_text(result: &Value) -> String {
    let query = &result["query"];
    let mut asked = match query["file"].as_str() {
        Some(file) => file.to_owned(),
        None => format!(
            "{}:{}",
            query["signal_type"].as_str().unwrap_or("?"),
            query["value"].as_str().unwrap_or("?")
        ),
    };
    if let Some(line) = query["line"].as_u64() {
        asked.push_str(&format!(" (line {line})"));
    }
    let hit_text = |hit: &Value| {
        let mut text = format!(
            "{}#{} {}",
            hit["bank"].as_str().unwrap_or("?"),
            hit["entry"],
            hit["signal_type"].as_str().unwrap_or("?")
        );
        if let Some(distance) = hit["distance"].as_u64() {
            text.push_str(&format!(" distance {distance}"));
        }
        text
    };
    let hits = result["hits"].as_array().map_or(&[][..], Vec::as_slice);
    let mut line = format!("{asked}\t{} hit(s)", hits.len());
    for hit in hits {
        line.push('\t');
        line.push_str(&hit_text(hit));
    }
    for allowed in result["allowed_by"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
    {
        line.push_str("\tallowed by ");
        line.push_str(&hit_text(allowed));
    }
    line
}

/// Without pixels, the dihedral variants of a bare hash are unknown; only files get them.
fn pdq_dihedral_of_hash(hash: PdqHash) -> Vec<PdqHash> {
    eprintln!("aranea: warning: --dihedral needs a file; matching the given PDQ hash as is");
    vec![hash]
}

pub(crate) fn hit_json(hit: &Hit) -> Value {
    json!({
        "bank": hit.bank_name,
        "entry": hit.entry,
        "signal_type": hit.value.signal_type().name(),
        "value": hit.value.to_hex(),
        "classification": hit.classification,
        "distance": hit.distance,
    })
}

fn result_json(query: Value, result: &MatchResult) -> Value {
    let mut value = json!({
        "query": query,
        "hits": result.hits.iter().map(hit_json).collect::<Vec<_>>(),
    });
    if !result.allowed_by.is_empty() {
        value["allowed_by"] = result.allowed_by.iter().map(hit_json).collect();
        value["suppressed"] = result.suppressed.iter().map(hit_json).collect();
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `aranea demo`'s known bank goes through `create_bank_from_list`: a bad list is an
    /// error naming its lines, and leaves no bank (the next run tries again), where the demo
    /// used to import the rows it could read and say nothing.
    #[test]
    fn a_bad_list_for_a_new_bank_is_reported_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = BankStore::open(&dir.path().join("banks")).unwrap();
        let list = dir.path().join("known.csv");
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        std::fs::write(
            &list,
            format!("signal_type,signal_value\nmd5,{md5}\nmd5,not-hex\n"),
        )
        .unwrap();
        let spec = BankSpec::new("known", "simweb", "csam");
        let refused = create_bank_from_list(&mut store, spec.clone(), &list, "test").unwrap();
        let message = format!("{:#}", refused.unwrap_err());
        assert!(message.contains("1 invalid lines"), "{message}");
        assert!(message.contains("line 3:"), "{message}");
        assert!(
            store.bank_id("known").is_err(),
            "a refused list left a bank"
        );
        assert_eq!(store.state().seq(), 0);

        std::fs::write(&list, "no header here\n").unwrap();
        let unreadable = create_bank_from_list(&mut store, spec.clone(), &list, "test").unwrap();
        let message = format!("{:#}", unreadable.unwrap_err());
        assert!(message.contains("signal_value"), "{message}");
        assert!(store.bank_id("known").is_err());

        std::fs::write(&list, format!("signal_type,signal_value\nmd5,{md5}\n")).unwrap();
        let summary = create_bank_from_list(&mut store, spec, &list, "test")
            .unwrap()
            .unwrap();
        assert_eq!(summary.added, 1);
        assert_eq!(store.bank_id("known").unwrap(), summary.bank);
    }

    #[test]
    fn a_multi_line_description_cannot_forge_a_key_value_line() {
        let bank = serde_json::json!({
            "description": "Shared weekly.\nenabled: false",
            "enabled": true,
        });
        assert_eq!(
            key_value_lines(&bank),
            "description: Shared weekly.\n  enabled: false\nenabled: true"
        );
    }
}
