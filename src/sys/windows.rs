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
use std::path::{Component, Path, Prefix};

use windows_sys::Win32::Foundation::{
    ERROR_CANT_RESOLVE_FILENAME, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    FileAttributeTagInfo, FileIdInfo, GetDiskFreeSpaceExW, GetFileInformationByHandle,
    GetFileInformationByHandleEx, MoveFileExW, ReOpenFile, BY_HANDLE_FILE_INFORMATION,
    FILE_ATTRIBUTE_REPARSE_POINT, FILE_ATTRIBUTE_TAG_INFO, FILE_FLAG_BACKUP_SEMANTICS,
    FILE_FLAG_OPEN_REPARSE_POINT, FILE_ID_INFO, FILE_SHARE_DELETE, FILE_SHARE_READ,
    FILE_SHARE_WRITE, MOVEFILE_WRITE_THROUGH,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentThread, SetThreadPriority, THREAD_PRIORITY_IDLE,
};

/// Others may read, write, rename and delete a file while the sink holds it open, so that a
/// log shipper or an editor never blocks a rotation (and neither does the sink's own handle).
const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

/// The reparse points that lead elsewhere, which the sink refuses like a symbolic link
/// (winnt.h): symbolic links, and mount points (junctions). Any other reparse point (a
/// OneDrive placeholder, a deduplicated or a tiered file) is the file itself, served by its
/// file-system filter.
const IO_REPARSE_TAG_MOUNT_POINT: u32 = 0xA000_0003;
const IO_REPARSE_TAG_SYMLINK: u32 = 0xA000_000C;

fn is_link_tag(tag: u32) -> bool {
    tag == IO_REPARSE_TAG_SYMLINK || tag == IO_REPARSE_TAG_MOUNT_POINT
}

/// `path` as a NUL-terminated extended-length path (`\\?\C:\...`, `\\?\UNC\server\share\...`),
/// which the wide Win32 calls accept beyond `MAX_PATH` (260 characters); the standard
/// library does the same for its own calls. Made absolute and normalized first: the prefix
/// turns off the normalization of `.`, `..` and `/`. A device path (`\\.\`) is left as is.
fn extended(path: &Path) -> io::Result<Vec<u16>> {
    let abs = std::path::absolute(path)?;
    let wide: Vec<u16> = abs.as_os_str().encode_wide().collect();
    let mut out: Vec<u16> = match abs.components().next() {
        Some(Component::Prefix(p)) => match p.kind() {
            Prefix::Disk(_) => r"\\?\".encode_utf16().chain(wide).collect(),
            // `\\server\share\...` -> `\\?\UNC\server\share\...`
            Prefix::UNC(..) => r"\\?\UNC"
                .encode_utf16()
                .chain(wide[1..].iter().copied())
                .collect(),
            _ => wide,
        },
        _ => wide,
    };
    out.push(0);
    Ok(out)
}

/// What `open_nofollow` answers for a reparse point: `ERROR_CANT_RESOLVE_FILENAME`, the
/// error Windows gives for a chain of links too long to follow (Unix's `ELOOP`).
pub(crate) fn symlink_refused() -> io::Error {
    io::Error::from_raw_os_error(ERROR_CANT_RESOLVE_FILENAME as i32)
}

/// Opens `path` with `opts` without following a symbolic link or a junction:
/// `FILE_FLAG_OPEN_REPARSE_POINT` opens the link itself, which is then refused like
/// `O_NOFOLLOW` refuses a symlink on Unix. Another kind of reparse point (a OneDrive
/// placeholder, a deduplicated file) is the file itself: it is opened again normally, so that
/// its filter serves the data, and kept if the name still leads to the same file. `mode` has
/// no meaning on Windows.
pub(crate) fn open_nofollow(opts: &mut OpenOptions, path: &Path, _mode: u32) -> io::Result<File> {
    let f = opts
        .share_mode(SHARE_ALL)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)?;
    if f.metadata()?.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT == 0 {
        return Ok(f);
    }
    if is_link_tag(reparse_tag(&f)?) {
        return Err(symlink_refused());
    }
    let id = handle_identity(&f)?;
    let served = opts.create_new(false).custom_flags(0).open(path)?;
    if handle_identity(&served)? != id {
        // Replaced between the two opens: whatever is there now was not checked.
        return Err(symlink_refused());
    }
    Ok(served)
}

