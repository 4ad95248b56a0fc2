//! The file-system seam.
//!
//! Every file operation of the writer, the compressor, retention and recovery goes through
//! [`Fs`], so tests can inject a failure, or a "crash" that keeps only what was synced, at
//! any single operation. The real implementation never follows a symbolic link
//! (`O_NOFOLLOW`), creates files with an exact mode whatever the umask, and renames without
//! replacing (`RENAME_NOREPLACE`).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

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
    /// Opens `path` for appending, creating it with `mode` if missing.
    fn open_append(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>>;
    /// Creates `path`, failing if anything exists there.
    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>>;
    /// Opens `path` for reading.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FileHandle>>;
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
        self.0.read_at(buf, offset)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn identity(&self) -> io::Result<(u64, u64)> {
        let m = self.0.metadata()?;
        Ok((m.dev(), m.ino()))
    }
}

fn nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// Opened files get exactly `mode`: `open(2)` applies the umask, so set it again.
fn fix_mode(f: &File, mode: u32) -> io::Result<()> {
    let m = f.metadata()?;
    if m.permissions().mode() & 0o7777 != mode {
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

impl Fs for RealFs {
    fn open_append(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>> {
        let f = OpenOptions::new()
            .append(true)
            .read(true)
            .create(true)
            .mode(mode)
            .custom_flags(nofollow())
            .open(path)?;
        if !f.metadata()?.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        fix_mode(&f, mode)?;
        Ok(Box::new(RealFile(f)))
    }

    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>> {
        let f = OpenOptions::new()
            .append(true)
            .read(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(nofollow())
            .open(path)?;
        fix_mode(&f, mode)?;
        Ok(Box::new(RealFile(f)))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(nofollow())
            .open(path)?;
        Ok(Box::new(RealFile(f)))
    }

    fn rename_noreplace(&self, from: &Path, to: &Path) -> io::Result<()> {
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            from,
            rustix::fs::CWD,
            to,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => Ok(()),
            // File systems without RENAME_NOREPLACE: link(2) refuses to replace, then unlink.
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
                std::fs::hard_link(from, to)?;
                if let Err(e) = std::fs::remove_file(from) {
                    // Undo: one file must never carry two names that both look live.
                    let _ = std::fs::remove_file(to);
                    return Err(e);
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            // symlink_metadata: a symlink is reported as not a file and never touched.
            let Ok(m) = std::fs::symlink_metadata(e.path()) else {
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
        let m = std::fs::symlink_metadata(path)?;
        Ok((m.dev(), m.ino()))
    }

    fn free_bytes(&self, dir: &Path) -> io::Result<u64> {
        let s = rustix::fs::statvfs(dir)?;
        Ok(s.f_bavail.saturating_mul(s.f_frsize))
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
        match std::fs::DirBuilder::new().mode(mode).create(dir) {
            Ok(()) => {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
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
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(suffix)
            .rand_bytes(12)
            .permissions(std::fs::Permissions::from_mode(mode))
            .tempfile_in(dir)?;
        // The sink manages the file's life itself (rename into place, or remove on failure).
        let (file, path) = tmp.keep().map_err(|e| e.error)?;
        fix_mode(&file, mode)?;
        Ok((path, Box::new(RealFile(file))))
    }

    fn set_modified(&self, path: &Path, t: SystemTime) -> io::Result<()> {
        OpenOptions::new()
            .write(true)
            .custom_flags(nofollow())
            .open(path)?
            .set_modified(t)
    }
}
