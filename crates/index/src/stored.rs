//! The entries of a loaded snapshot, left in the file and read back one row group at a time.
//!
//! Matching needs only the base segment (PDQ index, digest table, compact refs); an entry's
//! provenance, import line, metadata and even its value (an enabled PDQ value is the index's
//! code) are wanted only to export, show or re-snapshot it. So opening a bank directory checks
//! every row group (checksum, order, ranges) but keeps only where each group is: ~40 bytes per
//! 2,048 entries instead of ~100 bytes per entry. A group is read again from the open file
//! when asked for; the file is never written in place (snapshots are replaced by rename), so
//! the open handle keeps reading the snapshot it was checked against.
//!
//! This module must not interpret entries beyond decoding them: the state overlays later
//! changes (see `state`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex, PoisonError};

use crate::bank::{BankId, Entry, EntryId};
use crate::columns::{
    self, ColumnInput, DISABLED_BIT, NONE_LEN, SliceInput, get_blob, get_labels, get_u32s, get_u64s,
};
use crate::pdq_index::Code;
use crate::signal::{Signal, SignalType};
use crate::snapshot::bad;

/// Where one row group is in the snapshot file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredGroup {
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) first_id: EntryId,
    pub(crate) rows: u32,
    /// Enabled PDQ entries before this group: where its values start among the index codes.
    pub(crate) pdq_before: u64,
}

/// The snapshot's entry section: where its groups and the index codes are.
#[derive(Debug)]
pub(crate) struct StoredEntries {
    file: Mutex<File>,
    groups: Vec<StoredGroup>,
    codes_offset: u64,
    bank_count: usize,
    count: usize,
}

/// One row group, decoded and checked.
pub(crate) struct EntryGroup {
    ids: Vec<u64>,
    banks: Vec<u32>,
    types: Vec<u8>,
    lines: Vec<u64>,
    provenances: Vec<u32>,
    values: Vec<u8>,
    labels: Vec<Arc<str>>,
    label_of: Vec<u32>,
    metadata_lengths: Vec<u32>,
    metadata: Vec<u8>,
}

impl EntryGroup {
    /// Decodes a group of `rows` entries and checks everything that does not need the codes:
    /// ids increasing, banks known, types valid, labels and metadata in range and UTF-8.
    pub(crate) fn decode(bytes: &[u8], rows: usize, bank_count: usize) -> io::Result<Self> {
        let mut input = SliceInput(bytes);
        let group = Self {
            ids: get_u64s(&mut input, rows)?,
            banks: get_u32s(&mut input, rows)?,
            types: input.bytes(rows as u64)?,
            lines: get_u64s(&mut input, rows)?,
            provenances: get_u32s(&mut input, rows)?,
            values: get_blob(&mut input)?,
            labels: get_labels(&mut input)?.into_iter().map(Arc::from).collect(),
            label_of: get_u32s(&mut input, rows)?,
            metadata_lengths: get_u32s(&mut input, rows)?,
            metadata: get_blob(&mut input)?,
        };
        if input.remaining() != 0 {
            return Err(bad("row group longer than its columns".into()));
        }
        if group.ids.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(bad("entries out of order".into()));
        }
        if group.banks.iter().any(|&bank| bank as usize >= bank_count) {
            return Err(bad("entry in an unknown bank".into()));
        }
        let labels = group.labels.len();
        if group
            .label_of
            .iter()
            .any(|&label| label != NONE_LEN && label as usize >= labels)
        {
            return Err(bad("label out of range".into()));
        }
        let mut metadata_len = 0usize;
        for &length in group.metadata_lengths.iter().filter(|&&l| l != NONE_LEN) {
            let end = metadata_len + length as usize;
            let text = group
                .metadata
                .get(metadata_len..end)
                .ok_or_else(|| bad("metadata shorter than its lengths".into()))?;
            std::str::from_utf8(text).map_err(|e| bad(e.to_string()))?;
            metadata_len = end;
        }
        if metadata_len != group.metadata.len() {
            return Err(bad("metadata longer than its lengths".into()));
        }
        group.check_values()?;
        Ok(group)
    }

    /// The value check when enabled PDQ values are left out (they are the index's codes).
    fn check_values(&self) -> io::Result<()> {
        let mut expected = 0usize;
        for &code in &self.types {
            let signal_type = SignalType::from_code(code & !DISABLED_BIT)
                .ok_or_else(|| bad("unknown signal type".into()))?;
            if !(signal_type == SignalType::Pdq && code & DISABLED_BIT == 0) {
                expected += signal_type.byte_len();
            }
        }
        if expected == self.values.len() {
            Ok(())
        } else {
            Err(bad("values and their types disagree".into()))
        }
    }

    pub(crate) fn first_id(&self) -> Option<EntryId> {
        self.ids.first().copied()
    }

    pub(crate) fn last_id(&self) -> Option<EntryId> {
        self.ids.last().copied()
    }

    /// (enabled PDQ entries, enabled other entries).
    pub(crate) fn enabled_counts(&self) -> (u64, u64) {
        let enabled = self.types.iter().filter(|&&t| t & DISABLED_BIT == 0);
        let pdq = enabled
            .clone()
            .filter(|&&t| t == SignalType::Pdq.code())
            .count() as u64;
        (pdq, enabled.count() as u64 - pdq)
    }

    /// Calls `each` with every enabled entry of the group, in order, as a segment indexes it.
    pub(crate) fn for_each_enabled(
        &self,
        each: &mut dyn FnMut(EnabledRow<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut value_at = 0usize;
        for (row, &code) in self.types.iter().enumerate() {
            let signal_type = SignalType::from_code(code & !DISABLED_BIT)
                .ok_or_else(|| bad("unknown signal type".into()))?;
            let enabled = code & DISABLED_BIT == 0;
            if signal_type == SignalType::Pdq && enabled {
                each(self.enabled_row(row, None))?;
                continue;
            }
            let end = value_at + signal_type.byte_len();
            let bytes = self
                .values
                .get(value_at..end)
                .ok_or_else(|| bad("values shorter than their types".into()))?;
            value_at = end;
            if enabled {
                let signal = Signal::from_bytes(signal_type, bytes)
                    .ok_or_else(|| bad("bad value".into()))?;
                each(self.enabled_row(row, Some(signal)))?;
            }
        }
        Ok(())
    }

    fn enabled_row(&self, row: usize, digest: Option<Signal>) -> EnabledRow<'_> {
        let classification = match self.label_of.get(row).copied().unwrap_or(NONE_LEN) {
            NONE_LEN => None,
            label => self.labels.get(label as usize).map(|text| &**text),
        };
        EnabledRow {
            id: self.ids.get(row).copied().unwrap_or(0),
            bank: self.banks.get(row).copied().unwrap_or(0),
            classification,
            digest,
        }
    }

    /// The entries, taking enabled PDQ values from `codes` (exactly as many as there are).
    pub(crate) fn entries(&self, codes: &[Code]) -> io::Result<Vec<Entry>> {
        let mut codes = codes.iter();
        let values = columns::signals(&self.types, &self.values, Some(&mut codes))?;
        if codes.next().is_some() {
            return Err(bad("fewer enabled PDQ entries than indexed codes".into()));
        }
        let mut metadata_at = 0usize;
        let mut out = Vec::with_capacity(self.ids.len());
        for (row, signal) in values.into_iter().enumerate() {
            let field = |column: &[u32]| column.get(row).copied().unwrap_or(NONE_LEN);
            let classification = match field(&self.label_of) {
                NONE_LEN => None,
                label => self.labels.get(label as usize).cloned(),
            };
            let metadata = match field(&self.metadata_lengths) {
                NONE_LEN => None,
                length => {
                    let end = metadata_at + length as usize;
                    let bytes = self.metadata.get(metadata_at..end).unwrap_or(&[]);
                    metadata_at = end;
                    Some(Box::from(String::from_utf8_lossy(bytes)))
                }
            };
            out.push(Entry {
                id: self.ids.get(row).copied().unwrap_or(0),
                bank: self.banks.get(row).copied().unwrap_or(0),
                signal,
                classification,
                provenance: field(&self.provenances),
                line: self.lines.get(row).copied().unwrap_or(0),
                metadata,
                disabled: self.types.get(row).is_some_and(|t| t & DISABLED_BIT != 0),
            });
        }
        Ok(out)
    }
}

