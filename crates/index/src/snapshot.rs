//! Snapshots: the bank state and its compiled PDQ index in one versioned, checksummed file.
//!
//! Layout (little endian): magic `ARNBANK\0`, format version (u32), kind (u32: 1 = banks,
//! 2 = bare PDQ index), the journal sequence number covered (u64), the sections, and a CRC-32
//! of everything before it. Sections: bank settings and provenance as JSON, the entries in
//! columnar row groups, the base segment (PDQ refs, digests sorted by value, labels; see
//! `columns`) and the PDQ index arrays as they are in memory, so loading is a few bulk reads
//! (spread over the cores, see `bulk`) with no rebuilding or sorting.
//!
//! Writing goes to a temporary file that is fsynced, renamed over the old snapshot, and the
//! directory fsynced: a crash leaves the old or the new snapshot, never a torn one. Loading
//! checks every length against the file size before allocating and every index invariant
//! before searching, so a damaged or hostile file is an error, not a crash.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::bank::{Bank, Entry, Provenance, check_bank_spec};
use crate::columns;
use crate::error::StoreError;
use crate::journal::sync_dir;
use crate::pdq_index::{AlignedArray, Code, MAX_CODES, PdqIndex, SubstringTable, id_bits};
use crate::segment::{BANK_LABEL, Segment};
use crate::signal::Signal;
use crate::state::BankState;
use crate::stored::{EnabledRow, EntryGroup, StoredEntries, StoredGroup};

mod bulk;

const MAGIC: &[u8; 8] = b"ARNBANK\0";
/// Bump on any layout change; older files are then rebuilt from the journal.
pub const FORMAT_VERSION: u32 = 6;
const KIND_BANKS: u32 = 1;
const KIND_INDEX: u32 = 2;

#[derive(Serialize, Deserialize)]
struct Catalog {
    banks: Vec<Bank>,
    provenances: Vec<Provenance>,
}

/// Writes the bank state and its base segment (built over the state's enabled entries, with
/// its PDQ index) to `path`, atomically. Returns where the file holds the entries, so that the
/// state can read them from it instead of memory.
pub(crate) fn write_banks(
    path: &Path,
    state: &BankState,
    segment: &Segment,
) -> Result<StoredEntries, StoreError> {
    let index = segment
        .pdq
        .as_ref()
        .ok_or_else(|| StoreError::Corrupt("segment without a PDQ index".into()))?;
    let mut layout = (Vec::new(), 0);
    write_atomically(path, |out| {
        write_header(out, KIND_BANKS, state.seq())?;
        let catalog = Catalog {
            banks: state.banks.clone(),
            provenances: state.provenances.clone(),
        };
        let json = serde_json::to_vec(&catalog).map_err(io::Error::other)?;
        out.write_all(&(json.len() as u64).to_le_bytes())?;
        out.write_all(&json)?;
        // The index first: the entry columns leave out the values it holds.
        columns::write_segment(out, segment)?;
        let codes_offset = out.written + 8;
        write_index(out, index)?;
        layout = (write_entries(out, state)?, codes_offset);
        Ok(())
    })?;
    let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let (groups, codes_offset) = layout;
    Ok(StoredEntries::new(
        file,
        groups,
        codes_offset,
        state.banks.len(),
    ))
}

/// The entry count, then each row group of [`columns::GROUP`] entries with its byte length.
fn write_entries(out: &mut CrcWriter, state: &BankState) -> io::Result<Vec<StoredGroup>> {
    out.write_all(&(state.entry_count() as u64).to_le_bytes())?;
    let mut groups = Vec::new();
    let mut pdq_before = 0u64;
    let mut group: Vec<Entry> = Vec::with_capacity(columns::GROUP);
    let mut flush = |out: &mut CrcWriter, group: &mut Vec<Entry>| -> io::Result<()> {
        let Some(first) = group.first() else {
            return Ok(());
        };
        let start = out.written;
        columns::write_entry_group(out, group)?;
        groups.push(StoredGroup {
            offset: start + 8,
            len: out.written - start - 8,
            first_id: first.id,
            rows: group.len() as u32,
            pdq_before,
        });
        pdq_before += group
            .iter()
            .filter(|e| !e.disabled && matches!(e.signal, Signal::Pdq(_)))
            .count() as u64;
        group.clear();
        Ok(())
    };
    state
        .for_each_entry(&mut |entry| {
            group.push(entry.clone());
            if group.len() == columns::GROUP {
                flush(out, &mut group)?;
            }
            Ok(())
        })
        .map_err(io::Error::other)?;
    flush(out, &mut group)?;
    Ok(groups)
}

