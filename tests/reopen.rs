//! External interference: the active file deleted from outside (with and without
//! `guard.reopen()`), the directory removed, symbolic links planted at the paths the sink
//! opens or creates, and files created under umask 000.

mod fault_support;
mod platform_support;

use std::path::Path;
use std::time::{Duration, SystemTime};

use tracing_filesink::{Compression, ErrorKind, FileSink, ManualClock, Rotation};
use tracing_subscriber::prelude::*;

const STEM: &str = "app";

/// Logs `n` events tagged `tag` through `dispatch`.
fn log(dispatch: &tracing::Dispatch, tag: &str, n: u64) {
    tracing::dispatcher::with_default(dispatch, || {
        for seq in 0..n {
            tracing::info!(tag, seq, "event");
        }
    });
}

/// Events with `tag` in the active file.
fn tagged_in_active(dir: &Path, tag: &str) -> u64 {
    let data = std::fs::read_to_string(dir.join(format!("{STEM}.log"))).unwrap_or_default();
    data.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["tag"] == tag)
        .count() as u64
}

fn fixed_time() -> SystemTime {
    SystemTime::from(chrono::DateTime::parse_from_rfc3339("2030-01-02T03:04:05Z").expect("time"))
}
const LABEL: &str = "20300102T030405Z";

#[test]
fn active_deleted_then_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (layer, guard) = FileSink::builder(dir, STEM).build().expect("build");
    let sub = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    log(&sub, "before", 10);
    guard.flush().expect("flush");
    std::fs::remove_file(guard.active_path()).expect("delete the active file");
    guard.reopen().expect("reopen");
    assert!(guard.stats().reopens >= 1);
    log(&sub, "after", 10);
    guard.flush().expect("flush after reopen");
    assert_eq!(
        tagged_in_active(dir, "after"),
        10,
        "new events must land in a new app.log"
    );
    assert_eq!(tagged_in_active(dir, "before"), 0);
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
    fault_support::read_all(dir, STEM).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn active_deleted_noticed_without_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (layer, guard) = FileSink::builder(dir, STEM).build().expect("build");
    let sub = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    log(&sub, "before", 10);
    guard.flush().expect("flush");
    // Moved away and created anew, as logrotate's `create` mode does.
    std::fs::rename(guard.active_path(), dir.join("app.log.1")).expect("move the active file");
    std::fs::File::create(guard.active_path()).expect("create the new active file");
    // The writer looks at the path when it wakes from sleep and about once a second while it
    // writes: keep logging until it has looked.
    let mut during = 0u64;
    let noticed = fault_support::wait_until(Duration::from_secs(5), || {
        log(&sub, "during", 1);
        during += 1;
        guard.stats().reopens >= 1
    });
    assert!(
        noticed,
        "the writer did not notice the moved file: {:?}",
        guard.stats()
    );
    log(&sub, "after", 10);
    guard.flush().expect("flush after the writer reopened");
    assert_eq!(tagged_in_active(dir, "after"), 10);
    assert_eq!(tagged_in_active(dir, "before"), 0);
    let moved = std::fs::read_to_string(dir.join("app.log.1")).expect("moved file");
    let tagged_moved = |tag: &str| moved.lines().filter(|l| l.contains(tag)).count() as u64;
    assert_eq!(
        tagged_moved("before"),
        10,
        "the moved file keeps what it had"
    );
    assert_eq!(
        tagged_moved("after"),
        0,
        "nothing logged after the reopen goes there"
    );
    assert_eq!(
        tagged_moved("during") + tagged_in_active(dir, "during"),
        during,
        "every event logged meanwhile is in one of the two files"
    );
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
}

