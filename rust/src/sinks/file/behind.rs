//! Drop-behind: what of a daily file the writer hands back to the kernel.
//!
//! A daily file is written once and read, if at all, by a shipper that follows its end or
//! a job that runs the next day. Left alone, every byte of it stays in the page cache
//! until memory runs out, pushing out other processes' pages; and on a VM that returns
//! free memory to its host (free page reporting, a balloon), each new page of cache costs
//! a fault on the host the first time it is touched. Measured in this project's VM
//! (docs/performance.md, "Drop-behind"): the writer thread spent 1.2-1.8 µs per bare-GET
//! event with earlier runs' files in the cache, 0.4-0.5 µs dropping behind.
//!
//! So the writer keeps the last `KEEP` bytes of each open file cached (a shipper that
//! keeps up reads them from memory) and, each time another `KEEP` has been written, asks
//! the kernel (`posix_fadvise(POSIX_FADV_DONTNEED)`, through `DataFile::release`) to drop
//! everything before that. The kernel drops clean pages and starts writing back dirty
//! ones, which it cannot drop yet: so each request covers the previous chunk again, and
//! pages dirty the first time are dropped the second. Durability is unchanged: fadvise
//! never discards data, and `fsync_interval` still decides when it is on disk.

/// Bytes at the end of a file that stay cached; also how often a release is asked for.
pub const KEEP: u64 = 8 << 20;

/// Where a file's releases have reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Behind {
    /// Everything before this has been asked for once, everything before
    /// `released - KEEP` twice.
    released: u64,
}

impl Behind {
    /// A file opened at `len`: what it already held is left as it is.
    pub fn at(len: u64) -> Behind {
        Behind { released: len }
    }

    /// After a write that brought the file to `len`: the range to release now, if any.
    pub fn next(&mut self, len: u64) -> Option<(u64, u64)> {
        if len < self.released + 2 * KEEP {
            return None;
        }
        let to = len - KEEP;
        let from = self.released.saturating_sub(KEEP);
        self.released = to;
        Some((from, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_all_but_the_tail_and_asks_twice_for_each_range() {
        let mut b = Behind::at(0);
        assert_eq!(b.next(KEEP), None);
        assert_eq!(b.next(2 * KEEP - 1), None);
        assert_eq!(b.next(2 * KEEP), Some((0, KEEP)));
        assert_eq!(b.next(3 * KEEP - 1), None);
        assert_eq!(b.next(3 * KEEP), Some((0, 2 * KEEP)));
        assert_eq!(b.next(4 * KEEP + 5), Some((KEEP, 3 * KEEP + 5)));
        assert_eq!(b.next(5 * KEEP), None);
        assert_eq!(b.next(6 * KEEP + 5), Some((2 * KEEP + 5, 5 * KEEP + 5)));
    }

    #[test]
    fn a_reopened_file_keeps_what_it_held() {
        let mut b = Behind::at(100 * KEEP);
        assert_eq!(b.next(101 * KEEP), None);
        assert_eq!(b.next(102 * KEEP), Some((99 * KEEP, 101 * KEEP)));
    }
}