/// Reads a bank snapshot: the state (its entries left in the file) and the base segment.
pub(crate) fn read_banks(path: &Path) -> Result<(BankState, Segment), StoreError> {
    let (mut state, segment, groups, codes_offset, file) =
        read_checked(path, KIND_BANKS, |input, seq| {
            let json_len = input.len_u64(1)?;
            let json = input.bytes(json_len)?;
            let catalog: Catalog = serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
            check_catalog(&catalog.banks)?;
            let mut state = BankState::default();
            state.banks = catalog.banks;
            state.provenances = catalog.provenances;
            state.set_seq(seq);
            let segment = columns::read_segment(input)?;
            let codes_offset = input.position() + 8;
            let index = read_index(input)?;
            let (groups, enabled_pdq, enabled_digests) =
                read_entry_groups(input, state.banks.len(), seq, &segment)?;
            if index.len() as u64 != enabled_pdq {
                return Err(bad("index codes and enabled PDQ entries differ".into()));
            }
            if segment.pdq_refs.len() as u64 != enabled_pdq
                || segment.digests.len() as u64 != enabled_digests
            {
                return Err(bad("segment does not cover the enabled entries".into()));
            }
            let segment = segment
                .with_pdq_index(index)
                .map_err(|e| bad(e.to_string()))?;
            let file = input.inner.get_ref().try_clone()?;
            Ok((state, segment, groups, codes_offset, file))
        })?;
    let bank_count = state.banks.len();
    state.stored = Some(Arc::new(StoredEntries::new(
        file,
        groups,
        codes_offset,
        bank_count,
    )));
    Ok((state, segment))
}

/// Checks the banks as the store keeps them: each at the position its id names (lookups go
/// by id) under a name no other bank has (lookups by name take the first), with settings
/// `create_bank` would have taken (a bank named `all` would be every bank in a filter; a
/// control character in a text would rewrite a display).
fn check_catalog(banks: &[Bank]) -> io::Result<()> {
    let mut names = HashSet::new();
    for (position, bank) in banks.iter().enumerate() {
        if bank.id as usize != position {
            return Err(bad(format!("bank {position} has id {}", bank.id)));
        }
        if let Err(error) = check_bank_spec(&bank.spec) {
            return Err(bad(format!("bank {position}: {error}")));
        }
        if !names.insert(bank.spec.name.as_str()) {
            return Err(bad(format!("bank name {} twice", bank.spec.name)));
        }
    }
    Ok(())
}

/// Checks every row group of the entry section and notes where it is; returns the groups and
/// the counts of enabled PDQ and other entries. Entry ids are the sequence numbers of the
/// records that added them, so they lie within 1 ..= `seq`: the journal goes on after `seq`.
/// Each enabled entry must be in `segment` as it is (see [`SegmentAgreement`]).
fn read_entry_groups(
    input: &mut CrcReader,
    bank_count: usize,
    seq: u64,
    segment: &Segment,
) -> io::Result<(Vec<StoredGroup>, u64, u64)> {
    let mut agreement = SegmentAgreement {
        segment,
        pdq_refs_seen: 0,
    };
    let count = input.u64()?;
    // Runs make columns small, but each entry takes at least its type byte.
    if count > input.remaining() {
        return Err(bad(format!("{count} entries run past the end of the file")));
    }
    let mut groups = Vec::new();
    let (mut pdq, mut digests) = (0u64, 0u64);
    let mut last_id = None;
    let mut left = count as usize;
    while left > 0 {
        let rows = left.min(columns::GROUP);
        left -= rows;
        let len = input.len_u64(1)?;
        let offset = input.position();
        let group = EntryGroup::decode(&input.bytes(len)?, rows, bank_count)?;
        let (Some(first_id), Some(group_last)) = (group.first_id(), group.last_id()) else {
            return Err(bad("empty row group".into()));
        };
        if last_id.is_some_and(|last| last >= first_id) {
            return Err(bad("entries out of order".into()));
        }
        if first_id == 0 || group_last > seq {
            return Err(bad(format!(
                "entry ids {first_id}..={group_last} past the records 1..={seq}"
            )));
        }
        last_id = Some(group_last);
        groups.push(StoredGroup {
            offset,
            len,
            first_id,
            rows: rows as u32,
            pdq_before: pdq,
        });
        group.for_each_enabled(&mut |row| agreement.check(row))?;
        let (group_pdq, group_digests) = group.enabled_counts();
        pdq += group_pdq;
        digests += group_digests;
    }
    Ok((groups, pdq, digests))
}

/// Checks the base segment against the entries it was built from, one enabled entry at a
/// time in entry order, so that it finds what the entries hold and nothing else: a PDQ entry
/// is the next PDQ ref (its value is the index's code at that position already), any other
/// entry is in the digest table under its own value. Each ref must name the entry, its bank
/// and its classification. With the counts compared by the caller, every ref and digest is
/// then some entry's (entry ids are unique, so no two entries take one digest row). Costs a
/// ref comparison per PDQ entry and a binary search per other entry.
struct SegmentAgreement<'a> {
    segment: &'a Segment,
    pdq_refs_seen: usize,
}

