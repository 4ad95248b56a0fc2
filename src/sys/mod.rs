//! The platform seam: every call that differs between Linux, macOS, the other BSDs and
//! Windows lives here, behind one set of functions, so that the writer, rotation, recovery and
//! maintenance never see a `cfg` attribute.
//!
//! | operation | Linux | macOS | FreeBSD, other BSDs | Windows |
//! |---|---|---|---|---|
//! | open without following a link | `O_NOFOLLOW` | `O_NOFOLLOW` | `O_NOFOLLOW` | `FILE_FLAG_OPEN_REPARSE_POINT`, then a symlink or junction is refused (other reparse points, such as cloud placeholders, are opened again normally) |
//! | exact file / directory mode | `fchmod` after `open` | same | same | none: Windows has no modes (ACLs are inherited) |
//! | make a file's data durable | `fdatasync` | `fcntl(F_FULLFSYNC)` | `fdatasync` (`fsync` where missing) | `FlushFileBuffers` |
//! | make a directory's entries durable | `fsync` on the directory | `F_FULLFSYNC` on the directory | `fsync` on the directory | not possible; renames use `MOVEFILE_WRITE_THROUGH` |
//! | rename without replacing | `renameat2(RENAME_NOREPLACE)` | `renamex_np(RENAME_EXCL)` | `link` + `unlink` | `MoveFileExW` without `MOVEFILE_REPLACE_EXISTING`, on `\\?\` paths (beyond 260 characters) |
//! | free space | `statvfs` | `statvfs` | `statvfs` | `GetDiskFreeSpaceExW`, on a `\\?\` path |
//! | file identity | (`st_dev`, `st_ino`) | same | same | (volume serial, 128-bit file id from `FileIdInfo`; file index where unsupported) |
//! | lower the maintenance thread | `setpriority(gettid, 19)` | `PRIO_DARWIN_BG` (thread) | unchanged | `THREAD_PRIORITY_IDLE` |
//! | run at exit | `atexit` | `atexit` | `atexit` | `atexit`: returning from `main` only, not `process::exit` |
//!
//! On every platform a file is opened so that others may read, rename and delete it while the
//! sink holds it (Windows: `FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE`, the
//! standard library's default), so rotation never fails because a shipper reads the file.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

pub(crate) use imp::{
    at_exit, create_dir, file_identity, free_bytes, is_symlink_refusal, lower_thread_priority,
    open_nofollow, path_identity, read_at, rename_noreplace, set_len, set_mode, sync_data,
    sync_dir, temp_permissions,
};

#[cfg(test)]
pub(crate) use imp::{errno, symlink_refused};