/// The reparse tag of the reparse point `f` was opened on.
fn reparse_tag(f: &File) -> io::Result<u32> {
    let mut info = FILE_ATTRIBUTE_TAG_INFO {
        FileAttributes: 0,
        ReparseTag: 0,
    };
    // SAFETY: the handle is valid for the call; `info` is a writable FILE_ATTRIBUTE_TAG_INFO
    // and the size passed is its size.
    #[allow(unsafe_code)]
    let ok = unsafe {
        GetFileInformationByHandleEx(
            f.as_raw_handle() as HANDLE,
            FileAttributeTagInfo,
            (&mut info as *mut FILE_ATTRIBUTE_TAG_INFO).cast(),
            std::mem::size_of::<FILE_ATTRIBUTE_TAG_INFO>() as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info.ReparseTag)
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

/// (volume serial number, file id). The 128-bit id of `FileIdInfo` where the file system
/// gives one: ReFS's ids do not fit the 64-bit `nFileIndex`, whose values repeat there. The
/// id's high half is folded into the volume half (an exclusive or: on one volume, distinct ids
/// stay distinct). Where `FileIdInfo` is not supported (before Windows 8, some network file
/// systems), `GetFileInformationByHandle`'s `nFileIndex`.
fn handle_identity(f: &File) -> io::Result<(u64, u64)> {
    let mut info = FILE_ID_INFO {
        VolumeSerialNumber: 0,
        FileId: Default::default(),
    };
    // SAFETY: the handle is valid for the call; `info` is a writable FILE_ID_INFO and the
    // size passed is its size.
    #[allow(unsafe_code)]
    let ok = unsafe {
        GetFileInformationByHandleEx(
            f.as_raw_handle() as HANDLE,
            FileIdInfo,
            (&mut info as *mut FILE_ID_INFO).cast(),
            std::mem::size_of::<FILE_ID_INFO>() as u32,
        )
    };
    if ok != 0 {
        let id = u128::from_le_bytes(info.FileId.Identifier);
        return Ok((info.VolumeSerialNumber ^ (id >> 64) as u64, id as u64));
    }
    index_identity(f)
}

/// (volume serial number, `nFileIndex`).
fn index_identity(f: &File) -> io::Result<(u64, u64)> {
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
    let (from, to) = (extended(from)?, extended(to)?);
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
    let mut dir = extended(dir)?;
    // A directory name ends with a backslash (required for a UNC path).
    let nul = dir.pop();
    if dir.last() != Some(&u16::from(b'\\')) {
        dir.push(u16::from(b'\\'));
    }
    dir.extend(nul);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn text(wide: &[u16]) -> String {
        String::from_utf16_lossy(wide.strip_suffix(&[0]).expect("NUL-terminated"))
    }

    #[test]
    fn extended_paths_are_absolute_and_normalized() {
        assert_eq!(
            text(&extended(Path::new(r"C:\logs\app.log")).unwrap()),
            r"\\?\C:\logs\app.log"
        );
        assert_eq!(
            text(&extended(Path::new("C:/logs/./old/../app.log")).unwrap()),
            r"\\?\C:\logs\app.log"
        );
        assert_eq!(
            text(&extended(Path::new(r"\\server\share\logs")).unwrap()),
            r"\\?\UNC\server\share\logs"
        );
        assert_eq!(
            text(&extended(Path::new(r"\\?\C:\logs")).unwrap()),
            r"\\?\C:\logs"
        );
        let relative = text(&extended(Path::new("logs")).unwrap());
        assert!(
            relative.starts_with(r"\\?\") && relative.ends_with(r"\logs"),
            "{relative}"
        );
    }

    #[test]
    fn identity_follows_the_file_not_the_name() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        let id_a = file_identity(&File::open(&a).unwrap()).unwrap();
        assert_eq!(
            path_identity(&a).unwrap(),
            id_a,
            "the same file by handle and by path"
        );
        assert_ne!(path_identity(&b).unwrap(), id_a, "two files");
        let moved = tmp.path().join("moved");
        rename_noreplace(&a, &moved).unwrap();
        assert_eq!(path_identity(&moved).unwrap(), id_a, "renamed");
    }

    #[test]
    fn only_links_and_junctions_are_refused() {
        assert!(is_link_tag(IO_REPARSE_TAG_SYMLINK));
        assert!(is_link_tag(IO_REPARSE_TAG_MOUNT_POINT));
        // A OneDrive placeholder (IO_REPARSE_TAG_CLOUD_6), a deduplicated file (_DEDUP), a file
        // moved to tiered storage (_HSM).
        for tag in [0x9000_601A, 0x8000_0013, 0xC000_0004] {
            assert!(!is_link_tag(tag), "{tag:#x}");
        }
    }
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