impl SegmentAgreement<'_> {
    fn check(&mut self, row: EnabledRow<'_>) -> io::Result<()> {
        // Where the ref is, for the error only (formatting it here would cost more than all
        // the rest of the check).
        let (entry_ref, (table, at)) = match row.digest {
            None => {
                let at = self.pdq_refs_seen;
                self.pdq_refs_seen += 1;
                let entry_ref =
                    self.segment.pdq_refs.get(at).ok_or_else(|| {
                        bad(format!("PDQ entry {} has no ref in the index", row.id))
                    })?;
                (entry_ref, ("PDQ ref", at))
            }
            Some(digest) => {
                let digests = &self.segment.digests;
                let at = digests
                    .binary_search_by(|(value, r)| (value, r.id).cmp(&(&digest, row.id)))
                    .map_err(|_| {
                        bad(format!(
                            "entry {} is not in the digest table under its value",
                            row.id
                        ))
                    })?;
                (digests[at].1, ("digest row", at))
            }
        };
        let label = match entry_ref.label {
            BANK_LABEL => None,
            label => self.segment.label(label),
        };
        if entry_ref.id != row.id || entry_ref.bank != row.bank || label != row.classification {
            return Err(bad(format!(
                "{table} {at} names entry {} in bank {} ({}), but the entry is {} in bank {} ({})",
                entry_ref.id,
                entry_ref.bank,
                label.unwrap_or("the bank's classification"),
                row.id,
                row.bank,
                row.classification.unwrap_or("the bank's classification"),
            )));
        }
        Ok(())
    }
}

/// Writes a bare PDQ index (used by the benchmark and tools), atomically.
pub fn write_pdq_index(path: &Path, index: &PdqIndex) -> Result<(), StoreError> {
    write_atomically(path, |out| {
        write_header(out, KIND_INDEX, 0)?;
        write_index(out, index)
    })
}

/// Reads a bare PDQ index written by [`write_pdq_index`].
pub fn read_pdq_index(path: &Path) -> Result<PdqIndex, StoreError> {
    read_checked(path, KIND_INDEX, |input, _| read_index(input))
}

pub(crate) fn bad(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

fn write_atomically(
    path: &Path,
    body: impl FnOnce(&mut CrcWriter) -> io::Result<()>,
) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = path.with_extension("tmp");
    let result = (|| {
        let file = File::create(&temp)?;
        let mut out = CrcWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: crc32fast::Hasher::new(),
            written: 0,
        };
        body(&mut out)?;
        let crc = out.hasher.clone().finalize();
        out.inner.write_all(&crc.to_le_bytes())?;
        let file = out.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(error) = result {
        let _ = fs::remove_file(&temp);
        return Err(StoreError::io(path, error));
    }
    sync_dir(dir)
}

fn read_checked<T>(
    path: &Path,
    kind: u32,
    body: impl FnOnce(&mut CrcReader, u64) -> io::Result<T>,
) -> Result<T, StoreError> {
    let snapshot_error = |reason: String| StoreError::BadSnapshot {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let size = file.metadata().map_err(|e| StoreError::io(path, e))?.len();
    let mut input = CrcReader {
        inner: BufReader::with_capacity(1 << 20, file),
        hasher: crc32fast::Hasher::new(),
        remaining: size.saturating_sub(4),
        limit: size.saturating_sub(4),
        before_deferred: Vec::new(),
    };
    let result = (|| {
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(bad("not an Aranea snapshot".into()));
        }
        let version = input.u32()?;
        if version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {version}, this build reads {FORMAT_VERSION}"
            )));
        }
        if input.u32()? != kind {
            return Err(bad("wrong snapshot kind".into()));
        }
        let seq = input.u64()?;
        let value = body(&mut input, seq)?;
        let computed = input.hasher.clone().finalize();
        let mut stored = [0u8; 4];
        input.inner.read_exact(&mut stored)?;
        if u32::from_le_bytes(stored) != computed {
            return Err(bad("checksum mismatch".into()));
        }
        if input.inner.read(&mut [0u8; 1])? != 0 {
            return Err(bad("trailing bytes".into()));
        }
        Ok(value)
    })();
    result.map_err(|e| snapshot_error(e.to_string()))
}

fn write_header(out: &mut CrcWriter, kind: u32, seq: u64) -> io::Result<()> {
    out.write_all(MAGIC)?;
    out.write_all(&FORMAT_VERSION.to_le_bytes())?;
    out.write_all(&kind.to_le_bytes())?;
    out.write_all(&seq.to_le_bytes())
}

fn write_u32s(out: &mut CrcWriter, values: &[u32]) -> io::Result<()> {
    out.write_all(&(values.len() as u64).to_le_bytes())?;
    let mut buffer = Vec::with_capacity(1 << 16);
    for chunk in values.chunks(1 << 14) {
        buffer.clear();
        chunk
            .iter()
            .for_each(|v| buffer.extend_from_slice(&v.to_le_bytes()));
        out.write_all(&buffer)?;
    }
    Ok(())
}

