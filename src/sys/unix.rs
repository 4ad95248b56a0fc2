//! POSIX systems: Linux, macOS, FreeBSD and the other BSDs. What differs between them (the
//! no-replace rename, durable file sync, thread priority) is in `linux.rs`, `macos.rs` and
//! `bsd.rs`.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

#[cfg(any(target_os = "linux", target_os = "android"))]
#[path = "linux.rs"]
mod os;
#[cfg(any(target_os = "macos", target_os = "ios"))]
#[path = "macos.rs"]
mod os;
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios"
)))]
#[path = "bsd.rs"]
mod os;

use os::sync_all;
pub(crate) use os::{lower_thread_priority, rename_noreplace, sync_data};

/// Opens `path` with `opts`, creating it with `mode` (before the umask) when `opts` creates;
/// a symbolic link at `path` is refused (`O_NOFOLLOW`: `ELOOP`).
pub(crate) fn open_nofollow(opts: &mut OpenOptions, path: &Path, mode: u32) -> io::Result<File> {
    opts.mode(mode)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// Gives `f` exactly `mode`: `open(2)` applied the umask.
pub(crate) fn set_mode(f: &File, mode: u32) -> io::Result<()> {
    if f.metadata()?.permissions().mode() & 0o7777 != mode {
        f.set_permissions(Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// The permissions a new temp file is created with.
pub(crate) fn temp_permissions(mode: u32) -> Option<Permissions> {
    Some(Permissions::from_mode(mode))
}

/// Creates the directory `dir` (its parent exists) with exactly `mode`.
pub(crate) fn create_dir(dir: &Path, mode: u32) -> io::Result<()> {
    std::fs::DirBuilder::new().mode(mode).create(dir)?;
    std::fs::set_permissions(dir, Permissions::from_mode(mode))
}

/// `pread(2)`: reads at `offset` without moving the file position.
pub(crate) fn read_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    f.read_at(buf, offset)
}

pub(crate) fn set_len(f: &File, len: u64) -> io::Result<()> {
    f.set_len(len)
}

/// `fsync(2)` of a directory: renames, creations and removals in it become durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    sync_all(&File::open(dir)?)
}

pub(crate) fn file_identity(f: &File) -> io::Result<(u64, u64)> {
    let m = f.metadata()?;
    Ok((m.dev(), m.ino()))
}

/// The identity of what is at `path` itself (a symlink is not followed).
pub(crate) fn path_identity(path: &Path) -> io::Result<(u64, u64)> {
    let m = std::fs::symlink_metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// Bytes available to unprivileged users on the file system holding `dir`.
pub(crate) fn free_bytes(dir: &Path) -> io::Result<u64> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// What `open(2)` with `O_NOFOLLOW` answers for a symlink: `ELOOP`.
pub(crate) fn symlink_refused() -> io::Error {
    rustix::io::Errno::LOOP.into()
}

pub(crate) fn is_symlink_refusal(err: &io::Error) -> bool {
    err.raw_os_error() == symlink_refused().raw_os_error()
}

/// The no-replace rename every POSIX system has: `link(2)` refuses an existing target; then
/// the old name is removed. Used where no atomic no-replace rename exists.
pub(super) fn link_then_unlink(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::hard_link(from, to)?;
    if let Err(e) = std::fs::remove_file(from) {
        // Undo: one file must never carry two names that both look live.
        let _ = std::fs::remove_file(to);
        return Err(e);
    }
    Ok(())
}

/// Registers `f` to run when the process exits through `exit(3)` (which
/// `std::process::exit` calls). Returns whether it will run.
pub(crate) fn at_exit(f: extern "C" fn()) -> bool {
    // SAFETY: `atexit` only stores the function pointer; the caller passes an `extern "C"`
    // function without arguments that never unwinds, as `atexit` requires.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::atexit(f) };
    rc == 0
}

/// Raw error codes the fault-injecting file system returns, as the system would.
#[cfg(test)]
pub(crate) mod errno {
    pub(crate) const DISK_FULL: i32 = libc::ENOSPC;
    pub(crate) const IO: i32 = libc::EIO;
    pub(crate) const IS_A_DIRECTORY: i32 = libc::EISDIR;
}
