//! Bad configuration is a clear error from `build()`, naming the setting and the path; the
//! sink never follows a symlink; two sinks never write one active file (in one process or
//! two); files are created 0600 and the directory 0700 whatever the umask (0750 with a
//! file mode the group may read).

mod common;
mod platform_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use tracing_filesink::{
    Builder, Compression, ErrorKind, FileSink, Fsync, Retention, Rotation, TimeFormat, TimeZone,
};

/// Environment variable telling the test binary, re-executed, to act as the child process.
const CHILD_ROLE: &str = "TRACING_FILESINK_TEST_CHILD";
const CHILD_DIR: &str = "TRACING_FILESINK_TEST_DIR";
const CHILD_MODE: &str = "TRACING_FILESINK_TEST_MODE";
/// The child's exit code when its build was refused with `ErrorKind::Locked`.
const EXIT_LOCKED: i32 = 3;

fn expect_config_error(b: Builder, setting: &str) -> tracing_filesink::Error {
    match b.build() {
        Ok(_) => panic!("build() accepted a bad `{setting}`"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{setting}: {e}");
            assert_eq!(e.setting(), Some(setting), "{e}");
            assert!(
                e.to_string().contains(setting),
                "the message does not name `{setting}`: {e}"
            );
            e
        }
    }
}

#[test]
fn invalid_settings_are_refused_before_touching_the_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("never-created");
    let b = || FileSink::builder(&dir, "app");
    let cases: Vec<(Builder, &str)> = vec![
        (FileSink::builder(&dir, ""), "stem"),
        (FileSink::builder(&dir, "a/b"), "stem"),
        (FileSink::builder(&dir, "../app"), "stem"),
        (FileSink::builder(&dir, "a\\b"), "stem"),
        (FileSink::builder(&dir, ".hidden"), "stem"),
        (FileSink::builder(&dir, "app.log"), "stem"),
        (b().queue_capacity(0), "queue_capacity"),
        (b().queue_bytes(0), "queue_bytes"),
        (b().file_mode(0o1600), "file_mode"),
        (b().file_mode(0o400), "file_mode"),
        (b().file_mode(0o200), "file_mode"),
        (b().dir_mode(0o600), "dir_mode"),
        (b().dir_mode(0o40700), "dir_mode"),
        (
            b().compression(Compression::gzip().level(10)),
            "compression",
        ),
        (
            b().time_format(TimeFormat::custom("%Y-%m-%d %Q")),
            "time_format",
        ),
        (b().time_format(TimeFormat::custom("")), "time_format"),
        (b().time_zone(TimeZone::fixed(86_400)), "time_zone"),
        (b().time_zone(TimeZone::fixed(-90_000)), "time_zone"),
        (b().rotation(Rotation::size(0)), "rotation"),
        (
            b().rotation(Rotation::daily().or(Rotation::size(0))),
            "rotation",
        ),
        (
            b().rotation(Rotation::every(Duration::from_millis(500))),
            "rotation",
        ),
        (
            b().retention(Retention::files(3).max_age(Duration::ZERO)),
            "retention",
        ),
        (b().fsync(Fsync::Every(Duration::ZERO)), "fsync"),
        (b().compression(Compression::none().level(3)), "compression"),
        (b().retention(Retention::files(0)), "retention"),
    ];
    for (builder, setting) in cases {
        expect_config_error(builder, setting);
        assert!(
            !dir.exists(),
            "a refused `{setting}` still created the directory"
        );
    }
    // The same settings, valid, build: the cases above fail for the reason tested.
    let (_l, _g) = b()
        .queue_capacity(1)
        .queue_bytes(1)
        .file_mode(0o640)
        .dir_mode(0o750)
        .compression(Compression::gzip().level(9))
        .time_format(TimeFormat::custom("%Y-%m-%d %H:%M:%S"))
        .time_zone(TimeZone::fixed(86_399))
        .rotation(Rotation::size(1).or(Rotation::every(Duration::from_secs(1))))
        .retention(Retention::files(1).max_age(Duration::from_secs(1)))
        .fsync(Fsync::Every(Duration::from_millis(1)))
        .build()
        .unwrap();
}

#[test]
fn directory_that_cannot_be_created() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();

    // A component of the path is a file: the error names that file.
    let under = file.join("logs");
    let e = expect_config_error(FileSink::builder(&under, "app"), "dir");
    assert_eq!(e.path(), Some(file.as_path()));
    assert!(e.to_string().contains(&*under.to_string_lossy()), "{e}");
    assert!(e.to_string().contains("is a file, not a directory"), "{e}");
    assert!(e.io_error().is_some(), "{e:?}");

    let e = expect_config_error(FileSink::builder(&file, "app"), "dir");
    assert_eq!(e.path(), Some(file.as_path()));
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
}

