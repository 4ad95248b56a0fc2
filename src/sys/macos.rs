//! macOS (and iOS).

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

/// `renamex_np(RENAME_EXCL)` (through `renameatx_np`, macOS 10.12 and later); where the
/// system or the file system lacks it, `link` + `unlink`.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    use rustix::io::Errno;
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) if e == Errno::NOSYS || e == Errno::NOTSUP || e == Errno::INVAL => {
            super::link_then_unlink(from, to)
        }
        Err(e) => Err(e.into()),
    }
}

/// `fcntl(F_FULLFSYNC)`: on macOS `fsync` hands the data to the drive but does not flush the
/// drive's own write cache, so it does not survive a power loss; `F_FULLFSYNC` does. It is
/// the default for every sync the sink makes (files and directories), because "survives a
/// power loss" is the promise of `sync()`. File systems that do not support it (some network
/// and FAT volumes answer `ENOTSUP`, `EINVAL` or `ENOTTY`) get a plain `fsync`.
pub(crate) fn sync_data(f: &File) -> io::Result<()> {
    use rustix::io::Errno;
    match rustix::fs::fcntl_fullfsync(f.as_fd()) {
        Ok(()) => Ok(()),
        Err(e) if e == Errno::NOTSUP || e == Errno::INVAL || e == Errno::NOTTY => {
            rustix::fs::fsync(f.as_fd()).map_err(io::Error::from)
        }
        Err(e) => Err(e.into()),
    }
}

/// Directories get the same `F_FULLFSYNC`.
pub(crate) fn sync_all(f: &File) -> io::Result<()> {
    sync_data(f)
}

/// `setpriority(PRIO_DARWIN_THREAD, 0, PRIO_DARWIN_BG)`: the calling thread only, background
/// CPU and I/O priority (a plain `setpriority(PRIO_PROCESS)` would lower the whole
/// application). Best effort.
pub(crate) fn lower_thread_priority() {
    // SAFETY: `setpriority` takes plain integers and touches no memory of ours.
    #[allow(unsafe_code)]
    unsafe {
        libc::setpriority(libc::PRIO_DARWIN_THREAD, 0, libc::PRIO_DARWIN_BG);
    }
}
