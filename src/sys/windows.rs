//! Windows.
//!
//! What Windows cannot give, and what the sink does instead:
//! - no directory fsync: a directory cannot be flushed. Renames are made with
//!   `MOVEFILE_WRITE_THROUGH` (the call returns once the rename is on disk); a new file's or a
//!   removed file's directory entry is as durable as NTFS's metadata journal makes it, with no
//!   call to wait for it. `sync_dir` does nothing.
//! - no file modes: `file_mode` and `dir_mode` are ignored; files inherit the directory's ACL.
//! - `flush_on_exit` covers returning from `main` only: `std::process::exit` calls
//!   `ExitProcess`, which ends every other thread, the writer included, and runs no `atexit`
//!   handler.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::Path;

use windows_sys::Win32::Foundation::{
    ERROR_CANT_RESOLVE_FILENAME, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    GetDiskFreeSpaceExW, GetFileInformationByHandle, MoveFileExW, ReOpenFile,
    BY_HANDLE_FILE_INFORMATION, FILE_ATTRIBUTE_REPARSE_POINT, FILE_FLAG_BACKUP_SEMANTICS,
    FILE_FLAG_OPEN_REPARSE_POINT, FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE,
    MOVEFILE_WRITE_THROUGH,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentThread, SetThreadPriority, THREAD_PRIORITY_IDLE,
};

/// Others may read, write, rename and delete a file while the sink holds it open, so that a
/// log shipper or an editor never blocks a rotation (and neither does the sink's own handle).
const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

fn wide(path: &Path) -> Vec<u16> {
    path.as_os_str().encode_wide().chain(Some(0)).collect()
}

/// What `open_nofollow` answers for a reparse point: `ERROR_CANT_RESOLVE_FILENAME`, the
/// error Windows gives for a chain of links too long to follow (Unix's `ELOOP`).
pub(crate) fn symlink_refused() -> io::Error {
    io::Error::from_raw_os_error(ERROR_CANT_RESOLVE_FILENAME as i32)
}

/// Opens `path` with `opts` without following a reparse point (symbolic link, junction):
/// `FILE_FLAG_OPEN_REPARSE_POINT` opens the link itself, which is then refused like
/// `O_NOFOLLOW` refuses a symlink on Unix. `mode` has no meaning on Windows.
pub(crate) fn open_nofollow(opts: &mut OpenOptions, path: &Path, _mode: u32) -> io::Result<File> {
    let f = opts
        .share_mode(SHARE_ALL)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)?;
    if f.metadata()?.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        return Err(symlink_refused());
    }
    Ok(f)
}

/// Windows has no file modes; files inherit the directory's ACL.
pub(crate) fn set_mode(_f: &File, _mode: u32) -> io::Result<()> {
    Ok(())
}

pub(crate) fn temp_permissions(_mode: u32) -> Option<Permissions> {
    None
}

/// Creates the directory `dir` (its parent exists); `mode` has no meaning on Windows.
pub(crate) fn create_dir(dir: &Path, _mode: u32) -> io::Result<()> {
    std::fs::create_dir(dir)
}

/// Reads at `offset`. `seek_read` also moves the file position, which the sink never uses:
/// its files are opened for appending, and every write goes to the end whatever the position.
pub(crate) fn read_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    f.seek_read(buf, offset)
}

/// A handle opened for appending lacks `FILE_WRITE_DATA`, which changing the length needs;
/// `ReOpenFile` gives a second handle on the same file (not the same name: the file may have
/// been renamed) with that right.
pub(crate) fn set_len(f: &File, len: u64) -> io::Result<()> {
    // SAFETY: `f`'s handle is valid for the call; the returned handle is checked and then
    // owned (closed) by `OwnedHandle`.
    #[allow(unsafe_code)]
    let h = unsafe { ReOpenFile(f.as_raw_handle() as HANDLE, GENERIC_WRITE, SHARE_ALL, 0) };
    if h == INVALID_HANDLE_VALUE || h.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `h` is a valid handle that nothing else owns.
    #[allow(unsafe_code)]
    let owned = unsafe { OwnedHandle::from_raw_handle(h as _) };
    File::from(owned).set_len(len)
}

/// `FlushFileBuffers`: the file's data and metadata, through the drive's write cache.
pub(crate) fn sync_data(f: &File) -> io::Result<()> {
    f.sync_all()
}

/// A directory cannot be flushed on Windows (see the module docs); renames are written
/// through instead.
pub(crate) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

