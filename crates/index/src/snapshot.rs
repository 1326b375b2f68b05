//! Snapshots: the bank state and its compiled PDQ index in one versioned, checksummed file.
//!
//! Layout (little endian): magic `ARNBANK\0`, format version (u32), kind (u32: 1 = banks,
//! 2 = bare PDQ index), the journal sequence number covered (u64), the sections, and a CRC-32
//! of everything before it. Sections: bank settings and provenance as JSON, the entries in
//! columnar row groups, the base segment (PDQ refs, digests sorted by value, labels; see
//! `columns`) and the PDQ index arrays as they are in memory, so loading is a few bulk reads
//! with no rebuilding or sorting.
//!
//! Writing goes to a temporary file that is fsynced, renamed over the old snapshot, and the
//! directory fsynced: a crash leaves the old or the new snapshot, never a torn one. Loading
//! checks every length against the file size before allocating and every index invariant
//! before searching, so a damaged or hostile file is an error, not a crash.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::bank::{Bank, Provenance};
use crate::columns;
use crate::error::StoreError;
use crate::journal::sync_dir;
use crate::pdq_index::{MAX_CODES, PdqIndex, SubstringTable, advise_huge_pages, id_bits};
use crate::segment::Segment;
use crate::signal::Signal;
use crate::state::BankState;

const MAGIC: &[u8; 8] = b"ARNBANK\0";
/// Bump on any layout change; older files are then rebuilt from the journal.
pub const FORMAT_VERSION: u32 = 5;
const KIND_BANKS: u32 = 1;
const KIND_INDEX: u32 = 2;

#[derive(Serialize, Deserialize)]
struct Catalog {
    banks: Vec<Bank>,
    provenances: Vec<Provenance>,
}

/// Writes the bank state and its base segment (built over the state's enabled entries, with
/// its PDQ index) to `path`, atomically.
pub(crate) fn write_banks(
    path: &Path,
    state: &BankState,
    segment: &Segment,
) -> Result<(), StoreError> {
    let index = segment
        .pdq
        .as_ref()
        .ok_or_else(|| StoreError::Corrupt("segment without a PDQ index".into()))?;
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
        write_index(out, index)?;
        columns::write_entries(out, &state.entries)
    })
}

/// Reads a bank snapshot: the state and the base segment stored with it.
pub(crate) fn read_banks(path: &Path) -> Result<(BankState, Segment), StoreError> {
    read_checked(path, KIND_BANKS, |input, seq| {
        let json_len = input.len_u64(1)?;
        let json = input.bytes(json_len)?;
        let catalog: Catalog = serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
        let mut state = BankState {
            banks: catalog.banks,
            provenances: catalog.provenances,
            ..BankState::default()
        };
        let bank_count = state.banks.len();
        let segment = columns::read_segment(input)?;
        let index = read_index(input)?;
        let (mut enabled_pdq, mut enabled_digests) = (0usize, 0usize);
        let mut entries = Vec::new();
        columns::read_entries(input, bank_count, &index.codes, &mut |entry| {
            if !entry.disabled {
                match entry.signal {
                    Signal::Pdq(_) => enabled_pdq += 1,
                    _ => enabled_digests += 1,
                }
            }
            if entries.is_empty() {
                entries.reserve(segment.len());
            }
            entries.push(entry);
        })?;
        state.entries = entries;
        state.set_seq(seq);
        if segment.pdq_refs.len() != enabled_pdq || segment.digests.len() != enabled_digests {
            return Err(bad("segment does not cover the enabled entries".into()));
        }
        let segment = segment
            .with_pdq_index(index)
            .map_err(|e| bad(e.to_string()))?;
        Ok((state, segment))
    })
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
    let mut codes = Vec::with_capacity(count);
    advise_huge_pages(&codes);
    input.read_chunks(count, 32, |bytes| {
        codes.extend(bytes.chunks_exact(32).map(|code| {
            let word = |i: usize| {
                let mut eight = [0u8; 8];
                eight.copy_from_slice(&code[i * 8..i * 8 + 8]);
                u64::from_le_bytes(eight)
            };
            [word(0), word(1), word(2), word(3)]
        }));
    })?;
    let mut flag = [0u8; 1];
    input.read_exact(&mut flag)?;
    let table_count = input.u32()?;
    if table_count > 256 {
        return Err(bad("too many substrings".into()));
    }
    let mut tables = Vec::new();
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
        let directory = input.u32s()?;
        let cells = input.u32s()?;
        let table = SubstringTable {
            bit_offset,
            bits,
            dir_bits,
            directory,
            cells,
        };
        check_table(&table, count, id_bits(count))?;
        tables.push(table);
    }
    if table_count > 0 && next_offset != 256 {
        return Err(bad("substrings do not cover 256 bits".into()));
    }
    Ok(PdqIndex {
        codes,
        tables,
        multi_index_only: flag[0] == 1,
    })
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

struct CrcWriter {
    inner: BufWriter<File>,
    hasher: crc32fast::Hasher,
}

impl Write for CrcWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
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

    /// A count of items at least `item_size` bytes each, checked against what is left.
    pub(crate) fn remaining(&self) -> u64 {
        self.remaining
    }

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

    fn u32s(&mut self) -> io::Result<Vec<u32>> {
        let count = self.len_u64(4)? as usize;
        let mut values = Vec::with_capacity(count);
        advise_huge_pages(&values);
        self.read_chunks(count, 4, |bytes| {
            values.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        })?;
        Ok(values)
    }

    fn read_chunks(
        &mut self,
        count: usize,
        size: usize,
        mut each: impl FnMut(&[u8]),
    ) -> io::Result<()> {
        // `each` receives a block of whole items (`size` bytes each).
        let mut buffer = vec![0u8; size * 8192];
        let mut left = count;
        while left > 0 {
            let take = left.min(8192);
            let bytes = &mut buffer[..take * size];
            self.read_exact(bytes)?;
            // Whole blocks at once: the decoder then compiles to a vectorised copy.
            each(bytes);
            left -= take;
        }
        Ok(())
    }
}
