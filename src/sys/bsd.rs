//! FreeBSD, OpenBSD, NetBSD, DragonFly and any other POSIX system.

use std::fs::File;
use std::io;
use std::path::Path;

/// No atomic no-replace rename here: `link(2)` (which refuses an existing target) then
/// `unlink(2)`. A crash between the two leaves one file under two names; recovery keeps the
/// final name and removes the other.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    super::link_then_unlink(from, to)
}

/// `fdatasync(2)` (the standard library falls back to `fsync(2)` where it is missing).
pub(crate) fn sync_data(f: &File) -> io::Result<()> {
    f.sync_data()
}

/// `fsync(2)`, for directories.
pub(crate) fn sync_all(f: &File) -> io::Result<()> {
    f.sync_all()
}

/// Left at the application's priority: `setpriority(PRIO_PROCESS)` would lower the whole
/// process here, and FreeBSD's idle class (`rtprio_thread`) needs privileges by default.
pub(crate) fn lower_thread_priority() {}
