//! Errors and settings that do not surprise: the directory's I/O error survives, a file in
//! the directory path is named, settings that cannot mean what they seem are refused with a
//! message saying what to write instead, and the README's recipe for a log shipper running
//! as another user works.

use tracing_filesink::{Builder, Compression, ErrorKind, FileSink, Retention, Rotation};

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
    assert_eq!(e.setting(), Some("dir"), "{e}");
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
    assert!(msg.contains("0 files"), "{msg}");
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

/// A size limit of zero deletes every finished segment as it is finished, like keeping zero
/// files: refused, and so is a limit the active file alone can fill (below the rotation
/// size). The message names both settings.
#[test]
fn a_size_limit_that_deletes_everything_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let msg = refused(
        FileSink::builder(tmp.path(), "app").retention(Retention::keep_all().max_bytes(0)),
        "retention",
    );
    assert!(msg.contains("every finished segment"), "{msg}");
    let msg = refused(
        FileSink::builder(tmp.path(), "app")
            .rotation(Rotation::size(64 << 20).or(Rotation::daily()))
            .retention(Retention::files(5).max_bytes(1 << 20)),
        "retention",
    );
    assert!(
        msg.contains("`rotation`") && msg.contains("64 MiB") && msg.contains("1 MiB"),
        "{msg}"
    );
    assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
    // At least the rotation size builds, and so does any limit with time rotation only.
    for (rotation, limit) in [(Rotation::size(1 << 20), 1 << 20), (Rotation::daily(), 1)] {
        let (_l, g) = FileSink::builder(tmp.path(), "app")
            .rotation(rotation)
            .retention(Retention::keep_all().max_bytes(limit))
            .build()
            .unwrap();
        g.shutdown(std::time::Duration::from_secs(5)).unwrap();
    }
}

/// A value a configuration file can hold gets a message in the file's terms, without the
/// Rust API's names.
#[test]
fn refusals_of_values_a_file_can_hold_use_no_rust_names() {
    let tmp = tempfile::tempdir().unwrap();
    let b = || FileSink::builder(tmp.path(), "app");
    let d = std::time::Duration::ZERO;
    for (builder, setting) in [
        (b().retention(Retention::files(0)), "retention"),
        (
            b().retention(Retention::keep_all().max_bytes(0)),
            "retention",
        ),
        (b().retention(Retention::keep_all().max_age(d)), "retention"),
        (b().fsync(tracing_filesink::Fsync::Every(d)), "fsync"),
        (b().rotation(Rotation::size(0)), "rotation"),
        (b().rotation(Rotation::every(d)), "rotation"),
    ] {
        let msg = refused(builder, setting);
        assert!(!msg.contains("::") && !msg.contains("()"), "{msg}");
    }
}

/// An empty directory path is the `dir` setting, as `FileSink::builder(dir, stem)` and the
/// configuration file call it.
#[test]
fn an_empty_dir_is_reported_as_dir() {
    let msg = refused(FileSink::builder("", "app"), "dir");
    assert!(msg.contains("`dir`"), "{msg}");
}

/// Permission bits written in decimal (`file_mode(640)`, `file_mode = 640` in TOML) get a
/// hint about octal.
#[test]
fn a_decimal_mode_gets_an_octal_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let msg = refused(
        FileSink::builder(tmp.path(), "app").file_mode(640),
        "file_mode",
    );
    assert!(msg.contains("0o640"), "{msg}");
    let msg = refused(
        FileSink::builder(tmp.path(), "app").dir_mode(750),
        "dir_mode",
    );
    assert!(msg.contains("0o750"), "{msg}");
}

/// A service with several sinks can tell which one failed: `build()`'s errors name the
/// directory and the stem.
#[test]
fn build_errors_name_the_sink() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("svc-logs");
    let msg = refused(
        FileSink::builder(&dir, "audit").retention(Retention::files(0)),
        "retention",
    );
    assert!(
        msg.contains(&dir.display().to_string()) && msg.contains("\"audit\""),
        "{msg}"
    );
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let e = FileSink::builder(file.join("logs"), "billing")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("\"billing\""), "{e}");
}

