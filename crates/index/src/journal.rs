//! The entry journal: every change to the banks as an append-only sequence of records.
//!
//! Each record gets a sequence number one above the last. Loading a bank directory replays the
//! records past the snapshot's sequence number. The [`Journal`] trait is the seam where the SQL
//! store will plug in a table with the same sequence semantics; [`FileJournal`] keeps the
//! records in segment files under the bank directory.
//!
//! File format, per record: `u32 flags ‖ payload length | u32 CRC-32 of (seq ‖ payload) | u64
//! seq | payload` (little endian), the payload being the record as JSON. A record cut short by
//! a crash, or one whose checksum fails, ends the journal: it is reported, cut off before the
//! next append, and never applied.
//!
//! Transactions: a change of several records (an import, a batch of entries) is framed by a
//! [`Record::TransactionBegun`] and a [`Record::TransactionCommitted`] record, whose frames
//! carry a flag in the length word so that the framing scan sees them without decoding JSON.
//! A transaction without its commit record at the end of the journal (a crash mid-import) is
//! treated like a torn record: never replayed, cut off before the next append. So a change is
//! visible whole or not at all. This module must not interpret records beyond framing and
//! these two markers.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bank::{Bank, BankId, EntryId, Provenance};
use crate::error::StoreError;
use crate::signal::SignalType;

/// Largest payload a record may claim: anything bigger is corruption, not a record.
const MAX_PAYLOAD: u32 = 16 << 20;
const FRAME_HEADER: usize = 16;
/// Length-word flag of a [`Record::TransactionBegun`] frame.
const FLAG_BEGIN: u32 = 1 << 31;
/// Length-word flag of a [`Record::TransactionCommitted`] frame.
const FLAG_COMMIT: u32 = 1 << 30;
const LENGTH_MASK: u32 = (1 << 30) - 1;

/// One change to the banks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Record {
    BankCreated {
        bank: Bank,
    },
    /// The bank's settings after the change (all of them, so replay needs no history).
    BankChanged {
        bank: Bank,
    },
    ProvenanceAdded {
        index: u32,
        provenance: Provenance,
    },
    /// The record's sequence number becomes the entry's id.
    EntryAdded {
        bank: BankId,
        signal_type: SignalType,
        value: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        classification: Option<String>,
        provenance: u32,
        #[serde(default, skip_serializing_if = "is_zero")]
        line: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<String>,
    },
    EntryDisabled {
        entry: EntryId,
        provenance: u32,
    },
    /// Opens a transaction: the records up to the matching commit count only together.
    /// `transaction` is the record's own sequence number.
    TransactionBegun {
        transaction: u64,
    },
    TransactionCommitted {
        transaction: u64,
    },
}

impl Record {
    fn frame_flags(&self) -> u32 {
        match self {
            Self::TransactionBegun { .. } => FLAG_BEGIN,
            Self::TransactionCommitted { .. } => FLAG_COMMIT,
            _ => 0,
        }
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Where records are kept. Implementations assign sequence numbers on append, and must replay
/// the records between a [`Record::TransactionBegun`] and its [`Record::TransactionCommitted`]
/// only when the commit is there. A transaction spans several `append` calls (an import
/// appends in batches), so a SQL journal must also skip an uncommitted tail on replay.
pub trait Journal {
    /// Appends `records` durably; returns the sequence number given to the first one.
    fn append(&mut self, records: &[Record]) -> Result<u64, StoreError>;
    /// Calls `apply` for every record with a sequence number above `after`, in order.
    fn replay(
        &mut self,
        after: u64,
        apply: &mut dyn FnMut(u64, Record) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// The highest sequence number appended so far (0 for an empty journal).
    fn last_seq(&self) -> u64;
    /// A hint that everything up to `seq` is in a snapshot; a journal may start a new segment.
    fn covered_up_to(&mut self, seq: u64) -> Result<(), StoreError>;
}

/// The journal a [`crate::BankStore`] keeps: segment files in its directory (one machine), or
/// records kept elsewhere, such as a database table that several machines share.
pub enum BankJournal {
    Files(FileJournal),
    Shared(Box<dyn Journal + Send>),
}

impl std::fmt::Debug for BankJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Files(files) => f.debug_tuple("Files").field(files).finish(),
            Self::Shared(_) => f.write_str("Shared"),
        }
    }
}

impl Journal for BankJournal {
    fn append(&mut self, records: &[Record]) -> Result<u64, StoreError> {
        match self {
            Self::Files(files) => files.append(records),
            Self::Shared(shared) => shared.append(records),
        }
    }