fn write_index(out: &mut CrcWriter, index: &PdqIndex) -> io::Result<()> {
    out.write_all(&(index.codes.len() as u64).to_le_bytes())?;
    let mut buffer = Vec::with_capacity(1 << 16);
    for chunk in index.codes.chunks(1 << 11) {
        buffer.clear();
        chunk
            .iter()
            .flatten()
            .for_each(|w| buffer.extend_from_slice(&w.to_le_bytes()));
        out.write_all(&buffer)?;
    }
    out.write_all(&[u8::from(index.multi_index_only)])?;
    out.write_all(&(index.tables.len() as u32).to_le_bytes())?;
    for table in &index.tables {
        for value in [table.bit_offset, table.bits, table.dir_bits] {
            out.write_all(&value.to_le_bytes())?;
        }
        write_u32s(out, &table.directory)?;
        write_u32s(out, &table.cells)?;
    }
    Ok(())
}

fn read_index(input: &mut CrcReader) -> io::Result<PdqIndex> {
    let count = input.len_u64(32)? as usize;
    if count > MAX_CODES {
        return Err(bad("too many codes".into()));
    }
    // The arrays are only located here (their lengths checked against the file) and read
    // afterwards all at once, in parallel (see `bulk`).
    let codes_at = input.defer(count as u64 * 32)?;
    let mut flag = [0u8; 1];
    input.read_exact(&mut flag)?;
    let table_count = input.u32()?;
    if table_count > 256 {
        return Err(bad("too many substrings".into()));
    }
    let mut layouts = Vec::new();
    let mut next_offset = 0;
    for _ in 0..table_count {
        let (bit_offset, bits, dir_bits) = (input.u32()?, input.u32()?, input.u32()?);
        let plausible = bit_offset == next_offset
            && (1..=32).contains(&bits)
            && dir_bits <= bits
            && bits - dir_bits <= 32 - id_bits(count)
            && dir_bits <= 26;
        if !plausible {
            return Err(bad("bad substring layout".into()));
        }
        next_offset += bits;
        let buckets = (1u64 << dir_bits) + 1;
        if input.len_u64(4)? != buckets {
            return Err(bad("directory length does not match its bits".into()));
        }
        let directory_at = input.defer(buckets * 4)?;
        if input.len_u64(4)? != count as u64 {
            return Err(bad("bucket cells do not match the codes".into()));
        }
        let cells_at = input.defer(count as u64 * 4)?;
        layouts.push((bit_offset, bits, dir_bits, directory_at, cells_at));
    }
    if table_count > 0 && next_offset != 256 {
        return Err(bad("substrings do not cover 256 bits".into()));
    }
    let mut codes = AlignedArray::<Code>::zeroed(count);
    let mut tables: Vec<SubstringTable> = layouts
        .iter()
        .map(|&(bit_offset, bits, dir_bits, _, _)| SubstringTable {
            bit_offset,
            bits,
            dir_bits,
            directory: AlignedArray::zeroed((1usize << dir_bits) + 1),
            cells: AlignedArray::zeroed(count),
        })
        .collect();
    let mut regions = vec![bulk::Region {
        offset: codes_at,
        bytes: bytes_of_mut(&mut codes),
    }];
    for (table, &(_, _, _, directory_at, cells_at)) in tables.iter_mut().zip(&layouts) {
        regions.push(bulk::Region {
            offset: directory_at,
            bytes: bytes_of_mut(&mut table.directory),
        });
        regions.push(bulk::Region {
            offset: cells_at,
            bytes: bytes_of_mut(&mut table.cells),
        });
    }
    input.read_deferred(regions)?;
    if cfg!(target_endian = "big") {
        for code in codes.iter_mut() {
            *code = code.map(u64::from_le);
        }
        for table in &mut tables {
            for value in table.directory.iter_mut().chain(table.cells.iter_mut()) {
                *value = u32::from_le(*value);
            }
        }
    }
    for table in &tables {
        check_table(table, count, id_bits(count))?;
    }
    let index = PdqIndex {
        codes,
        tables,
        multi_index_only: flag[0] == 1,
    };
    // The checksum proves the file is as written, not that it was written right: a table
    // that misplaces a code would hide it from searches without a word.
    if let Some(slot) = index.first_table_not_built_from_codes() {
        return Err(bad(format!(
            "substring table {slot} does not hold the codes as they are"
        )));
    }
    Ok(index)
}

fn check_table(table: &SubstringTable, count: usize, id_bits: u32) -> io::Result<()> {
    let directory_ok = table.directory.len() == (1usize << table.dir_bits) + 1
        && table.directory.first() == Some(&0)
        && table
            .directory
            .last()
            .is_some_and(|&last| last as usize == count)
        && table.directory.windows(2).all(|pair| pair[0] <= pair[1]);
    let cells_ok = table.cells.len() == count
        && table
            .cells
            .iter()
            .all(|&cell| ((cell & ((1 << id_bits) - 1)) as usize) < count);
    if directory_ok && cells_ok {
        Ok(())
    } else {
        Err(bad("inconsistent substring table".into()))
    }
}

/// Types read as raw little-endian memory (see [`bytes_of_mut`]).
trait Plain: Copy {}
impl Plain for u32 {}
impl Plain for Code {}

