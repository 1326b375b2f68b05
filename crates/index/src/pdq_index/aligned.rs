//! Owned arrays for the index's large tables (codes, directories, bucket cells), aligned to
//! cache lines and, when large, placed a few lines past a 2 MiB boundary.
//!
//! Why not `Vec`: the allocator places a large `Vec` 16 bytes past a page boundary, so every
//! other 32-byte code straddled two cache lines and each directory line's 16 buckets sat
//! across two lines. A 10M single query reads ~15,000 random lines; aligned arrays made it
//! 1.12x faster (two binaries alternated). Mapping from a 2 MiB boundary also lets the whole
//! array, not only the huge pages inside it, be backed by 2 MiB pages (`MADV_HUGEPAGE`).
//!
//! On Linux a large array is an anonymous mapping that the kernel zeroes on first touch, so a
//! snapshot read into it touches each page once, in the thread that reads it (see
//! `snapshot::bulk`); elsewhere it comes from the global allocator, zeroed.
//!
//! This module must not hand out uninitialised memory: every array starts zeroed, and only
//! element types for which all-zero bytes are a valid value may be stored.

use std::alloc::Layout;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Element types of [`AlignedArray`].
///
/// # Safety
/// All-zero bytes must be a valid value of the type, and it must not need dropping.
pub(crate) unsafe trait Zeroable: Copy {}
// SAFETY: integers and arrays of integers are valid as zeros and have no drop glue.
unsafe impl Zeroable for u32 {}
// SAFETY: as above.
unsafe impl Zeroable for [u64; 4] {}

pub(crate) const HUGE_PAGE: usize = 2 << 20;
const LINE: usize = 64;

enum Backing {
    /// No allocation (an empty array).
    None,
    /// From the global allocator with this layout.
    Heap(Layout),
    /// An anonymous mapping of `len` bytes at `start`, which the array starts a few lines into.
    #[cfg(target_os = "linux")]
    Mapped { start: usize, len: usize },
}

/// A fixed-length, zero-initialised array aligned to at least a cache line.
pub(crate) struct AlignedArray<T: Zeroable> {
    ptr: NonNull<T>,
    len: usize,
    backing: Backing,
}

// SAFETY: the array owns its elements exclusively, like a `Vec<T>`.
unsafe impl<T: Zeroable + Send> Send for AlignedArray<T> {}
// SAFETY: shared access only hands out `&[T]`, like a `Vec<T>`.
unsafe impl<T: Zeroable + Sync> Sync for AlignedArray<T> {}

impl<T: Zeroable> AlignedArray<T> {
    /// `len` zeroed elements. Panics like `Vec` if the size overflows `isize`, and aborts like
    /// `Vec` if memory runs out.
    pub(crate) fn zeroed(len: usize) -> Self {
        let bytes = len
            .checked_mul(size_of::<T>())
            .filter(|&bytes| bytes <= isize::MAX as usize - HUGE_PAGE)
            .unwrap_or_else(|| panic!("capacity overflow: {len} elements"));
        if bytes == 0 {
            return Self {
                ptr: NonNull::dangling(),
                len,
                backing: Backing::None,
            };
        }
        #[cfg(target_os = "linux")]
        if bytes >= 2 * HUGE_PAGE
            && let Some((start, mapped, offset)) = map_aligned(bytes)
            && let Some(ptr) = NonNull::new((start + offset) as *mut T)
        {
            return Self {
                ptr,
                len,
                backing: Backing::Mapped { start, len: mapped },
            };
        }
        let layout = Layout::from_size_align(bytes, LINE.max(align_of::<T>()))
            .unwrap_or_else(|_| panic!("capacity overflow: {len} elements"));
        // SAFETY: the layout has a non-zero size (checked above).
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<T>()) else {
            std::alloc::handle_alloc_error(layout)
        };
        Self {
            ptr,
            len,
            backing: Backing::Heap(layout),
        }
    }

    /// A copy of `values`.
    pub(crate) fn from_slice(values: &[T]) -> Self {
        let mut array = Self::zeroed(values.len());
        array.copy_from_slice(values);
        array
    }
}