#[test]
fn active_path_that_is_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let active = common::active(tmp.path(), "app");
    std::fs::create_dir(&active).unwrap();
    let e = FileSink::builder(tmp.path(), "app").build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    assert!(e.setting().is_some(), "{e}");
    assert_eq!(e.path(), Some(active.as_path()), "{e}");
    assert!(active.is_dir());
}

/// A file outside the log directory, with known content and an old mtime.
fn precious_target(dir: &Path) -> (PathBuf, SystemTime) {
    let target = dir.join("precious.txt");
    std::fs::write(&target, b"do not touch\n").unwrap();
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(&target)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    (target, mtime)
}

fn assert_untouched(target: &Path, mtime: SystemTime) {
    assert_eq!(std::fs::read(target).unwrap(), b"do not touch\n");
    let m = std::fs::metadata(target).unwrap();
    assert_eq!(
        m.modified().unwrap(),
        mtime,
        "the symlink's target was modified"
    );
    assert_eq!(m.len(), 13);
}

#[test]
#[cfg_attr(
    windows,
    ignore = "plants a symlink: Wine 8 creates none; on Windows it needs Developer Mode"
)]
fn symlink_at_the_active_path_is_refused_and_its_target_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let (target, mtime) = precious_target(tmp.path());
    let active = common::active(&logs, "app");
    platform_support::symlink_file(&target, &active).unwrap();

    for b in [
        FileSink::builder(&logs, "app"),
        FileSink::builder(&logs, "app").rotate_on_startup(true),
        FileSink::builder(&logs, "app")
            .rotation(Rotation::daily())
            .compression(Compression::gzip())
            .retention(Retention::files(1)),
    ] {
        let e = b.build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Symlink, "{e}");
        assert_eq!(e.path(), Some(active.as_path()), "{e}");
        assert_untouched(&target, mtime);
    }
    let e = FileSink::builder(&logs, "app").build_writer().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Symlink, "{e}");
    assert_untouched(&target, mtime);
    assert_eq!(std::fs::read_link(&active).unwrap(), target);
}

#[test]
#[cfg_attr(
    windows,
    ignore = "plants a symlink: Wine 8 creates none; on Windows it needs Developer Mode"
)]
fn dangling_symlink_at_the_active_path_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let target = tmp.path().join("would-be-created.txt");
    let active = common::active(&logs, "app");
    platform_support::symlink_file(&target, &active).unwrap();
    let e = FileSink::builder(&logs, "app").build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Symlink, "{e}");
    assert_eq!(e.path(), Some(active.as_path()));
    assert!(
        std::fs::symlink_metadata(&target).is_err(),
        "the sink created the symlink's target"
    );
}

#[test]
#[cfg_attr(
    windows,
    ignore = "plants a symlink: Wine 8 creates none; on Windows it needs Developer Mode"
)]
fn symlink_at_the_lock_path_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let (target, mtime) = precious_target(tmp.path());
    let lock = logs.join("app.log.lock");
    platform_support::symlink_file(&target, &lock).unwrap();
    let e = FileSink::builder(&logs, "app").build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Symlink, "{e}");
    assert_eq!(e.path(), Some(lock.as_path()));
    assert_untouched(&target, mtime);
}

#[test]
fn second_sink_in_the_same_process_is_locked_out() {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app").build().unwrap();

    // However the directory is spelled, it is the same active file.
    let respelled = tmp.path().join(".").join("sub").join("..");
    std::fs::create_dir(tmp.path().join("sub")).unwrap();
    for b in [
        FileSink::builder(tmp.path(), "app"),
        FileSink::builder(&respelled, "app"),
    ] {
        let e = b.build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Locked, "{e}");
        let p = e.path().expect("a Locked error names the lock file");
        assert!(p.ends_with("app.log.lock"), "{}", p.display());
    }
    let e = FileSink::builder(tmp.path(), "app")
        .build_writer()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Locked, "{e}");
    // The refusal did not disturb the first sink.
    tracing::dispatcher::with_default(&common::dispatch(layer), || tracing::info!("still mine"));
    guard.flush().unwrap();
    let lines = common::lines(&common::read_active(tmp.path(), "app"), "app.log");
    assert_eq!(lines.len(), 1);
    assert_eq!(common::json(&lines[0])["fields"]["message"], "still mine");
    // Another stem in the same directory is another file.
    let (_l2, _g2) = FileSink::builder(tmp.path(), "app-worker").build().unwrap();
    // Once the first sink is gone, the file is free again. (A child forked by another test
    // holds a copy of the lock's descriptor until it execs.)
    let (_l3, _g3) = common::without_forks(|| {
        drop(guard);
        FileSink::builder(tmp.path(), "app").build().unwrap()
    });
}

