//! Linux (and Android).

use std::fs::File;
use std::io;
use std::path::Path;

/// `renameat2(RENAME_NOREPLACE)`; on file systems without it, `link` + `unlink`.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            super::link_then_unlink(from, to)
        }
        Err(e) => Err(e.into()),
    }
}

/// `fdatasync(2)`: the data and the metadata needed to read it back (the size), not the
/// timestamps.
pub(crate) fn sync_data(f: &File) -> io::Result<()> {
    f.sync_data()
}

/// `fsync(2)`, for directories.
pub(crate) fn sync_all(f: &File) -> io::Result<()> {
    f.sync_all()
}

/// nice 19 for the calling thread only: on Linux `setpriority(PRIO_PROCESS, tid)` applies to
/// one thread. Best effort.
pub(crate) fn lower_thread_priority() {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
}
