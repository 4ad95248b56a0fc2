//! The file-system seam.
//!
//! Every file operation of the writer, the compressor, retention and recovery goes through
//! [`Fs`], so tests can inject a failure, or a "crash" that keeps only what was synced, at
//! any single operation. The real implementation never follows a symbolic link (or, on
//! Windows, a junction), creates files with an exact mode whatever the umask (Unix),
//! leaves an existing file's mode and group alone, and renames without replacing; how each
//! platform does that is in `crate::sys`.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::sys;

/// What `read_dir` reports about one entry.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) len: u64,
    pub(crate) modified: SystemTime,
    pub(crate) is_file: bool,
}

/// An open file as the sink uses it.
pub(crate) trait FileHandle: Write + Send + fmt::Debug {
    /// `pread(2)`: reads at `offset` without moving the append position.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// `fdatasync(2)`: the data and the metadata needed to read it back (the size), not the
    /// timestamps. Directories get a full fsync (`Fs::sync_dir`).
    fn sync(&mut self) -> io::Result<()>;
    /// Truncates or extends to `len`.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Current length.
    fn len(&self) -> io::Result<u64>;
    /// (device, inode), to notice when the name now points elsewhere.
    fn identity(&self) -> io::Result<(u64, u64)>;
}

/// The operations the sink performs on the file system.
pub(crate) trait Fs: Send + Sync + fmt::Debug {
    /// Opens `path` for appending, creating it with `mode` if missing; an existing file keeps
    /// its mode and group.
    fn open_append(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>>;
    /// Creates `path`, failing if anything exists there.
    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>>;
    /// Opens `path` for reading.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FileHandle>>;
    /// Writes `data` at `offset` of the existing file `path`, over what is there (an append
    /// handle cannot: `O_APPEND` makes `pwrite(2)` append on Linux).
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Renames `from` to `to`, failing with `AlreadyExists` if `to` exists.
    fn rename_noreplace(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// fsync of a directory, making renames, creations and removals in it durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<Entry>>;
    /// (device, inode) of the file at `path`, without following a symlink.
    fn identity(&self, path: &Path) -> io::Result<(u64, u64)>;
    /// Bytes available to unprivileged users on the file system holding `dir`.
    fn free_bytes(&self, dir: &Path) -> io::Result<u64>;
    /// Creates `dir` and its parents, the last one with `mode`.
    fn create_dir_all(&self, dir: &Path, mode: u32) -> io::Result<()>;
    /// Creates a new, exclusive temp file with an unpredictable name in `dir`.
    fn create_temp(
        &self,
        dir: &Path,
        stem: &str,
        mode: u32,
    ) -> io::Result<(PathBuf, Box<dyn FileHandle>)>;
    /// Sets the modification time (compressed segments keep their source's).
    fn set_modified(&self, path: &Path, t: SystemTime) -> io::Result<()>;
}

/// Removes `path` unless it is gone already; whether it removed it. A name gone since it was
/// listed was removed by someone else, which is what the caller wanted. (On Windows, the name
/// of a file removed while another handle holds it open can stay listed, a delete pending,
/// until that handle closes; removing it again fails with `NotFound`.)
pub(crate) fn remove_if_present(fs: &dyn Fs, path: &Path) -> io::Result<bool> {
    match fs.remove(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RealFs;

#[derive(Debug)]
struct RealFile(File);

impl Write for RealFile {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl FileHandle for RealFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        sys::read_at(&self.0, buf, offset)
    }
    fn sync(&mut self) -> io::Result<()> {
        sys::sync_data(&self.0)
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        sys::set_len(&self.0, len)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn identity(&self) -> io::Result<(u64, u64)> {
        sys::file_identity(&self.0)
    }
}

impl Fs for RealFs {
    fn open_append(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>> {
        // A file the sink creates gets exactly `mode`; one that exists (logrotate's `create
        // 0640 app logreaders`, an operator's chmod) keeps its mode and group. Creating and
        // opening are tried in turn because the file can appear or vanish in between.
        let mut tries = 0;
        let f = loop {
            tries += 1;
            let created = sys::open_nofollow(
                OpenOptions::new().append(true).read(true).create_new(true),
                path,
                mode,
            );
            match created {
                Ok(f) => {
                    sys::set_mode(&f, mode)?;
                    break f;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            match sys::open_nofollow(OpenOptions::new().append(true).read(true), path, 0) {
                Ok(f) => break f,
                Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 3 => {}
                Err(e) => return Err(e),
            }
        };
        if !f.metadata()?.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(Box::new(RealFile(f)))
    }

    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>> {
        let f = sys::open_nofollow(
            OpenOptions::new().append(true).read(true).create_new(true),
            path,
            mode,
        )?;
        sys::set_mode(&f, mode)?;
        Ok(Box::new(RealFile(f)))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        let f = sys::open_nofollow(OpenOptions::new().read(true), path, 0)?;
        Ok(Box::new(RealFile(f)))
    }

    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        use std::io::{Seek, SeekFrom};
        let mut f = sys::open_nofollow(OpenOptions::new().write(true), path, 0)?;
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(data)
    }

    fn rename_noreplace(&self, from: &Path, to: &Path) -> io::Result<()> {
        sys::rename_noreplace(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        sys::sync_dir(dir)
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            // A symlink is reported as not a file and never touched: `DirEntry::metadata`
            // does not follow it, and it stats relative to the open directory, not by a walk
            // of the whole path (a backlog of hundreds of segments is scanned once per
            // compressed segment).
            let Ok(m) = e.metadata() else {
                continue;
            };
            out.push(Entry {
                name,
                len: m.len(),
                modified: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                is_file: m.file_type().is_file(),
            });
        }
        Ok(out)
    }

    fn identity(&self, path: &Path) -> io::Result<(u64, u64)> {
        sys::path_identity(path)
    }

    fn free_bytes(&self, dir: &Path) -> io::Result<u64> {
        sys::free_bytes(dir)
    }

    fn create_dir_all(&self, dir: &Path, mode: u32) -> io::Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
        match sys::create_dir(dir, mode) {
            Ok(()) => {
                // The new directory's own entry must survive a power loss too.
                match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    Some(parent) => self.sync_dir(parent),
                    None => self.sync_dir(Path::new(".")),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn create_temp(
        &self,
        dir: &Path,
        stem: &str,
        mode: u32,
    ) -> io::Result<(PathBuf, Box<dyn FileHandle>)> {
        let (prefix, suffix) = crate::segment::name::temp_affixes(stem);
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(suffix).rand_bytes(12);
        if let Some(p) = sys::temp_permissions(mode) {
            builder.permissions(p);
        }
        let tmp = builder.tempfile_in(dir)?;
        // The sink manages the file's life itself (rename into place, or remove on failure).
        let (file, path) = tmp.keep().map_err(|e| e.error)?;
        sys::set_mode(&file, mode)?;
        Ok((path, Box::new(RealFile(file))))
    }

    fn set_modified(&self, path: &Path, t: SystemTime) -> io::Result<()> {
        sys::open_nofollow(OpenOptions::new().write(true), path, 0)?.set_modified(t)
    }
}
