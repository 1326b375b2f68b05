//! The large arrays of a snapshot (codes, directories, bucket cells) read in parallel.
//!
//! At 10M codes they are ~890 MB, and most of a load's time is the kernel giving the arrays
//! fresh pages while it copies the file into them; that work happens in whichever thread
//! touches the pages, so spreading the arrays over the cores divides the load's wall time.
//! Each array is read with positional reads in chunks that are checksummed while still in
//! cache; the caller folds the per-array checksums back into the file's CRC in file order
//! (`crc32fast::Hasher::combine`), so the file is still verified byte for byte.
//!
//! This module only moves bytes: it must not interpret them (the caller checks every
//! invariant after the read).

use std::fs::File;
use std::io;
use std::thread;

use crc32fast::Hasher;

/// Bytes read and checksummed at a time: small enough to still be in L2 when the CRC reads it.
const CHUNK: usize = 1 << 20;
/// Below this many bytes per thread, a thread costs more than it saves.
const BYTES_PER_THREAD: usize = 16 << 20;

/// One array's place in the file and the memory it is read into.
pub(super) struct Region<'a> {
    pub(super) offset: u64,
    pub(super) bytes: &'a mut [u8],
}

/// Fills every region from `file` and returns the CRC state of each, in the order given.
pub(super) fn read_regions(file: &File, regions: Vec<Region<'_>>) -> io::Result<Vec<Hasher>> {
    let total: usize = regions.iter().map(|r| r.bytes.len()).sum();
    let workers = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(total / BYTES_PER_THREAD + 1);
    read_regions_with(file, regions, workers, CHUNK)
}

/// [`read_regions`] with the thread count and chunk size given (tests use small ones).
pub(super) fn read_regions_with(
    file: &File,
    regions: Vec<Region<'_>>,
    workers: usize,
    chunk: usize,
) -> io::Result<Vec<Hasher>> {
    let count = regions.len();
    let workers = workers.clamp(1, count.max(1));
    // Largest first, each to the least loaded worker: near-even shares for a handful of arrays.
    let mut order: Vec<(usize, Region<'_>)> = regions.into_iter().enumerate().collect();
    order.sort_by_key(|(_, region)| std::cmp::Reverse(region.bytes.len()));
    let mut shares: Vec<(usize, Vec<(usize, Region<'_>)>)> =
        (0..workers).map(|_| (0, Vec::new())).collect();
    for (slot, region) in order {
        if let Some(share) = shares.iter_mut().min_by_key(|(load, _)| *load) {
            share.0 += region.bytes.len();
            share.1.push((slot, region));
        }
    }
    let results: Vec<io::Result<Vec<(usize, Hasher)>>> = if workers == 1 {
        shares
            .into_iter()
            .map(|(_, share)| read_share(file, share, chunk))
            .collect()
    } else {
        thread::scope(|scope| {
            let handles: Vec<_> = shares
                .into_iter()
                .map(|(_, share)| scope.spawn(move || read_share(file, share, chunk)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    };
    let mut hashers: Vec<Option<Hasher>> = (0..count).map(|_| None).collect();
    for result in results {
        for (slot, hasher) in result? {
            if let Some(place) = hashers.get_mut(slot) {
                *place = Some(hasher);
            }
        }
    }
    hashers
        .into_iter()
        .map(|hasher| hasher.ok_or_else(|| io::Error::other("a region was not read")))
        .collect()
}

fn read_share(
    file: &File,
    share: Vec<(usize, Region<'_>)>,
    chunk: usize,
) -> io::Result<Vec<(usize, Hasher)>> {
    share
        .into_iter()
        .map(|(slot, region)| {
            let mut hasher = Hasher::new();
            let mut offset = region.offset;
            for piece in region.bytes.chunks_mut(chunk.max(1)) {
                read_at(file, piece, offset)?;
                hasher.update(piece);
                offset += piece.len() as u64;
            }
            Ok((slot, hasher))
        })
        .collect()
}

#[cfg(unix)]
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset)
}

#[cfg(windows)]
fn read_at(file: &File, mut buffer: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buffer.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buffer, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(read) => {
                buffer = &mut buffer[read..];
                offset += read as u64;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(not(any(unix, windows)))]
fn read_at(_: &File, _: &mut [u8], _: u64) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn regions_read_by_several_threads_match_the_file_and_its_checksum() {
        let data: Vec<u8> = (0..200_003u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&data).unwrap();
        // Regions with gaps between them, one empty, one ending at the end of the file.
        let bounds = [
            (10usize, 70_000usize),
            (70_100, 70_100),
            (70_100, 150_000),
            (150_001, 200_003),
        ];
        for workers in [1, 2, 3, 8] {
            let mut buffers: Vec<Vec<u8>> = bounds.iter().map(|&(s, e)| vec![0; e - s]).collect();
            let regions = buffers
                .iter_mut()
                .zip(&bounds)
                .map(|(bytes, &(start, _))| Region {
                    offset: start as u64,
                    bytes,
                })
                .collect();
            let hashers = read_regions_with(&file, regions, workers, 4096 + 7).unwrap();
            let mut folded = Hasher::new();
            for ((buffer, &(start, end)), hasher) in buffers.iter().zip(&bounds).zip(&hashers) {
                assert_eq!(buffer.as_slice(), &data[start..end], "workers={workers}");
                assert_eq!(
                    hasher.clone().finalize(),
                    crc32fast::hash(&data[start..end])
                );
                folded.combine(hasher);
            }
            let regions_only: Vec<u8> = bounds
                .iter()
                .flat_map(|&(s, e)| data[s..e].to_vec())
                .collect();
            assert_eq!(folded.finalize(), crc32fast::hash(&regions_only));
        }
    }

    #[test]
    fn a_region_past_the_end_of_the_file_is_an_error() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[7u8; 1000]).unwrap();
        for workers in [1, 2] {
            let mut first = vec![0u8; 100];
            let mut past = vec![0u8; 100];
            let regions = vec![
                Region {
                    offset: 0,
                    bytes: &mut first,
                },
                Region {
                    offset: 950,
                    bytes: &mut past,
                },
            ];
            assert!(read_regions_with(&file, regions, workers, 64).is_err());
        }
    }
}