// Unix only: Windows refuses to remove a directory while files in it are open (the sink's
// active and lock files), so the directory cannot vanish under a running sink there.
#[cfg(unix)]
#[test]
fn directory_removed_is_recreated() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("logs");
    let (layer, guard) = FileSink::builder(&dir, STEM).build().expect("build");
    let sub = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    log(&sub, "before", 5);
    guard.flush().expect("flush");
    std::fs::remove_dir_all(&dir).expect("remove the log directory");
    // Without a reopen call: the writer looks at the path when it wakes from sleep and about
    // once a second while it writes; keep logging until it has looked.
    let noticed = fault_support::wait_until(Duration::from_secs(5), || {
        log(&sub, "during", 1);
        guard.stats().reopens >= 1 && dir.is_dir()
    });
    assert!(
        noticed,
        "the directory was not recreated: {:?}",
        guard.stats()
    );
    // Events written into the deleted file before the writer looked are lost, and the next
    // flush says so; the one after that is clean.
    if let Err(e) = guard.flush() {
        assert!(e.to_string().contains("deleted"), "{e}");
    }
    log(&sub, "after", 5);
    guard.flush().expect("flush");
    assert_eq!(tagged_in_active(&dir, "after"), 5);
    // And once more on demand.
    std::fs::remove_dir_all(&dir).expect("remove the log directory again");
    guard.reopen().expect("reopen recreates the directory");
    log(&sub, "again", 5);
    guard.flush().expect("flush");
    assert_eq!(tagged_in_active(&dir, "again"), 5);
    platform_support::assert_mode(&dir, 0o700, "a recreated directory gets the directory mode");
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
}

#[test]
#[cfg_attr(
    windows,
    ignore = "plants a symlink: Wine 8 creates none; on Windows it needs Developer Mode"
)]
fn symlink_at_active_path_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("logs");
    std::fs::create_dir(&dir).expect("mkdir");
    let target = tmp.path().join("victim");
    std::fs::write(&target, b"precious\n").expect("victim");
    platform_support::symlink_file(&target, dir.join("app.log")).expect("symlink");
    let err = FileSink::builder(&dir, STEM)
        .build()
        .expect_err("a symlink must be refused");
    assert_eq!(err.kind(), ErrorKind::Symlink, "{err}");
    assert_eq!(std::fs::read(&target).expect("victim"), b"precious\n");
    // A dangling one must not create its target either.
    let dangling = tmp.path().join("created-by-attacker");
    std::fs::remove_file(dir.join("app.log")).expect("rm");
    platform_support::symlink_file(&dangling, dir.join("app.log")).expect("symlink");
    let err = FileSink::builder(&dir, STEM)
        .build()
        .expect_err("dangling symlink refused");
    assert_eq!(err.kind(), ErrorKind::Symlink, "{err}");
    assert!(!dangling.exists(), "the symlink's target was created");
}

#[test]
#[cfg_attr(
    windows,
    ignore = "plants a symlink: Wine 8 creates none; on Windows it needs Developer Mode"
)]
fn symlink_at_lock_path_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("logs");
    std::fs::create_dir(&dir).expect("mkdir");
    let target = tmp.path().join("victim");
    std::fs::write(&target, b"precious\n").expect("victim");
    platform_support::symlink_file(&target, dir.join("app.log.lock")).expect("symlink");
    let err = FileSink::builder(&dir, STEM)
        .build()
        .expect_err("a symlink must be refused");
    assert_eq!(err.kind(), ErrorKind::Symlink, "{err}");
    assert_eq!(std::fs::read(&target).expect("victim"), b"precious\n");
}

/// A symlink with a temp file's name is not a temp file: recovery leaves it (and its target)
/// alone. Real temp names are random and created with O_EXCL, so none can be planted.
#[test]
#[cfg_attr(
    windows,
    ignore = "plants a symlink: Wine 8 creates none; on Windows it needs Developer Mode"
)]
fn symlink_named_like_a_temp_file_is_left_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("logs");
    std::fs::create_dir(&dir).expect("mkdir");
    let target = tmp.path().join("victim");
    std::fs::write(&target, b"precious\n").expect("victim");
    let planted = dir.join(".app.AAAAAAAAAAAA.tmp");
    platform_support::symlink_file(&target, &planted).expect("symlink");
    let (_layer, guard) = FileSink::builder(&dir, STEM)
        .compression(Compression::gzip())
        .build()
        .expect("build");
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
    assert_eq!(std::fs::read(&target).expect("victim"), b"precious\n");
    assert!(std::fs::symlink_metadata(&planted).is_ok_and(|m| m.file_type().is_symlink()));
}