/// Re-executes this test binary as a child running only `child_process_entry_point`.
fn child(role: &str, dir: &Path, mode: Option<u32>, umask: Option<&str>) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    let args = [
        "--exact",
        "child_process_entry_point",
        "--nocapture",
        "--test-threads=1",
    ];
    let mut cmd = match umask {
        Some(u) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("umask {u} && exec \"$0\" \"$@\""))
                .arg(&exe)
                .args(args);
            c
        }
        None => {
            let mut c = Command::new(&exe);
            c.args(args);
            c
        }
    };
    cmd.env(CHILD_ROLE, role).env(CHILD_DIR, dir);
    if let Some(m) = mode {
        cmd.env(CHILD_MODE, m.to_string());
    }
    cmd.output().unwrap()
}

/// `child`, alongside other spawning tests.
fn spawn_child(
    role: &str,
    dir: &Path,
    mode: Option<u32>,
    umask: Option<&str>,
) -> std::process::Output {
    common::forking(|| child(role, dir, mode, umask))
}

/// Not a test of its own: the body of the child processes started by the tests below. Run
/// normally (without the environment variable), it does nothing.
#[test]
fn child_process_entry_point() {
    let Ok(role) = std::env::var(CHILD_ROLE) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(CHILD_DIR).unwrap());
    match role.as_str() {
        "lock" => match FileSink::builder(&dir, "app").build() {
            Ok(_) => {
                println!("child: built");
                std::process::exit(0)
            }
            Err(e) => {
                println!("child: {:?}: {e}", e.kind());
                std::process::exit(if e.kind() == ErrorKind::Locked {
                    EXIT_LOCKED
                } else {
                    4
                })
            }
        },
        "files" => {
            let mut b = FileSink::builder(&dir, "app")
                .compression(Compression::gzip())
                .compress_after(1);
            if let Ok(m) = std::env::var(CHILD_MODE) {
                b = b.file_mode(m.parse().unwrap());
            }
            let (layer, guard) = b.build().unwrap();
            let d = common::dispatch(layer);
            for i in 0..3 {
                tracing::dispatcher::with_default(&d, || tracing::info!(i, "line"));
                guard.rotate().unwrap();
            }
            tracing::dispatcher::with_default(&d, || tracing::info!("active"));
            common::wait_until("compression", Duration::from_secs(30), || {
                guard.stats().segments_compressed == 2
            });
            guard.shutdown(Duration::from_secs(5)).unwrap();
            std::process::exit(0)
        }
        other => panic!("unknown child role {other}"),
    }
}

#[test]
fn second_sink_in_another_process_is_locked_out() {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app").build().unwrap();
    let out = spawn_child("lock", tmp.path(), None, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(EXIT_LOCKED),
        "child: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("child: Locked"), "{stdout}");
    // The lock dies with its holder: the child can build once the parent lets go (of the
    // layer too: a guard dropped while its layer lives leaves the sink running).
    let out = common::without_forks(|| {
        drop(guard);
        drop(layer);
        child("lock", tmp.path(), None, None)
    });
    assert_eq!(
        out.status.code(),
        Some(0),
        "child after release: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Runs the "files" child under `umask` with `file_mode`, in a directory the sink creates,
/// and checks the mode of everything it made.
#[cfg(unix)]
fn check_modes(umask: &str, file_mode: Option<u32>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("parent").join("logs");
    let out = spawn_child("files", &dir, file_mode, Some(umask));
    assert!(
        out.status.success(),
        "child failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The directory lets whoever may read the files list it: 0700, 0750 for file_mode 0640.
    let want_dir = if file_mode.is_some_and(|m| m & 0o040 != 0) {
        0o750
    } else {
        0o700
    };
    assert_eq!(
        platform_support::mode_of(&dir),
        want_dir,
        "umask {umask}, file_mode {file_mode:?}: directory mode"
    );
    let want = file_mode.unwrap_or(0o600);
    let names = common::file_names(&dir);
    let gz = names.iter().filter(|n| n.ends_with(".log.gz")).count();
    let plain = common::segments(&dir, "app")
        .iter()
        .filter(|s| !s.gz)
        .count();
    assert_eq!((gz, plain), (2, 1), "{names:?}");
    assert!(names.contains(&"app.log".to_string()), "{names:?}");
    assert!(names.contains(&"app.log.lock".to_string()), "{names:?}");
    for n in &names {
        assert_eq!(
            platform_support::mode_of(&dir.join(n)),
            want,
            "umask {umask}, file_mode {file_mode:?}: mode of {n}"
        );
    }
}

// Unix only, like the next test: file modes and the umask do not exist on Windows
// (docs/guarantees.md).
#[cfg(unix)]
#[test]
fn files_are_0600_and_dir_0700_even_with_umask_000() {
    check_modes("000", None);
}

#[cfg(unix)]
#[test]
fn file_mode_is_applied_exactly_whatever_the_umask() {
    check_modes("000", Some(0o640));
    check_modes("077", Some(0o640));
}
