//! The snapshot's columnar sections: bank entries and the compiled base segment.
//!
//! Entries are stored in row groups of [`GROUP`] entries, each group as columns (ids, banks,
//! type/flag bytes, lines, provenances, values, labels, metadata), so loading is a handful of
//! bulk reads per group with bounded scratch memory, not a read per field. The segment (PDQ
//! entry refs, the exact digests already sorted by value, labels) is stored as built, so
//! nothing is collected or re-sorted on load. This module must not do file I/O of its own or
//! trust what it reads: every count is checked against the file size (by the reader), every
//! index against its table, and the digest order is verified because lookups rely on it.

use std::io::{self, Write};

use aranea_hash::PdqHash;

use crate::bank::Entry;
use crate::pdq_index::Code;
use crate::segment::{BANK_LABEL, EntryRef, RefColumn, Segment};
use crate::signal::{Signal, SignalType};
use crate::snapshot::{CrcReader, bad};

/// Entries per row group: small enough that a group's scratch columns (the largest is 2,048
/// decoded values, 66 KiB) stay under the allocator's mmap threshold and are reused from the
/// heap, instead of being mapped and faulted in again for every group (a quarter of the page
/// faults of a 10M load with 65,536-entry groups).
pub(crate) const GROUP: usize = 1 << 11;
pub(crate) const NONE_LEN: u32 = u32::MAX;
pub(crate) const DISABLED_BIT: u8 = 0x80;

/// Column encodings: raw values, or an arithmetic run (start, step: ids, a constant bank or
/// label), which most columns of an imported list are.
const RAW: u8 = 0;
const RUN: u8 = 1;

/// Where columns are read from: the snapshot stream (checksummed as it goes) or a row group's
/// bytes read back on demand.
pub(crate) trait ColumnInput {
    /// The next `count` bytes, refusing a count that runs past the end.
    fn bytes(&mut self, count: u64) -> io::Result<Vec<u8>>;
    /// Bytes left.
    fn remaining(&self) -> u64;

    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(array(&self.bytes(8)?)?))
    }

    /// A count of items at least `item_size` bytes each, checked against what is left.
    fn len_u64(&mut self, item_size: u64) -> io::Result<u64> {
        let count = self.u64()?;
        if count.saturating_mul(item_size) > self.remaining() {
            return Err(bad(format!("length {count} runs past the end of the file")));
        }
        Ok(count)
    }
}

impl ColumnInput for CrcReader {
    fn bytes(&mut self, count: u64) -> io::Result<Vec<u8>> {
        CrcReader::bytes(self, count)
    }

    fn remaining(&self) -> u64 {
        CrcReader::remaining(self)
    }
}

/// A row group's bytes, read front to back.
pub(crate) struct SliceInput<'a>(pub(crate) &'a [u8]);

impl ColumnInput for SliceInput<'_> {
    fn bytes(&mut self, count: u64) -> io::Result<Vec<u8>> {
        let count = usize::try_from(count).map_err(|_| bad("length too large".into()))?;
        if count > self.0.len() {
            return Err(bad("length runs past the end of its row group".into()));
        }
        let (head, tail) = self.0.split_at(count);
        self.0 = tail;
        Ok(head.to_vec())
    }

    fn remaining(&self) -> u64 {
        self.0.len() as u64
    }
}

fn is_run(values: &[u64]) -> Option<(u64, u64)> {
    let start = *values.first()?;
    let step = values.get(1).map_or(0, |second| second.wrapping_sub(start));
    let mut expected = start;
    for &value in values {
        if value != expected {
            return None;
        }
        expected = expected.wrapping_add(step);
    }
    Some((start, step))
}

fn put_u64s(out: &mut impl Write, values: impl Iterator<Item = u64>) -> io::Result<()> {
    let values: Vec<u64> = values.collect();
    if let Some((start, step)) = is_run(&values) {
        out.write_all(&[RUN])?;
        out.write_all(&start.to_le_bytes())?;
        return out.write_all(&step.to_le_bytes());
    }
    out.write_all(&[RAW])?;
    let bytes: Vec<u8> = values.into_iter().flat_map(u64::to_le_bytes).collect();
    out.write_all(&bytes)
}

fn put_u32s(out: &mut impl Write, values: impl Iterator<Item = u32>) -> io::Result<()> {
    let values: Vec<u64> = values.map(u64::from).collect();
    if let Some((start, step)) = is_run(&values) {
        out.write_all(&[RUN])?;
        out.write_all(&start.to_le_bytes())?;
        return out.write_all(&step.to_le_bytes());
    }
    out.write_all(&[RAW])?;
    let bytes: Vec<u8> = values
        .into_iter()
        .flat_map(|v| (v as u32).to_le_bytes())
        .collect();
    out.write_all(&bytes)
}