/// Symlinks at the next segment name and at a segment's `.gz` name: rotation takes the next
/// free name and compression refuses to replace; no target is touched, nothing is lost.
#[test]
#[cfg_attr(
    windows,
    ignore = "plants a symlink: Wine 8 creates none; on Windows it needs Developer Mode"
)]
fn symlinks_at_segment_paths_are_never_followed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("logs");
    std::fs::create_dir(&dir).expect("mkdir");
    let target = tmp.path().join("victim");
    std::fs::write(&target, b"precious\n").expect("victim");
    let seg = |seq: u64, gz: bool| {
        dir.join(format!(
            "{STEM}.{seq:010}.{LABEL}.log{}",
            if gz { ".gz" } else { "" }
        ))
    };
    // Rotation's first choice is taken by a symlink.
    platform_support::symlink_file(&target, seg(1, false)).expect("symlink seg 1");
    let (layer, guard) = FileSink::builder(&dir, STEM)
        .clock(ManualClock::new(fixed_time()))
        .rotation(Rotation::never())
        .compression(Compression::gzip())
        .compress_after(1)
        .build()
        .expect("build");
    let sub = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    log(&sub, "first", 5);
    guard.rotate().expect("rotate");
    assert!(
        std::fs::symlink_metadata(seg(1, false)).is_ok_and(|m| m.file_type().is_symlink()),
        "the planted symlink was replaced"
    );
    assert!(
        seg(2, false).is_file(),
        "rotation must take the next free name:\n  {}",
        fault_support::listing(&dir)
    );
    // Now plant a symlink at segment 2's compressed name before it is compressed.
    platform_support::symlink_file(&target, seg(2, true)).expect("symlink gz 2");
    log(&sub, "second", 5);
    guard.rotate().expect("rotate again");
    let failed = fault_support::wait_until(Duration::from_secs(10), || {
        guard.stats().compression_failures >= 1
    });
    assert!(
        failed,
        "compression must refuse the planted .gz: {:?}",
        guard.stats()
    );
    // Counted in stats (above); whether shutdown() also returns it is the sink's choice.
    let _ = guard.shutdown(Duration::from_secs(5));
    assert_eq!(std::fs::read(&target).expect("victim"), b"precious\n");
    assert!(seg(2, false).is_file(), "the plain segment is kept");
    assert!(std::fs::symlink_metadata(seg(2, true)).is_ok_and(|m| m.file_type().is_symlink()));
    for e in std::fs::read_dir(&dir).expect("read_dir").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            !fault_support::is_temp(STEM, &name),
            "temp file {name} remains"
        );
    }
    let plain = std::fs::read_to_string(seg(2, false)).expect("segment 2");
    assert_eq!(plain.lines().filter(|l| l.contains("\"first\"")).count(), 5);
}

#[test]
#[ignore = "the child process of files_are_0600_under_umask_000; does nothing unless UMASK_CHILD_DIR is set"]
fn umask_child() {
    let Ok(dir) = std::env::var("UMASK_CHILD_DIR") else {
        return;
    };
    let (layer, guard) = FileSink::builder(&dir, STEM)
        .compression(Compression::gzip())
        .build()
        .expect("child: build");
    let sub = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    log(&sub, "x", 10);
    guard.rotate().expect("child: rotate");
    log(&sub, "y", 10);
    guard.flush().expect("child: flush");
    let ok = fault_support::wait_until(Duration::from_secs(10), || {
        guard.stats().segments_compressed >= 1
    });
    assert!(ok, "child: no compression: {:?}", guard.stats());
    guard
        .shutdown(Duration::from_secs(5))
        .expect("child: shutdown");
}

// Unix only: file modes and the umask do not exist on Windows (docs/guarantees.md).
#[cfg(unix)]
#[test]
fn files_are_0600_under_umask_000() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("logs");
    let exe = std::env::current_exe().expect("current_exe");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" --exact umask_child --ignored --nocapture --test-threads 1")
        .arg(&exe)
        .env("UMASK_CHILD_DIR", &dir)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run sh");
    assert!(status.success(), "child failed: {status:?}");
    let mode = |p: &Path| platform_support::mode_of(p) & 0o777;
    assert_eq!(mode(&dir), 0o700, "the directory the sink created");
    let mut kinds = Vec::new();
    for e in std::fs::read_dir(&dir).expect("read_dir").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert_eq!(mode(&e.path()), 0o600, "{name} under umask 000");
        kinds.push(name);
    }
    assert!(kinds.iter().any(|n| n == "app.log"), "{kinds:?}");
    assert!(kinds.iter().any(|n| n == "app.log.lock"), "{kinds:?}");
    assert!(kinds.iter().any(|n| n.ends_with(".log.gz")), "{kinds:?}");
}