    fn replay(
        &mut self,
        after: u64,
        apply: &mut dyn FnMut(u64, Record) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match self {
            Self::Files(files) => files.replay(after, apply),
            Self::Shared(shared) => shared.replay(after, apply),
        }
    }

    fn last_seq(&self) -> u64 {
        match self {
            Self::Files(files) => files.last_seq(),
            Self::Shared(shared) => shared.last_seq(),
        }
    }

    fn covered_up_to(&mut self, seq: u64) -> Result<(), StoreError> {
        match self {
            Self::Files(files) => files.covered_up_to(seq),
            Self::Shared(shared) => shared.covered_up_to(seq),
        }
    }
}

/// A journal in segment files `journal-<first seq>.log` in one directory.
#[derive(Debug)]
pub struct FileJournal {
    dir: PathBuf,
    segments: Vec<(u64, PathBuf)>,
    last_seq: u64,
    /// Valid length of the last segment; anything after it is a torn record to cut off.
    valid_len: u64,
    torn_bytes: u64,
    writer: Option<File>,
}

impl FileJournal {
    /// Opens (creating the directory if needed) and scans the last segment's framing.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let mut segments = Vec::new();
        for item in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
            let path = item.map_err(|e| StoreError::io(dir, e))?.path();
            let first = path.file_name().and_then(|n| n.to_str()).and_then(|n| {
                n.strip_prefix("journal-")?
                    .strip_suffix(".log")?
                    .parse::<u64>()
                    .ok()
            });
            if let Some(first) = first {
                segments.push((first, path));
            }
        }
        segments.sort();
        let mut journal = Self {
            dir: dir.to_path_buf(),
            segments,
            last_seq: 0,
            valid_len: 0,
            torn_bytes: 0,
            writer: None,
        };
        if let Some((first, path)) = journal.segments.last().cloned() {
            let scan = scan_segment(&path, &mut |_, _| Ok(()), false, u64::MAX)?;
            journal.last_seq = scan.last_seq.unwrap_or(first.saturating_sub(1));
            journal.valid_len = scan.valid_len;
            // A writer appending while this scan ran can make the valid part longer than the
            // length read before it: nothing is torn then.
            journal.torn_bytes = scan.file_len.saturating_sub(scan.valid_len);
        }
        Ok(journal)
    }

    /// Bytes at the end of the journal that did not form a whole, valid record (a crash
    /// mid-append). They are cut off before the next append.
    pub fn torn_bytes(&self) -> u64 {
        self.torn_bytes
    }

    fn writer(&mut self) -> Result<&mut File, StoreError> {
        if self.writer.is_none() {
            if self.segments.is_empty() {
                self.start_segment(self.last_seq + 1)?;
            }
            let Some((_, path)) = self.segments.last() else {
                return Err(StoreError::Corrupt("journal has no segment".into()));
            };
            let mut file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| StoreError::io(path, e))?;
            // Cut off a torn record so that new records follow the last valid one.
            file.set_len(self.valid_len)
                .map_err(|e| StoreError::io(path, e))?;
            file.seek(SeekFrom::End(0))
                .map_err(|e| StoreError::io(path, e))?;
            self.torn_bytes = 0;
            self.writer = Some(file);
        }
        self.writer
            .as_mut()
            .ok_or_else(|| StoreError::Corrupt("journal writer missing".into()))
    }

    fn start_segment(&mut self, first: u64) -> Result<(), StoreError> {
        if self.torn_bytes > 0 {
            // The old segment must not keep an uncommitted or torn tail that a later replay
            // would read as records.
            self.writer()?;
        }
        let path = self.dir.join(format!("journal-{first:020}.log"));
        File::create(&path).map_err(|e| StoreError::io(&path, e))?;
        sync_dir(&self.dir)?;
        self.segments.push((first, path));
        self.valid_len = 0;
        self.writer = None;
        Ok(())
    }
}

