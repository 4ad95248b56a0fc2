//! Errors and settings that do not surprise: the directory's I/O error survives, a file in
//! the directory path is named, settings that cannot mean what they seem are refused with a
//! message saying what to write instead, and the README's recipe for a log shipper running
//! as another user works.

use tracing_filesink::{Builder, Compression, ErrorKind, FileSink, Retention};

fn refused(b: Builder, setting: &str) -> String {
    let e = b.build().expect_err("build() must refuse this");
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    assert_eq!(e.setting(), Some(setting), "{e}");
    e.to_string()
}

/// `PermissionDenied` from the operating system stays `PermissionDenied`: in the error's
/// `io_error()`, its `source()`, and after conversion to `io::Error`. `/sys` refuses `mkdir`
/// even to root.
#[cfg(target_os = "linux")]
// Unix only: it needs a place where creating a directory is refused (`/sys`).
#[cfg(unix)]
#[test]
fn permission_denied_creating_the_directory_stays_permission_denied() {
    let dir = std::path::Path::new("/sys/fs/tracing-filesink-test/logs");
    let e = FileSink::builder(dir, "app").build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert_eq!(e.setting(), Some("directory"), "{e}");
    assert_eq!(
        e.io_error().map(|io| io.kind()),
        Some(std::io::ErrorKind::PermissionDenied),
        "{e:?}"
    );
    let source = std::error::Error::source(&e).expect("the io::Error as source");
    assert!(source.downcast_ref::<std::io::Error>().is_some());
    assert!(
        e.to_string().contains("cannot create the log directory"),
        "{e}"
    );
    let io: std::io::Error = e.into();
    assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
}

#[test]
fn a_file_in_the_directory_path_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("var");
    std::fs::write(&file, b"").unwrap();
    let dir = file.join("log").join("app");
    let e = FileSink::builder(&dir, "app").build().unwrap_err();
    assert_eq!(e.path(), Some(file.as_path()), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("{} is a file, not a directory", file.display())),
        "{msg}"
    );
    assert!(!file.join("log").exists());
}

#[test]
fn a_level_on_no_compression_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let msg = refused(
        FileSink::builder(tmp.path(), "app").compression(Compression::none().level(3)),
        "compression",
    );
    assert!(msg.contains("Compression::gzip().level(3)"), "{msg}");
    // gzip with a level still builds.
    let (_l, g) = FileSink::builder(tmp.path(), "app")
        .compression(Compression::gzip().level(3))
        .build()
        .unwrap();
    g.shutdown(std::time::Duration::from_secs(5)).unwrap();
}

#[test]
fn keeping_zero_files_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let msg = refused(
        FileSink::builder(tmp.path(), "app").retention(Retention::files(0)),
        "retention",
    );
    assert!(msg.contains("files(0)"), "{msg}");
    assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
}

#[test]
fn a_stem_ending_in_dot_log_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let msg = refused(FileSink::builder(tmp.path(), "app.log"), "stem");
    assert!(msg.contains("use \"app\""), "{msg}");
    assert!(!tmp.path().join("app.log.log").exists());
    // A dot elsewhere is fine.
    let (_l, g) = FileSink::builder(tmp.path(), "app.logger").build().unwrap();
    assert_eq!(g.active_path(), tmp.path().join("app.logger.log"));
}

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// The defaults stay private: 0600 files in a 0700 directory.
// Unix only, like the next test: Windows has no file modes or groups (docs/guarantees.md).
#[cfg(unix)]
#[test]
fn defaults_are_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    let (_l, g) = FileSink::builder(&dir, "app").build().unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(g.active_path()), 0o600);
}

/// The README's recipe for a shipper in the log directory's group: the directory belongs to
/// that group with the setgid bit, and `file_mode(0o640)` lets the group read every file.
#[cfg(unix)]
#[test]
#[ignore = "needs root (chown to another group)"]
fn a_shipper_in_the_group_can_read() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    const SHIPPERS: u32 = 54_321;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, None, Some(SHIPPERS)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o2750)).unwrap();
    let (_l, g) = FileSink::builder(&dir, "app")
        .file_mode(0o640)
        .build()
        .unwrap();
    let meta = std::fs::metadata(g.active_path()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert_eq!(meta.gid(), SHIPPERS, "files inherit the directory's group");
    assert_eq!(
        mode(&dir),
        0o2750,
        "an existing directory's mode is left alone"
    );
}