/// Maps zeroed memory for `bytes` starting on a 2 MiB boundary, advised to be backed by 2 MiB
/// pages; returns its start, its length and how far into it the array starts. Each array
/// starts a different number of cache lines (under 32 KiB) past the boundary, so that arrays
/// swept side by side do not compete for the same cache sets: at 1M codes, arrays all on the
/// boundary ran batches ~3 % slower than the old unaligned `Vec`s, staggered ~1.5 %.
/// `None` if the kernel refuses the mapping.
#[cfg(target_os = "linux")]
fn map_aligned(bytes: usize) -> Option<(usize, usize, usize)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const PAGE: usize = 4096;
    static ARRAYS: AtomicUsize = AtomicUsize::new(0);
    let offset = (ARRAYS.fetch_add(1, Ordering::Relaxed) * 37 % 512) * LINE;
    let mapped = (offset + bytes).next_multiple_of(PAGE);
    let reserve = mapped + HUGE_PAGE;
    // SAFETY: a fresh private anonymous mapping at an address the kernel picks; it aliases
    // nothing.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            reserve,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    let start = (base as usize).next_multiple_of(HUGE_PAGE);
    let head = start - base as usize;
    let tail = reserve - head - mapped;
    // SAFETY: the head and tail lie inside the mapping just made and outside the part kept;
    // MADV_HUGEPAGE only changes how the kept part is backed, never its contents.
    unsafe {
        if head > 0 {
            libc::munmap(base, head);
        }
        if tail > 0 {
            libc::munmap((start + mapped) as *mut libc::c_void, tail);
        }
        libc::madvise(start as *mut libc::c_void, mapped, libc::MADV_HUGEPAGE);
    }
    Some((start, mapped, offset))
}

impl<T: Zeroable> Drop for AlignedArray<T> {
    fn drop(&mut self) {
        match self.backing {
            Backing::None => {}
            // SAFETY: allocated by `alloc_zeroed` with exactly this layout, freed once.
            Backing::Heap(layout) => unsafe {
                std::alloc::dealloc(self.ptr.as_ptr().cast(), layout);
            },
            // SAFETY: the mapping kept by `map_aligned`, unmapped once.
            #[cfg(target_os = "linux")]
            Backing::Mapped { start, len } => unsafe {
                libc::munmap(start as *mut libc::c_void, len);
            },
        }
    }
}

impl<T: Zeroable> Deref for AlignedArray<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points to `len` initialised (zeroed or since written) elements owned
        // by this array, or is dangling with `len` 0 or a zero-sized `T`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> DerefMut for AlignedArray<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> Clone for AlignedArray<T> {
    fn clone(&self) -> Self {
        Self::from_slice(self)
    }
}

impl<T: Zeroable + PartialEq> PartialEq for AlignedArray<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Zeroable + Eq> Eq for AlignedArray<T> {}

impl<T: Zeroable + fmt::Debug> fmt::Debug for AlignedArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_start_zeroed_aligned_and_keep_what_is_written() {
        for len in [0usize, 1, 15, 1000, 3 * HUGE_PAGE / 4 + 5] {
            let mut array = AlignedArray::<u32>::zeroed(len);
            assert_eq!(array.len(), len);
            assert!(array.iter().all(|&v| v == 0));
            if len > 0 {
                assert_eq!(array.as_ptr() as usize % LINE, 0, "len {len}");
            }
            if len * 4 >= 2 * HUGE_PAGE && cfg!(target_os = "linux") {
                // A few lines past a 2 MiB boundary (see `map_aligned`).
                assert!(array.as_ptr() as usize % HUGE_PAGE < 32 << 10, "len {len}");
            }
            for (i, v) in array.iter_mut().enumerate() {
                *v = i as u32 ^ 0xA5A5;
            }
            let copy = array.clone();
            assert_eq!(copy, array);
            assert!(
                copy.iter()
                    .enumerate()
                    .all(|(i, &v)| v == i as u32 ^ 0xA5A5)
            );
        }
        let codes = AlignedArray::from_slice(&[[1u64, 2, 3, 4]; 3]);
        assert_eq!(codes.as_ptr() as usize % LINE, 0);
        assert_eq!(&*codes, &[[1u64, 2, 3, 4]; 3]);
        assert_eq!(
            format!("{:?}", AlignedArray::<u32>::from_slice(&[7, 8])),
            "[7, 8]"
        );
    }

    #[test]
    fn large_arrays_start_on_lines_at_different_offsets() {
        let arrays: Vec<AlignedArray<u32>> =
            (0..4).map(|_| AlignedArray::zeroed(HUGE_PAGE)).collect();
        let mut offsets: Vec<usize> = arrays
            .iter()
            .map(|a| a.as_ptr() as usize % HUGE_PAGE)
            .collect();
        for &offset in &offsets {
            assert_eq!(offset % LINE, 0, "{offsets:?}");
        }
        if cfg!(target_os = "linux") {
            assert!(offsets.iter().all(|&o| o < 32 << 10), "{offsets:?}");
            offsets.sort_unstable();
            offsets.dedup();
            assert_eq!(offsets.len(), 4, "staggered");
        }
        assert!(
            arrays
                .iter()
                .all(|a| a.len() == HUGE_PAGE && a.iter().all(|&v| v == 0))
        );
    }
}