impl Journal for FileJournal {
    fn append(&mut self, records: &[Record]) -> Result<u64, StoreError> {
        let first = self.last_seq + 1;
        let mut buffer = Vec::with_capacity(records.len() * 128);
        for (offset, record) in records.iter().enumerate() {
            let payload =
                serde_json::to_vec(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let seq = first + offset as u64;
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&seq.to_le_bytes());
            hasher.update(&payload);
            let length = payload.len() as u32 | record.frame_flags();
            buffer.extend_from_slice(&length.to_le_bytes());
            buffer.extend_from_slice(&hasher.finalize().to_le_bytes());
            buffer.extend_from_slice(&seq.to_le_bytes());
            buffer.extend_from_slice(&payload);
        }
        let dir = self.dir.clone();
        let file = self.writer()?;
        file.write_all(&buffer)
            .map_err(|e| StoreError::io(&dir, e))?;
        file.sync_data().map_err(|e| StoreError::io(&dir, e))?;
        self.valid_len += buffer.len() as u64;
        self.last_seq += records.len() as u64;
        Ok(first)
    }

    fn replay(
        &mut self,
        after: u64,
        apply: &mut dyn FnMut(u64, Record) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let count = self.segments.len();
        for index in 0..count {
            // A segment is wholly covered when the next one starts at or below `after + 1`.
            if self
                .segments
                .get(index + 1)
                .is_some_and(|(next, _)| *next <= after + 1)
            {
                continue;
            }
            let path = self.segments[index].1.clone();
            let limit = if index + 1 == count {
                self.valid_len
            } else {
                u64::MAX
            };
            let mut decode = |seq: u64, payload: &[u8]| -> Result<(), StoreError> {
                if seq <= after {
                    return Ok(());
                }
                let record: Record = serde_json::from_slice(payload)
                    .map_err(|e| StoreError::Corrupt(format!("journal record {seq}: {e}")))?;
                apply(seq, record)
            };
            scan_segment(&path, &mut decode, true, limit)?;
        }
        Ok(())
    }

    fn last_seq(&self) -> u64 {
        self.last_seq
    }

    fn covered_up_to(&mut self, seq: u64) -> Result<(), StoreError> {
        if seq == self.last_seq && self.valid_len > 0 {
            self.start_segment(seq + 1)?;
        }
        Ok(())
    }
}

/// Called with each valid frame's sequence number and payload.
type FrameVisitor<'a> = dyn FnMut(u64, &[u8]) -> Result<(), StoreError> + 'a;

struct SegmentScan {
    /// Last record of the committed part.
    last_seq: Option<u64>,
    /// Length of the committed part: whole valid frames, no open transaction.
    valid_len: u64,
    file_len: u64,
}

/// Walks a segment's frames up to byte `limit`, stopping at the first torn or corrupt one.
/// The scan's result ends before a transaction that is still open at the end.
fn scan_segment(
    path: &Path,
    visit: &mut FrameVisitor<'_>,
    with_payload: bool,
    limit: u64,
) -> Result<SegmentScan, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| StoreError::io(path, e))?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut scan = SegmentScan {
        last_seq: None,
        valid_len: 0,
        file_len,
    };
    let mut header = [0u8; FRAME_HEADER];
    let mut payload = Vec::new();
    let mut end = 0u64;
    let mut last_seq = None;
    // (offset, seq before) of the transaction begun and not yet committed.
    let mut open: Option<(u64, Option<u64>)> = None;
    loop {
        if end >= limit {
            break;
        }
        if read_full(&mut reader, &mut header).map_err(|e| StoreError::io(path, e))? < FRAME_HEADER
        {
            break;
        }
        let word = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let length = word & LENGTH_MASK;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let mut seq_bytes = [0u8; 8];
        seq_bytes.copy_from_slice(&header[8..16]);
        let seq = u64::from_le_bytes(seq_bytes);
        if length > MAX_PAYLOAD || last_seq.is_some_and(|last: u64| seq != last + 1) {
            break;
        }
        payload.resize(length as usize, 0);
        if read_full(&mut reader, &mut payload).map_err(|e| StoreError::io(path, e))?
            < payload.len()
        {
            break;
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&seq_bytes);
        hasher.update(&payload);
        if hasher.finalize() != crc {
            break;
        }
        if word & FLAG_BEGIN != 0 && open.is_none() {
            open = Some((end, last_seq));
        }
        if with_payload {
            visit(seq, &payload)?;
        }
        last_seq = Some(seq);
        end += (FRAME_HEADER + payload.len()) as u64;
        if word & FLAG_COMMIT != 0 {
            open = None;
        }
    }
    let (valid_len, last_seq) = open.unwrap_or((end, last_seq));
    scan.valid_len = valid_len;
    scan.last_seq = last_seq;
    Ok(scan)
}

/// Like `read_exact` but returns how much was read instead of failing at end of file.
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Makes a rename or a new file in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}
