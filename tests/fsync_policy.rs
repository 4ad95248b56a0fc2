//! The fsync policies, observed through `stats().fsyncs`, and through the real `fdatasync(2)`
//! and `fsync(2)` calls of a child process counted by `strace -c` (needs strace: `#[ignore]`d,
//! run by `.ci/run`, which installs it).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tracing_filesink::{FileSink, Fsync};
use tracing_subscriber::prelude::*;

fn sink(
    policy: Fsync,
) -> (
    tempfile::TempDir,
    tracing::Dispatch,
    tracing_filesink::FileSinkGuard,
) {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(dir.path(), "app")
        .fsync(policy)
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    (dir, dispatch, guard)
}

#[test]
fn never_leaves_fsync_to_sync() {
    let (_dir, d, guard) = sink(Fsync::Never);
    for i in 0..50 {
        tracing::dispatcher::with_default(&d, || tracing::error!(i, "even errors"));
        guard.flush().unwrap();
    }
    assert_eq!(guard.stats().fsyncs, 0);
    guard.sync().unwrap();
    assert!(guard.stats().fsyncs >= 1);
}

#[test]
fn always_fsyncs_every_batch() {
    let (_dir, d, guard) = sink(Fsync::Always);
    for i in 0..20 {
        tracing::dispatcher::with_default(&d, || tracing::info!(i, "batch"));
        // Each flush makes the batch so far one write, and each write is fsynced.
        guard.flush().unwrap();
    }
    let fsyncs = guard.stats().fsyncs;
    assert!(fsyncs >= 20, "{fsyncs} fsyncs for 20 batches");
}

#[test]
fn on_level_fsyncs_only_batches_with_severe_records() {
    let (_dir, d, guard) = sink(Fsync::OnLevel(tracing::Level::ERROR));
    for i in 0..20 {
        tracing::dispatcher::with_default(&d, || tracing::warn!(i, "not severe enough"));
        guard.flush().unwrap();
    }
    assert_eq!(guard.stats().fsyncs, 0);
    tracing::dispatcher::with_default(&d, || tracing::error!("severe"));
    guard.flush().unwrap();
    assert!(guard.stats().fsyncs >= 1);
}

#[test]
fn every_interval_fsyncs_without_being_asked() {
    let (_dir, d, guard) = sink(Fsync::Every(Duration::from_millis(20)));
    tracing::dispatcher::with_default(&d, || tracing::info!("written, then synced in time"));
    guard.flush().unwrap();
    // Waiting on a condition with a deadline, not a fixed sleep.
    let deadline = Instant::now() + Duration::from_secs(10);
    while guard.stats().fsyncs == 0 {
        assert!(Instant::now() < deadline, "no fsync within 10 s of a write");
        std::thread::yield_now();
    }
}

/// A file left by an earlier run may never have been synced: rotating it at startup fsyncs it
/// before it gets a final segment name (one fsync for the file, one for the directory).
#[test]
fn adopted_file_is_fsynced_when_rotated_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.log"),
        "{\"timestamp\":\"2026-11-26T03:14:48.000000Z\",\"level\":\"INFO\",\"fields\":{\"message\":\"earlier run\"},\"target\":\"t\"}\n",
    )
    .unwrap();
    let (_layer, guard) = FileSink::builder(dir.path(), "app")
        .rotate_on_startup(true)
        .build()
        .unwrap();
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!(stats.rotations, 1);
    assert!(stats.fsyncs >= 2, "file and directory: {stats:?}");
    assert!(dir
        .path()
        .join("app.0000000001.20261126T031448Z.log")
        .exists());
}

/// One policy scenario, run in a child process under strace. Ends with `process::exit` and
/// the at-exit flush (on by default) turned off, so neither a shutdown nor an exit fsync is
/// counted; prints the sink's own count for the parent to compare.
#[test]
#[ignore = "the child process of the strace tests; does nothing unless FSYNC_CHILD is set"]
fn fsync_child() {
    let Ok(scenario) = std::env::var("FSYNC_CHILD") else {
        return;
    };
    let dir = std::env::var("FSYNC_CHILD_DIR").expect("FSYNC_CHILD_DIR");
    let policy = match scenario.as_str() {
        "never" => Fsync::Never,
        "always" => Fsync::Always,
        "on_level" => Fsync::OnLevel(tracing::Level::ERROR),
        "every" => Fsync::Every(Duration::from_millis(20)),
        other => panic!("unknown scenario {other}"),
    };
    let (layer, guard) = FileSink::builder(Path::new(&dir), "app")
        .fsync(policy)
        .flush_on_exit(false)
        .build()
        .expect("child: build");
    let d = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    for i in 0..20 {
        tracing::dispatcher::with_default(&d, || match scenario.as_str() {
            "never" => tracing::error!(i, "even errors"),
            "on_level" => tracing::warn!(i, "not severe enough"),
            _ => tracing::info!(i, "batch"),
        });
        guard.flush().expect("child: flush");
    }
    if scenario == "every" {
        let deadline = Instant::now() + Duration::from_secs(10);
        while guard.stats().fsyncs == 0 && Instant::now() < deadline {
            std::thread::yield_now();
        }
    }
    println!("FSYNCS={}", guard.stats().fsyncs);
    std::process::exit(0);
}

/// Runs `fsync_child` for `scenario` under `strace -f -c`; returns (fdatasync + fsync calls
/// seen by strace, the sink's own count).
fn traced(scenario: &str) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("strace.txt");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("strace")
        .args(["-f", "-qq", "-c", "-e", "trace=fsync,fdatasync", "-o"])
        .arg(&summary)
        .arg(&exe)
        .args([
            "--exact",
            "fsync_child",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FSYNC_CHILD", scenario)
        .env("FSYNC_CHILD_DIR", &logs)
        .output()
        .expect("run strace (this test needs strace)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{scenario}: child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let own: u64 = stdout
        .lines()
        .find_map(|l| l.split("FSYNCS=").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{scenario}: no FSYNCS line in {stdout}"));
    // strace -c: "% time seconds usecs/call calls [errors] syscall" rows.
    let table = std::fs::read_to_string(&summary).unwrap();
    let calls: u64 = table
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let name = *cols.last()?;
            if name != "fsync" && name != "fdatasync" {
                return None;
            }
            cols.get(3)?.parse::<u64>().ok()
        })
        .sum();
    (calls, own)
}

#[test]
#[ignore = "needs strace"]
fn real_fsync_calls_match_every_policy() {
    let (never, own) = traced("never");
    assert_eq!((never, own), (0, 0), "Never: no fsync at all while logging");
    let (always, own) = traced("always");
    assert!(always >= 20, "Always: {always} real calls for 20 batches");
    assert_eq!(always, own, "Always: the sink's count is the real count");
    let (on_level, own) = traced("on_level");
    assert_eq!(
        (on_level, own),
        (0, 0),
        "OnLevel(ERROR): warnings never fsync"
    );
    let (every, own) = traced("every");
    assert!(own >= 1, "Every(20 ms): no fsync counted after a write");
    // The timer may start another fsync between the child's reading of its count and its
    // exit; the count never runs ahead of the real calls.
    assert!(
        own <= every,
        "Every: {own} fsyncs counted, {every} made: the count ran ahead of the calls"
    );
}