/// The memory of `values` as bytes, to read little-endian words straight into it: one copy from
/// the page cache, checksummed on the way, with no decoding pass (the byte order fix-up after
/// it is compiled out on little-endian machines). Most of a 10M load is these arrays.
fn bytes_of_mut<T: Plain>(values: &mut [T]) -> &mut [u8] {
    let len = std::mem::size_of_val(values);
    // SAFETY: `Plain` types are integers or arrays of them: every byte pattern is a valid
    // value, they have no padding, and the byte view covers exactly their memory, borrowed
    // mutably for no longer than `values` is.
    unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), len) }
}

struct CrcWriter {
    inner: BufWriter<File>,
    hasher: crc32fast::Hasher,
    /// Bytes written so far: the file offset of the next byte.
    written: u64,
}

impl Write for CrcWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        self.written += written as u64;
        Ok(written)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads and checksums, refusing any length that would run past the end of the file.
pub(crate) struct CrcReader {
    inner: BufReader<File>,
    hasher: crc32fast::Hasher,
    remaining: u64,
    /// Size of the file less its checksum.
    limit: u64,
    /// Checksums of the bytes read before each deferred region (see `defer`).
    before_deferred: Vec<crc32fast::Hasher>,
}

impl Read for CrcReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let limit = buffer
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buffer[..limit])?;
        self.hasher.update(&buffer[..read]);
        self.remaining -= read as u64;
        Ok(read)
    }
}