/// A directory the sink creates takes its group and other read access from `file_mode`
/// (read → read and search), so `file_mode(0o640)` alone lets the group list and read the
/// logs; an explicit `dir_mode` wins.
#[cfg(unix)]
#[test]
fn the_directory_mode_follows_the_file_mode() {
    let tmp = tempfile::tempdir().unwrap();
    for (file_mode, dir_mode, want) in [
        (0o600, None, 0o700),
        (0o640, None, 0o750),
        (0o644, None, 0o755),
        (0o660, None, 0o750),
        (0o604, None, 0o705),
        (0o644, Some(0o700), 0o700),
    ] {
        let dir = tmp.path().join(format!("logs-{file_mode:o}-{dir_mode:?}"));
        let mut b = FileSink::builder(&dir, "app").file_mode(file_mode);
        if let Some(m) = dir_mode {
            b = b.dir_mode(m);
        }
        let (_l, g) = b.build().unwrap();
        assert_eq!(
            mode(&dir),
            want,
            "file_mode {file_mode:o}, dir_mode {dir_mode:?}"
        );
        assert_eq!(mode(g.active_path()), file_mode);
        g.shutdown(std::time::Duration::from_secs(5)).unwrap();
    }
}

/// The child of `an_unwritable_directory_is_named` reads its directory from this variable.
#[cfg(unix)]
const UNWRITABLE_DIR: &str = "FILESINK_TEST_UNWRITABLE_DIR";

/// A log directory the process may not create files in is reported as that directory (the
/// `dir` setting, its path, the `PermissionDenied`), not as the lock file the sink tried
/// to create first. The build runs as `nobody` in a directory owned by root.
#[cfg(unix)]
#[test]
#[ignore = "needs root (runs a child process as another user)"]
fn an_unwritable_directory_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = unwritable_dir(tmp.path());
    expect_dir_named(&dir);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

/// The same when the lock file is there already (left by an earlier run, writable): the
/// active file is the first file the sink creates, and the directory is still what is named.
#[cfg(unix)]
#[test]
#[ignore = "needs root (runs a child process as another user)"]
fn an_unwritable_directory_with_a_lock_file_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = unwritable_dir(tmp.path());
    let lock = dir.join("app.log.lock");
    std::fs::write(&lock, b"").unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o666)).unwrap();
    expect_dir_named(&dir);
    assert!(!dir.join("app.log").exists());
}

/// `<tmp>/logs`, owned by root, 0755: `nobody` may read it but create nothing in it.
#[cfg(unix)]
fn unwritable_dir(tmp: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = tmp.join("logs");
    std::fs::create_dir(&dir).unwrap();
    for d in [tmp, &dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// Builds a sink on `dir` as `nobody` (a child process) and checks its error names the
/// directory, not a file in it.
#[cfg(unix)]
fn expect_dir_named(dir: &std::path::Path) {
    use std::os::unix::process::CommandExt;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "unwritable_directory_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(UNWRITABLE_DIR, dir)
        .uid(65_534)
        .gid(65_534)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("child error: ").map(|(_, e)| e))
        .unwrap_or_else(|| panic!("no error line: {stdout}"));
    let want = format!(
        "kind Io, setting Some(\"dir\"), path Some({:?}), io Some(PermissionDenied):",
        dir
    );
    assert!(line.starts_with(&want), "{line}");
    assert!(line.contains("log directory"), "{line}");
    assert!(
        !line.contains("lock") && !line.contains("app.log"),
        "{line}"
    );
}

/// Not a test of its own: the body of the child of `an_unwritable_directory_is_named`.
#[cfg(unix)]
#[test]
#[ignore = "the child process of an_unwritable_directory_is_named; does nothing unless FILESINK_TEST_UNWRITABLE_DIR is set"]
fn unwritable_directory_child() {
    let Ok(dir) = std::env::var(UNWRITABLE_DIR) else {
        return;
    };
    let e = FileSink::builder(&dir, "app").build().unwrap_err();
    println!(
        "child error: kind {:?}, setting {:?}, path {:?}, io {:?}: {e}",
        e.kind(),
        e.setting(),
        e.path(),
        e.io_error().map(std::io::Error::kind)
    );
}