/// A run's values, refusing one that leaves the type's range.
fn run(input: &mut impl ColumnInput, count: usize, max: u64) -> io::Result<Vec<u64>> {
    let start = u64::from_le_bytes(array(&input.bytes(8)?)?);
    let step = u64::from_le_bytes(array(&input.bytes(8)?)?);
    let mut values = Vec::with_capacity(count);
    let mut value = start;
    for _ in 0..count {
        if value > max {
            return Err(bad("column run out of range".into()));
        }
        values.push(value);
        value = value.wrapping_add(step);
    }
    Ok(values)
}

fn array<const N: usize>(bytes: &[u8]) -> io::Result<[u8; N]> {
    bytes.try_into().map_err(|_| bad("short field".into()))
}

fn encoding(input: &mut impl ColumnInput) -> io::Result<u8> {
    match input.bytes(1)?.first() {
        Some(&RAW) => Ok(RAW),
        Some(&RUN) => Ok(RUN),
        _ => Err(bad("unknown column encoding".into())),
    }
}

fn put_blob(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    out.write_all(&(bytes.len() as u64).to_le_bytes())?;
    out.write_all(bytes)
}

pub(crate) fn get_u32s(input: &mut impl ColumnInput, count: usize) -> io::Result<Vec<u32>> {
    if encoding(input)? == RUN {
        let values = run(input, count, u64::from(u32::MAX))?;
        return Ok(values.into_iter().map(|v| v as u32).collect());
    }
    let bytes = input.bytes(count as u64 * 4)?;
    Ok(bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

pub(crate) fn get_u64s(input: &mut impl ColumnInput, count: usize) -> io::Result<Vec<u64>> {
    if encoding(input)? == RUN {
        return run(input, count, u64::MAX);
    }
    let bytes = input.bytes(count as u64 * 8)?;
    Ok(bytes
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
        .collect())
}

pub(crate) fn get_blob(input: &mut impl ColumnInput) -> io::Result<Vec<u8>> {
    let length = input.len_u64(1)?;
    input.bytes(length)
}

/// Labels (classification texts) as a JSON array.
fn put_labels(out: &mut impl Write, labels: &[String]) -> io::Result<()> {
    put_blob(out, &serde_json::to_vec(labels).map_err(io::Error::other)?)
}

pub(crate) fn get_labels(input: &mut impl ColumnInput) -> io::Result<Vec<String>> {
    serde_json::from_slice(&get_blob(input)?).map_err(|e| bad(e.to_string()))
}

/// Whether an entry's value is left out of the entry columns: an enabled PDQ entry's code is
/// in the index already, in entry order.
fn value_in_index(signal: &Signal, disabled: bool) -> bool {
    matches!(signal, Signal::Pdq(_)) && !disabled
}

/// Splits `values` (concatenated, of the given types) into signals, taking enabled PDQ
/// values from `codes` (the index's, in entry order).
pub(crate) fn signals(
    types: &[u8],
    values: &[u8],
    mut codes: Option<&mut std::slice::Iter<'_, Code>>,
) -> io::Result<Vec<Signal>> {
    let mut out = Vec::with_capacity(types.len());
    let mut at = 0usize;
    for &code in types {
        let signal_type = SignalType::from_code(code & !DISABLED_BIT)
            .ok_or_else(|| bad("unknown signal type".into()))?;
        if signal_type == SignalType::Pdq
            && code & DISABLED_BIT == 0
            && let Some(codes) = codes.as_mut()
        {
            let words = codes
                .next()
                .ok_or_else(|| bad("more enabled PDQ entries than indexed codes".into()))?;
            out.push(Signal::Pdq(PdqHash::from_words(*words)));
            continue;
        }
        let end = at + signal_type.byte_len();
        let bytes = values
            .get(at..end)
            .ok_or_else(|| bad("values shorter than their types".into()))?;
        out.push(Signal::from_bytes(signal_type, bytes).ok_or_else(|| bad("bad value".into()))?);
        at = end;
    }
    if at != values.len() {
        return Err(bad("values longer than their types".into()));
    }
    Ok(out)
}

/// Writes one row group (at most [`GROUP`] entries) as its byte length and its columns, so a
/// reader can skip to any group and read it alone.
pub(crate) fn write_entry_group(out: &mut impl Write, group: &[Entry]) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(group.len() * 4 + 256);
    encode_entry_group(&mut bytes, group)?;
    out.write_all(&(bytes.len() as u64).to_le_bytes())?;
    out.write_all(&bytes)
}

fn encode_entry_group(out: &mut Vec<u8>, group: &[Entry]) -> io::Result<()> {
    {
        put_u64s(out, group.iter().map(|e| e.id))?;
        put_u32s(out, group.iter().map(|e| e.bank))?;
        let types: Vec<u8> = group
            .iter()
            .map(|e| e.signal.signal_type().code() | if e.disabled { DISABLED_BIT } else { 0 })
            .collect();
        out.write_all(&types)?;
        put_u64s(out, group.iter().map(|e| e.line))?;
        put_u32s(out, group.iter().map(|e| e.provenance))?;
        let values: Vec<u8> = group
            .iter()
            .filter(|e| !value_in_index(&e.signal, e.disabled))
            .flat_map(|e| e.signal.as_bytes().iter().copied())
            .collect();
        put_blob(out, &values)?;
        let mut labels: Vec<String> = Vec::new();
        let mut label_of = Vec::with_capacity(group.len());
        for entry in group {
            label_of.push(match &entry.classification {
                None => NONE_LEN,
                Some(text) => match labels.iter().position(|l| **l == **text) {
                    Some(found) => found as u32,
                    None => {
                        labels.push(text.to_string());
                        (labels.len() - 1) as u32
                    }
                },
            });
        }
        put_labels(out, &labels)?;
        put_u32s(out, label_of.into_iter())?;
        put_u32s(
            out,
            group
                .iter()
                .map(|e| e.metadata.as_ref().map_or(NONE_LEN, |m| m.len() as u32)),
        )?;
        let metadata: Vec<u8> = group
            .iter()
            .filter_map(|e| e.metadata.as_deref())
            .flat_map(|m| m.bytes())
            .collect();
        put_blob(out, &metadata)?;
    }
    Ok(())
}

fn put_refs(out: &mut impl Write, refs: &[EntryRef]) -> io::Result<()> {
    for group in refs.chunks(GROUP) {
        put_u64s(out, group.iter().map(|r| r.id))?;
        put_u32s(out, group.iter().map(|r| r.bank))?;
        put_u32s(out, group.iter().map(|r| r.label))?;
    }
    Ok(())
}

fn get_refs(
    input: &mut impl ColumnInput,
    count: usize,
    labels: usize,
    refs: &mut impl Extend<EntryRef>,
) -> io::Result<()> {
    let mut left = count;
    while left > 0 {
        let size = left.min(GROUP);
        left -= size;
        let ids = get_u64s(input, size)?;
        let banks = get_u32s(input, size)?;
        let label_of = get_u32s(input, size)?;
        for ((id, bank), label) in ids.into_iter().zip(banks).zip(label_of) {
            if label != BANK_LABEL && label as usize >= labels {
                return Err(bad("segment label out of range".into()));
            }
            refs.extend([EntryRef { id, bank, label }]);
        }
    }
    Ok(())
}

/// Writes the segment's refs, labels and digests (its PDQ index is written by the caller).
pub(crate) fn write_segment(out: &mut impl Write, segment: &Segment) -> io::Result<()> {
    put_labels(out, &segment.labels)?;
    out.write_all(&(segment.pdq_refs.len() as u64).to_le_bytes())?;
    let pdq_refs: Vec<EntryRef> = segment.pdq_refs.iter().collect();
    put_refs(out, &pdq_refs)?;
    out.write_all(&(segment.digests.len() as u64).to_le_bytes())?;
    for group in segment.digests.chunks(GROUP) {
        let types: Vec<u8> = group
            .iter()
            .map(|(signal, _)| signal.signal_type().code())
            .collect();
        out.write_all(&types)?;
        let values: Vec<u8> = group
            .iter()
            .flat_map(|(signal, _)| signal.as_bytes().iter().copied())
            .collect();
        put_blob(out, &values)?;
        let refs: Vec<EntryRef> = group.iter().map(|(_, r)| *r).collect();
        put_refs(out, &refs)?;
    }
    Ok(())
}

/// Reads what [`write_segment`] wrote; the PDQ index is attached by the caller.
pub(crate) fn read_segment(input: &mut CrcReader) -> io::Result<Segment> {
    let labels = get_labels(input)?;
    let pdq_count = input.len_u64(1)? as usize;
    let mut pdq_refs = RefColumn::default();
    get_refs(input, pdq_count, labels.len(), &mut pdq_refs)?;
    let digest_count = input.len_u64(17)? as usize;
    let mut digests = Vec::with_capacity(digest_count);
    let mut left = digest_count;
    while left > 0 {
        let size = left.min(GROUP);
        left -= size;
        let types = input.bytes(size as u64)?;
        let values = signals(&types, &get_blob(input)?, None)?;
        if values.iter().any(|v| matches!(v, Signal::Pdq(_))) {
            return Err(bad("a PDQ value in the digest table".into()));
        }
        let mut refs = Vec::with_capacity(size);
        get_refs(input, size, labels.len(), &mut refs)?;
        digests.extend(values.into_iter().zip(refs));
    }
    // Lookups binary-search this table: an unsorted one would miss entries silently.
    let sorted = digests
        .windows(2)
        .all(|pair| (pair[0].0, pair[0].1.id) <= (pair[1].0, pair[1].1.id));
    if !sorted {
        return Err(bad("digest table out of order".into()));
    }
    Ok(Segment {
        pdq: None,
        pdq_refs,
        digests,
        labels,
    })
}