impl CrcReader {
    fn u32(&mut self) -> io::Result<u32> {
        let mut bytes = [0u8; 4];
        self.read_exact(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    pub(crate) fn u64(&mut self) -> io::Result<u64> {
        let mut bytes = [0u8; 8];
        self.read_exact(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    pub(crate) fn remaining(&self) -> u64 {
        self.remaining
    }

    /// File offset of the next byte.
    pub(crate) fn position(&self) -> u64 {
        self.limit - self.remaining
    }

    /// A count of items at least `item_size` bytes each, checked against what is left.
    pub(crate) fn len_u64(&mut self, item_size: u64) -> io::Result<u64> {
        let count = self.u64()?;
        if count.saturating_mul(item_size) > self.remaining {
            return Err(bad(format!("length {count} runs past the end of the file")));
        }
        Ok(count)
    }

    pub(crate) fn bytes(&mut self, count: u64) -> io::Result<Vec<u8>> {
        if count > self.remaining {
            return Err(bad("length runs past the end of the file".into()));
        }
        let mut bytes = vec![0u8; count as usize];
        self.read_exact(&mut bytes)?;
        Ok(bytes)
    }

    /// Skips `len` bytes to be read later by [`CrcReader::read_deferred`]; returns their
    /// file offset. The checksum so far is set aside, to be combined with theirs in order.
    fn defer(&mut self, len: u64) -> io::Result<u64> {
        if len > self.remaining {
            return Err(bad("length runs past the end of the file".into()));
        }
        let offset = self.position();
        let skip = i64::try_from(len).map_err(|_| bad("length too large".into()))?;
        self.inner.seek_relative(skip)?;
        self.remaining -= len;
        let before = std::mem::replace(&mut self.hasher, crc32fast::Hasher::new());
        self.before_deferred.push(before);
        Ok(offset)
    }

    /// Reads every region deferred so far (one per [`CrcReader::defer`] call, in that order)
    /// and folds their checksums into the running one, as if they had been read in place.
    fn read_deferred(&mut self, regions: Vec<bulk::Region<'_>>) -> io::Result<()> {
        if regions.len() != self.before_deferred.len() {
            return Err(io::Error::other("deferred regions and reads differ"));
        }
        let hashers = bulk::read_regions(self.inner.get_ref(), regions)?;
        let mut folded = crc32fast::Hasher::new();
        for (before, region) in self.before_deferred.drain(..).zip(&hashers) {
            folded.combine(&before);
            folded.combine(region);
        }
        folded.combine(&self.hasher);
        self.hasher = folded;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bank::{BankSpec, MAX_PDQ_THRESHOLD, Origin};
    use crate::live::segment_entry;
    use crate::pdq_index::IndexParams;
    use crate::segment::SegmentEntry;
    use crate::store::{BankStore, NewEntry, SNAPSHOT_FILE};

    /// A store with banks `one` and `two`, empty, and a provenance for their entries.
    fn store_of_two_banks(dir: &Path) -> (BankStore, u32) {
        let mut store = BankStore::open(dir).unwrap();
        for name in ["one", "two"] {
            store
                .create_bank(BankSpec::new(name, "local", "csam"))
                .unwrap();
        }
        let provenance = store
            .add_provenance(Provenance {
                added_by: "test".into(),
                added_at: 0,
                origin: Origin::Manual,
            })
            .unwrap();
        (store, provenance)
    }

    /// A snapshot of banks `one` and `two` with an entry in each (journal sequence 5).
    fn snapshot_of_two_banks(dir: &Path) -> Vec<u8> {
        let (mut store, provenance) = store_of_two_banks(dir);
        let entries: Vec<NewEntry> = [
            "d41d8cd98f00b204e9800998ecf8427e",
            "900150983cd24fb0d6963f7d28e17f72",
        ]
        .iter()
        .enumerate()
        .map(|(bank, hex)| NewEntry {
            bank: bank as u32,
            signal: Signal::from_hex(crate::SignalType::Md5, hex).unwrap(),
            classification: None,
            provenance,
            line: 0,
            metadata: None,
        })
        .collect();
        store.append_entries(&entries).unwrap();
        store.write_snapshot().unwrap();
        std::fs::read(dir.join(SNAPSHOT_FILE)).unwrap()
    }

    /// Reads `file` with `from` replaced by `to` (as long) and the checksum made right again.
    fn read_edited(dir: &Path, file: &[u8], from: &[u8], to: &[u8]) -> Result<BankState, String> {
        assert_eq!(from.len(), to.len());
        let at = file
            .windows(from.len())
            .position(|w| w == from)
            .expect("the text to replace");
        let mut edited = file.to_vec();
        edited[at..at + to.len()].copy_from_slice(to);
        read_forged(dir, edited)
    }

    /// Reads `file` with its checksum made right again.
    fn read_forged(dir: &Path, mut file: Vec<u8>) -> Result<BankState, String> {
        let body = file.len() - 4;
        let crc = crc32fast::hash(&file[..body]);
        file[body..].copy_from_slice(&crc.to_le_bytes());
        let path = dir.join("edited.snapshot");
        std::fs::write(&path, &file).unwrap();
        read_refusal(&path)
    }

    fn read_refusal(path: &Path) -> Result<BankState, String> {
        match read_banks(path) {
            Ok((state, _)) => Ok(state),
            Err(StoreError::BadSnapshot { reason, .. }) => Err(reason),
            Err(other) => panic!("not a BadSnapshot error: {other}"),
        }
    }

    /// `file` with its catalog (the banks and provenances as JSON, after the 24-byte header
    /// and its length) changed by `edit`, the length made right again.
    fn with_catalog_edited(file: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let length = u64::from_le_bytes(file[24..32].try_into().unwrap()) as usize;
        let mut catalog: serde_json::Value =
            serde_json::from_slice(&file[32..32 + length]).unwrap();
        edit(&mut catalog);
        let json = serde_json::to_vec(&catalog).unwrap();
        [
            &file[..24],
            &(json.len() as u64).to_le_bytes(),
            &json,
            &file[32 + length..],
        ]
        .concat()
    }

    #[test]
    fn a_bank_that_create_bank_would_refuse_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = snapshot_of_two_banks(dir.path());
        let unchanged = with_catalog_edited(&file, |_| {});
        assert_eq!(read_forged(dir.path(), unchanged).unwrap().banks().len(), 2);
        let refusals: [(&str, serde_json::Value, &str); 7] = [
            ("name", "all".into(), "bank 1: invalid bank name \"all\""),
            ("name", "t/o".into(), "bank 1: invalid bank name \"t/o\""),
            (
                "pdq_threshold",
                129.into(),
                "bank 1: PDQ threshold 129 is above",
            ),
            (
                "classification",
                "csam\u{1b}[2J".into(),
                "bank 1: bank classification holds the control character U+001B",
            ),
            (
                "classification",
                "c".repeat(101).into(),
                "bank 1: bank classification is 101 bytes long; at most 100",
            ),
            (
                "source",
                "local\r".into(),
                "bank 1: bank source holds the control character U+000D",
            ),
            (
                "description",
                "a\u{0}b".into(),
                "bank 1: bank description holds the control character U+0000",
            ),
        ];
        for (field, value, reason) in refusals {
            let forged = with_catalog_edited(&file, |catalog| {
                catalog["banks"][1][field] = value.clone();
            });
            let refused = read_forged(dir.path(), forged).map(|_| ());
            assert!(
                refused.as_ref().is_err_and(|r| r.contains(reason)),
                "{field} = {value}: {refused:?}"
            );
        }
        // At the limits: accepted, as by `create_bank`.
        let at_limits = with_catalog_edited(&file, |catalog| {
            catalog["banks"][1]["pdq_threshold"] = MAX_PDQ_THRESHOLD.into();
            catalog["banks"][1]["classification"] = "é".repeat(50).into();
            catalog["banks"][1]["description"] = "line\n\tindented".into();
        });
        let banks = read_forged(dir.path(), at_limits).unwrap().banks().to_vec();
        assert_eq!(banks[1].spec.pdq_threshold, MAX_PDQ_THRESHOLD);
    }

    /// A store with two banks, a PDQ and two digest entries in each (some with their own
    /// classification), one digest entry disabled.
    fn store_of_every_kind(dir: &Path) -> BankStore {
        let (mut store, provenance) = store_of_two_banks(dir);
        let pdq = |seed: u64| {
            let words = [seed, seed.rotate_left(17), !seed, seed ^ 0x5555];
            Signal::Pdq(aranea_hash::PdqHash::from_words(words))
        };
        let md5 = |byte: u8| Signal::from_bytes(crate::SignalType::Md5, &[byte; 16]).unwrap();
        let entries: Vec<NewEntry> = [
            (0, pdq(1), None),
            (0, md5(7), None),
            (0, md5(3), Some("own")),
            (1, pdq(2), Some("other")),
            (1, md5(5), None),
            (1, md5(1), Some("own")),
        ]
        .into_iter()
        .map(|(bank, signal, label)| NewEntry {
            bank,
            signal,
            classification: label.map(str::to_string),
            provenance,
            line: 0,
            metadata: None,
        })
        .collect();
        let added = store.add_entries(&entries).unwrap().added;
        store.disable_entry(added[4], provenance).unwrap();
        store
    }

    /// A change to one entry as the base segment is built over it.
    type Forge<'a> = &'a dyn Fn(&mut SegmentEntry<'_>);

    /// The store's state written with a base segment built over its enabled entries as `forge`
    /// changes them, then read back.
    fn read_with_forged_segment(
        dir: &Path,
        store: &BankStore,
        forge: impl Fn(&mut SegmentEntry<'_>),
    ) -> Result<BankState, String> {
        let mut entries = Vec::new();
        store
            .state()
            .for_each_entry(&mut |entry| {
                entries.push(entry.clone());
                Ok(())
            })
            .unwrap();
        let segment = Segment::build(
            entries.iter().filter(|e| !e.disabled).map(|entry| {
                let mut forged = segment_entry(entry);
                forge(&mut forged);
                forged
            }),
            IndexParams::default(),
        )
        .unwrap();
        let path = dir.join("forged.snapshot");
        write_banks(&path, store.state(), &segment).unwrap();
        read_refusal(&path)
    }

    #[test]
    fn an_index_that_does_not_hold_the_entries_as_they_are_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_of_every_kind(&dir.path().join("banks"));
        let honest = read_with_forged_segment(dir.path(), &store, |_| {}).unwrap();
        assert_eq!(honest.entry_count(), 6);
        let md5 = |byte: u8| Signal::from_bytes(crate::SignalType::Md5, &[byte; 16]).unwrap();
        let pdq_id = store.state().entries()[0].id;
        let refusals: [(&str, Forge<'_>, &str); 6] = [
            (
                "a digest indexed under a value its entry does not hold",
                &|e| {
                    if e.signal == md5(7) {
                        e.signal = md5(9);
                    }
                },
                "is not in the digest table under its value",
            ),
            (
                "a digest indexed in another bank",
                &|e| {
                    if e.signal == md5(1) {
                        e.bank = 0;
                    }
                },
                "in bank 0 (own), but the entry is",
            ),
            (
                "a digest indexed with a classification its entry does not have",
                &|e| {
                    if e.signal == md5(7) {
                        e.classification = Some("forged");
                    }
                },
                "(forged), but the entry is",
            ),
            (
                "a digest indexed without its entry's classification",
                &|e| {
                    if e.signal == md5(3) {
                        e.classification = None;
                    }
                },
                "(the bank's classification), but the entry is",
            ),
            (
                "a PDQ ref naming another entry",
                &|e| {
                    if e.id == pdq_id {
                        e.id += 1;
                    }
                },
                "PDQ ref 0 names entry",
            ),
            (
                "a PDQ ref in another bank",
                &|e| {
                    if matches!(e.signal, Signal::Pdq(_)) && e.bank == 1 {
                        e.bank = 0;
                    }
                },
                "PDQ ref 1 names entry",
            ),
        ];
        for (what, forge, reason) in refusals {
            let refused = read_with_forged_segment(dir.path(), &store, forge).map(|_| ());
            assert!(
                refused.as_ref().is_err_and(|r| r.contains(reason)),
                "{what}: {refused:?}"
            );
        }
    }

    #[test]
    fn a_catalog_whose_banks_are_not_at_their_ids_or_share_a_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = snapshot_of_two_banks(dir.path());
        let intact = read_edited(dir.path(), &file, b"\"one\"", b"\"one\"").unwrap();
        assert_eq!(intact.banks().len(), 2);
        let refusals = [
            (&b"\"id\":1,"[..], &b"\"id\":0,"[..], "has id"),
            (b"\"two\"", b"\"one\"", "twice"),
            (b"\"two\"", b"\"t/o\"", "invalid bank name"),
        ];
        for (from, to, reason) in refusals {
            let refused = read_edited(dir.path(), &file, from, to).map(|_| ());
            assert!(
                refused.as_ref().is_err_and(|r| r.contains(reason)),
                "{} -> {}: {refused:?}",
                String::from_utf8_lossy(from),
                String::from_utf8_lossy(to)
            );
        }
    }

    #[test]
    fn entries_past_the_snapshot_sequence_number_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = snapshot_of_two_banks(dir.path());
        let header = |seq: u64| {
            let words = [FORMAT_VERSION.to_le_bytes(), KIND_BANKS.to_le_bytes()].concat();
            [&MAGIC[..], &words, &seq.to_le_bytes()].concat()
        };
        let (seq, last_entry) = {
            let (state, _) = read_banks(&dir.path().join(SNAPSHOT_FILE)).unwrap();
            (state.seq(), state.entries().last().unwrap().id)
        };
        // Entry ids are the journal sequence numbers of the records that added them: a
        // snapshot covering fewer records cannot hold its last entry, and the journal would
        // give that id again.
        let refused = read_edited(dir.path(), &file, &header(seq), &header(last_entry - 1));
        let refused = refused.map(|_| ());
        assert!(
            refused.as_ref().is_err_and(|r| r.contains("past")),
            "{refused:?}"
        );
        assert!(read_edited(dir.path(), &file, &header(seq), &header(last_entry)).is_ok());
    }

    /// A snapshot of `n` pseudo-random PDQ entries in bank `one`, with its file and the
    /// index it holds; `known` is the value of the entry whose cells a test forges.
    fn snapshot_of_pdq_entries(dir: &Path, n: usize) -> (Vec<u8>, PdqIndex, Signal) {
        let (mut store, provenance) = store_of_two_banks(dir);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let entries: Vec<NewEntry> = (0..n)
            .map(|_| {
                let mut bytes = [0u8; 32];
                for chunk in bytes.chunks_mut(8) {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    chunk.copy_from_slice(&state.to_le_bytes());
                }
                NewEntry {
                    bank: 0,
                    signal: Signal::from_bytes(crate::SignalType::Pdq, &bytes).unwrap(),
                    classification: None,
                    provenance,
                    line: 0,
                    metadata: None,
                }
            })
            .collect();
        let known = entries[n / 2].signal;
        store.append_entries(&entries).unwrap();
        store.write_snapshot().unwrap();
        let file = std::fs::read(dir.join(SNAPSHOT_FILE)).unwrap();
        let (_, segment) = read_banks(&dir.join(SNAPSHOT_FILE)).unwrap();
        (file, segment.pdq.unwrap(), known)
    }

    /// `file` with, in every substring table of `index`, the cell of code `id` and a cell
    /// of another bucket swapping ids (each keeps its bucket and low bits, so every id is
    /// still listed once and the table still looks sound), the checksum made right again.
    fn with_code_hidden(file: &[u8], index: &PdqIndex, id: u32) -> Vec<u8> {
        let count = index.codes.len();
        let mut codes_bytes = (count as u64).to_le_bytes().to_vec();
        codes_bytes.extend(index.codes[0].iter().flat_map(|w| w.to_le_bytes()));
        let mut at = file
            .windows(codes_bytes.len())
            .position(|w| w == codes_bytes)
            .expect("the index's codes in the file")
            + 8
            + 32 * count
            + 1
            + 4;
        let id_mask = (1u32 << id_bits(count)) - 1;
        let mut file = file.to_vec();
        for table in &index.tables {
            let directory_at = at + 12 + 8;
            let cells_at = directory_at + 4 * table.directory.len() + 8;
            let bucket_of = |position: usize| {
                table
                    .directory
                    .partition_point(|&start| start as usize <= position)
                    - 1
            };
            let known = table.cells.iter().position(|&c| c & id_mask == id).unwrap();
            let other = (0..count)
                .find(|&p| bucket_of(p) != bucket_of(known))
                .unwrap();
            let (a, b) = (table.cells[known], table.cells[other]);
            for (position, cell) in [
                (known, (a & !id_mask) | (b & id_mask)),
                (other, (b & !id_mask) | (a & id_mask)),
            ] {
                let offset = cells_at + 4 * position;
                file[offset..offset + 4].copy_from_slice(&cell.to_le_bytes());
            }
            at = cells_at + 4 * count;
        }
        let body = file.len() - 4;
        let crc = crc32fast::hash(&file[..body]);
        file[body..].copy_from_slice(&crc.to_le_bytes());
        file
    }

    /// A snapshot whose tables hide a code, checksum and all: opening must notice, rebuild
    /// from the journal and find the entry, where it used to open without a word and miss it.
    #[test]
    fn substring_tables_that_hide_a_code_are_refused_and_rebuilt_from_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let banks = dir.path().join("banks");
        let (file, index, known) = snapshot_of_pdq_entries(&banks, 40_000);
        assert!(index.substrings() > 0);
        let Signal::Pdq(hash) = known else {
            unreachable!()
        };
        let id = (0..index.codes.len() as u32)
            .find(|&id| index.code(id) == Some(&hash.to_words()))
            .unwrap();
        std::fs::write(
            banks.join(SNAPSHOT_FILE),
            with_code_hidden(&file, &index, id),
        )
        .unwrap();
        let refused = read_refusal(&banks.join(SNAPSHOT_FILE)).map(|_| ());
        assert!(
            refused
                .as_ref()
                .is_err_and(|r| r.contains("does not hold the codes")),
            "{refused:?}"
        );
        let store = BankStore::open(&banks).unwrap();
        assert!(
            store
                .warnings()
                .iter()
                .any(|w| w.contains("rebuilding from the journal")),
            "{:?}",
            store.warnings()
        );
        let found = store
            .live()
            .load()
            .match_signal(&known, &crate::BankFilter::All);
        assert_eq!(found.hits.len(), 1, "the hidden entry was missed");
        assert_eq!(found.hits[0].distance, 0);
        assert_eq!(store.state().entry_count(), 40_000);
    }
}