/// An enabled entry of a row group, as the base segment must index it.
pub(crate) struct EnabledRow<'a> {
    pub(crate) id: EntryId,
    pub(crate) bank: BankId,
    pub(crate) classification: Option<&'a str>,
    /// The value of any but a PDQ entry (a PDQ entry's value is its code in the index).
    pub(crate) digest: Option<Signal>,
}

impl StoredEntries {
    pub(crate) fn new(
        file: File,
        groups: Vec<StoredGroup>,
        codes_offset: u64,
        bank_count: usize,
    ) -> Self {
        let count = groups.iter().map(|g| g.rows as usize).sum();
        Self {
            file: Mutex::new(file),
            groups,
            codes_offset,
            bank_count,
            count,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    pub(crate) fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The entries of group `index`, read from the file.
    pub(crate) fn group(&self, index: usize) -> io::Result<Vec<Entry>> {
        let group = self
            .groups
            .get(index)
            .ok_or_else(|| bad("no such row group".into()))?;
        let bytes = self.read_at(group.offset, group.len)?;
        let decoded = EntryGroup::decode(&bytes, group.rows as usize, self.bank_count)?;
        let (pdq, _) = decoded.enabled_counts();
        let code_bytes = self.read_at(self.codes_offset + 32 * group.pdq_before, 32 * pdq)?;
        let codes: Vec<Code> = code_bytes.chunks_exact(32).map(code_from_le).collect();
        decoded.entries(&codes)
    }

    /// The group that would hold `id`, if any.
    pub(crate) fn group_of(&self, id: EntryId) -> Option<usize> {
        self.groups
            .partition_point(|g| g.first_id <= id)
            .checked_sub(1)
    }

    /// The entry with this id, read from the file.
    pub(crate) fn entry(&self, id: EntryId) -> io::Result<Option<Entry>> {
        let Some(index) = self.group_of(id) else {
            return Ok(None);
        };
        let entries = self.group(index)?;
        Ok(entries
            .binary_search_by_key(&id, |e| e.id)
            .ok()
            .and_then(|at| entries.into_iter().nth(at)))
    }

    fn read_at(&self, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let len = usize::try_from(len).map_err(|_| bad("row group too large".into()))?;
        let mut bytes = vec![0u8; len];
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut bytes)?;
        Ok(bytes)
    }
}

/// A code as the snapshot stores it: four little-endian words.
pub(crate) fn code_from_le(bytes: &[u8]) -> Code {
    let word = |i: usize| {
        let mut eight = [0u8; 8];
        if let Some(source) = bytes.get(i * 8..i * 8 + 8) {
            eight.copy_from_slice(source);
        }
        u64::from_le_bytes(eight)
    };
    [word(0), word(1), word(2), word(3)]
}
