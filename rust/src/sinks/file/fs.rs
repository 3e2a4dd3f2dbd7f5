//! The file writer's filesystem seam: the few operations it performs on the data
//! directory, behind a trait so that tests can make each one fail (disk full on open, on
//! write, on truncate) without filling a disk. The same shape as Vector's disk buffer
//! (`Filesystem` / `AsyncFile` in lib/vector-buffers/src/variants/disk_v2/io.rs), which
//! tests its failure paths through a filesystem it controls.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A daily file opened for appending (and reading its tail).
#[allow(clippy::len_without_is_empty)]
pub trait DataFile: Send {
    fn len(&self) -> io::Result<u64>;
    /// Reads at `offset` (the tail check after opening).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Appends `buf` at the end. On error some of it may have been written.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    fn sync_data(&mut self) -> io::Result<()>;
    /// Lets the kernel drop `[from, to)` from the page cache once written back
    /// (`behind.rs`). A hint: nothing is lost if it does nothing.
    fn release(&mut self, _from: u64, _to: u64) -> io::Result<()> {
        Ok(())
    }
}

pub trait Fs: Send + 'static {
    type File: DataFile;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Opens (creating) `path` for appending and reading.
    fn open_append(&self, path: &Path) -> io::Result<Self::File>;
}

/// The real filesystem.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

impl Fs for RealFs {
    type File = File;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn open_append(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
    }
}

impl DataFile for File {
    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Write::write_all(self, buf)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }

    #[cfg(target_os = "linux")]
    fn release(&mut self, from: u64, to: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let (offset, len) = (off_t(from)?, off_t(to.saturating_sub(from))?);
        // SAFETY: fadvise takes a descriptor this File owns and reads no memory of ours.
        let r = unsafe {
            libc::posix_fadvise(self.as_raw_fd(), offset, len, libc::POSIX_FADV_DONTNEED)
        };
        match r {
            0 => Ok(()),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }
}

#[cfg(target_os = "linux")]
fn off_t(n: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(n).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))
}

/// Where a file's last complete line ends: its length when it ends with a newline (or is
/// empty), else just past the last newline (0 if none). A write cut short by a full disk,
/// whose truncate failed too, or a crash in the middle of a write leaves such a tail.
pub fn complete_len(f: &impl DataFile) -> io::Result<u64> {
    const CHUNK: u64 = 64 << 10;
    let len = f.len()?;
    let mut end = len;
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let chunk = &mut buf[..(end - start) as usize];
        read_exact_at(f, chunk, start)?;
        if end == len && chunk.last() == Some(&b'\n') {
            return Ok(len);
        }
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

fn read_exact_at(f: &impl DataFile, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match f.read_at(buf, offset)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}