/// A flush never acknowledges events written into a deleted active file: either they reached
/// the new file (the writer noticed the deletion first) or the flush returns an error and the
/// loss is reported in the new file.
#[test]
fn flush_never_acknowledges_events_in_a_deleted_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (layer, guard) = FileSink::builder(dir, STEM).build().expect("build");
    let sub = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    log(&sub, "before", 5);
    guard.flush().expect("flush");
    std::fs::remove_file(guard.active_path()).expect("delete the active file");
    log(&sub, "unlinked", 5);
    match guard.flush() {
        Ok(()) => assert_eq!(
            tagged_in_active(dir, "unlinked"),
            5,
            "flush acknowledged events that are not in the file"
        ),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Io, "{e}");
            let data = std::fs::read_to_string(guard.active_path()).expect("new active file");
            assert!(
                data.contains("the active file was deleted"),
                "the loss is reported in the new file: {data}"
            );
        }
    }
    log(&sub, "after", 5);
    guard.flush().expect("flush after the loss was reported");
    assert_eq!(tagged_in_active(dir, "after"), 5);
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
}

/// A log directory deleted and recreated by the writer gets the lock file again: a second
/// sink on it is refused, as it would have been before.
// Unix only: Windows refuses to remove a directory while files in it are open.
#[cfg(unix)]
#[test]
fn a_recreated_directory_is_locked_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("logs");
    let (layer, guard) = FileSink::builder(&dir, STEM).build().expect("build");
    let sub = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    log(&sub, "before", 5);
    guard.flush().expect("flush");
    std::fs::remove_dir_all(&dir).expect("remove the log directory");
    guard.reopen().expect("reopen recreates the directory");
    assert!(dir.join("app.log.lock").exists(), "the lock file is back");
    let err = FileSink::builder(&dir, STEM)
        .build()
        .expect_err("a second sink on the recreated directory");
    assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
    log(&sub, "after", 5);
    guard.flush().expect("flush");
    assert_eq!(tagged_in_active(&dir, "after"), 5);
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
}

/// logrotate's `create 0640 root <group>` makes the new `app.log` readable by a shipper in the
/// group; `reopen()` (the SIGHUP of its `postrotate`) must not take that back: an existing
/// file's mode and group are the operator's.
#[cfg(unix)]
#[test]
#[ignore = "needs root (creates a group) and logrotate"]
fn reopen_keeps_the_mode_and_group_logrotate_created() {
    use std::os::unix::fs::MetadataExt;
    use std::process::Command;
    const GROUP: &str = "filesink-readers";
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(out.status.success(), "{cmd:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // `-f`: succeeds when the group exists already.
    run(Command::new("groupadd").args(["-f", GROUP]));
    let gid: u32 = run(Command::new("getent").args(["group", GROUP]))
        .split(':')
        .nth(2)
        .and_then(|g| g.trim().parse().ok())
        .expect("gid of the new group");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("logs");
    let (layer, guard) = FileSink::builder(&dir, STEM).build().expect("build");
    let sub = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    log(&sub, "before", 10);
    guard.flush().expect("flush");
    let conf = tmp.path().join("logrotate.conf");
    std::fs::write(
        &conf,
        format!(
            "{} {{\n    create 0640 root {GROUP}\n    rotate 5\n    nocompress\n}}\n",
            guard.active_path().display()
        ),
    )
    .expect("write logrotate.conf");
    run(Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(tmp.path().join("logrotate.state"))
        .arg(&conf));
    let meta = std::fs::metadata(guard.active_path()).expect("the file logrotate created");
    assert_eq!(
        (meta.mode() & 0o7777, meta.gid()),
        (0o640, gid),
        "logrotate's create"
    );
    guard.reopen().expect("reopen");
    log(&sub, "after", 10);
    guard.flush().expect("flush after reopen");
    assert_eq!(
        tagged_in_active(&dir, "after"),
        10,
        "written to the new file"
    );
    let meta = std::fs::metadata(guard.active_path()).expect("stat app.log");
    assert_eq!(
        (meta.mode() & 0o7777, meta.gid()),
        (0o640, gid),
        "mode and group of app.log after reopen()"
    );
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
    let meta = std::fs::metadata(dir.join(format!("{STEM}.log"))).expect("stat app.log");
    assert_eq!(meta.mode() & 0o7777, 0o640, "mode after shutdown");
}