fn handle_identity(f: &File) -> io::Result<(u64, u64)> {
    // SAFETY: an all-zero BY_HANDLE_FILE_INFORMATION is valid (plain integers).
    #[allow(unsafe_code)]
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: the handle is valid for the call and `info` is a writable struct of the right
    // type.
    #[allow(unsafe_code)]
    let ok = unsafe { GetFileInformationByHandle(f.as_raw_handle() as HANDLE, &mut info) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let index = (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow);
    Ok((u64::from(info.dwVolumeSerialNumber), index))
}

/// (volume serial number, file index): what (`st_dev`, `st_ino`) are on Unix.
pub(crate) fn file_identity(f: &File) -> io::Result<(u64, u64)> {
    handle_identity(f)
}

/// The identity of what is at `path` itself (a reparse point is not followed). The handle
/// asks for no access at all, so no reader's share mode can refuse it.
pub(crate) fn path_identity(path: &Path) -> io::Result<(u64, u64)> {
    let f = OpenOptions::new()
        .access_mode(0)
        .share_mode(SHARE_ALL)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS)
        .open(path)?;
    handle_identity(&f)
}

/// `MoveFileExW` without `MOVEFILE_REPLACE_EXISTING` fails with `ERROR_ALREADY_EXISTS`
/// (`io::ErrorKind::AlreadyExists`) when `to` exists; `MOVEFILE_WRITE_THROUGH` returns only
/// once the rename is on disk, since the directory cannot be flushed afterwards.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let (from, to) = (wide(from), wide(to));
    // SAFETY: both are NUL-terminated UTF-16 strings that live across the call.
    #[allow(unsafe_code)]
    let ok = unsafe { MoveFileExW(from.as_ptr(), to.as_ptr(), MOVEFILE_WRITE_THROUGH) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `GetDiskFreeSpaceExW`: bytes available to this user (quotas included) on `dir`'s volume.
pub(crate) fn free_bytes(dir: &Path) -> io::Result<u64> {
    let dir = wide(dir);
    let mut avail = 0u64;
    // SAFETY: `dir` is a NUL-terminated UTF-16 string; `avail` is a writable u64; the two
    // other outputs are optional and passed as null.
    #[allow(unsafe_code)]
    let ok = unsafe {
        GetDiskFreeSpaceExW(
            dir.as_ptr(),
            &mut avail,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(avail)
}

pub(crate) fn is_symlink_refusal(err: &io::Error) -> bool {
    err.raw_os_error() == Some(ERROR_CANT_RESOLVE_FILENAME as i32)
}

/// `THREAD_PRIORITY_IDLE` for the calling thread: it runs when the CPU would otherwise idle,
/// like nice 19 on Linux. Best effort.
pub(crate) fn lower_thread_priority() {
    // SAFETY: `GetCurrentThread` returns a pseudo-handle valid in the calling thread.
    #[allow(unsafe_code)]
    unsafe {
        SetThreadPriority(GetCurrentThread(), THREAD_PRIORITY_IDLE);
    }
}

/// Registers `f` with the C runtime's `atexit`. It runs when `main` returns (the runtime
/// calls `exit`, which runs the handlers while every thread still lives), but not at
/// `std::process::exit`, which calls `ExitProcess`: that ends every other thread, the
/// writer included, and runs no handler. Returns whether `f` was registered.
pub(crate) fn at_exit(f: extern "C" fn()) -> bool {
    extern "C" {
        fn atexit(cb: extern "C" fn()) -> i32;
    }
    // SAFETY: `atexit` only stores the function pointer; the caller passes an `extern "C"`
    // function without arguments that never unwinds, as `atexit` requires.
    #[allow(unsafe_code)]
    let rc = unsafe { atexit(f) };
    rc == 0
}

/// Raw error codes the fault-injecting file system returns, as the system would.
#[cfg(test)]
pub(crate) mod errno {
    use windows_sys::Win32::Foundation::{ERROR_ACCESS_DENIED, ERROR_DISK_FULL, ERROR_IO_DEVICE};
    pub(crate) const DISK_FULL: i32 = ERROR_DISK_FULL as i32;
    pub(crate) const IO: i32 = ERROR_IO_DEVICE as i32;
    /// `DeleteFileW` on a directory.
    pub(crate) const IS_A_DIRECTORY: i32 = ERROR_ACCESS_DENIED as i32;
}
