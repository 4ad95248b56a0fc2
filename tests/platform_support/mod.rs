//! The few test operations that differ between Unix and Windows, so the tests themselves run
//! everywhere: planting a symbolic link, and reading a file's permission bits.
#![allow(dead_code)]

use std::io;
use std::path::Path;

/// A symbolic link at `link` pointing to the file `target` (which need not exist). On Windows
/// this is a file symlink, a reparse point; creating one needs Developer Mode or the
/// symlink privilege there (Wine allows it).
pub fn symlink_file(target: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    #[cfg(unix)]
    return std::os::unix::fs::symlink(target, link);
    #[cfg(windows)]
    return std::os::windows::fs::symlink_file(target, link);
}

/// The permission bits of what is at `p` (not following a symlink).
#[cfg(unix)]
pub fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p)
        .expect("stat")
        .permissions()
        .mode()
        & 0o7777
}

/// Asserts the permission bits of `p` on Unix. Windows has no file modes (files inherit the
/// directory's ACL, as docs/guarantees.md says), so there is nothing to check there.
pub fn assert_mode(p: &Path, want: u32, what: &str) {
    #[cfg(unix)]
    assert_eq!(mode_of(p), want, "{what}: mode of {}", p.display());
    #[cfg(windows)]
    let _ = (p, want, what);
}
