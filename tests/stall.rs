//! The application never stalls on a sick disk with the default `Overflow::Block`.
//!
//! Two outages that used to hang every logging thread: the active file cannot be reopened (a
//! symlink planted at its path), and a real full disk (a tmpfs; needs root). In both, more
//! events than the queue holds are logged by several threads; each test asserts on the
//! sink's own counters (no wall-clock assertion) that the callers waited a bounded time in
//! all, that `flush()` reports the outage, that writing resumes by itself once the cause is
//! gone, and that every event is either in the log or counted by an in-band record.

mod fault_support;
mod platform_support;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use tracing_filesink::{FileSink, FileSinkGuard, Stats};
use tracing_subscriber::prelude::*;

const STEM: &str = "app";
const THREADS: u64 = 4;

/// What a hammering run measured.
struct Run {
    logged: u64,
    /// Per thread: time spent in logging calls that took more than a millisecond (reported,
    /// not asserted).
    slow_calls: Vec<Duration>,
}

/// `THREADS` threads log `per_thread` events of about 1 KiB each through `dispatch`.
fn hammer(dispatch: &tracing::Dispatch, per_thread: u64) -> Run {
    let pad = "x".repeat(1000);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let dispatch = dispatch.clone();
            let pad = pad.clone();
            std::thread::spawn(move || {
                let mut slow = Duration::ZERO;
                tracing::dispatcher::with_default(&dispatch, || {
                    for i in 0..per_thread {
                        let started = Instant::now();
                        tracing::info!(t, i, pad = pad.as_str(), "stall");
                        let took = started.elapsed();
                        if took > Duration::from_millis(1) {
                            slow += took;
                        }
                    }
                });
                slow
            })
        })
        .collect();
    let slow_calls = handles
        .into_iter()
        .map(|h| h.join().expect("logging thread panicked"))
        .collect();
    Run {
        logged: THREADS * per_thread,
        slow_calls,
    }
}

/// Reads back the log: the events present (each once) and the sum of the in-band drop
/// reports, plus how many of those reports were shedding reports.
fn read_back(dir: &Path) -> (u64, u64, u64) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n == "app.log" || fault_support::is_segment(STEM, n))
        .collect();
    names.sort();
    let mut seen = HashSet::new();
    let (mut reported, mut shed_reports) = (0u64, 0u64);
    for name in names {
        let data = std::fs::read(dir.join(&name)).expect("read log file");
        assert!(
            data.is_empty() || data.ends_with(b"\n"),
            "{name} ends with a torn line"
        );
        for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line)
                .unwrap_or_else(|e| panic!("{name}: invalid line: {e}"));
            let f = &v["fields"];
            if v["target"] == "tracing_filesink" {
                reported += f["dropped"].as_u64().unwrap_or(0);
                if f["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("events shed"))
                {
                    shed_reports += 1;
                }
            } else if let (Some(t), Some(i)) = (f["t"].as_u64(), f["i"].as_u64()) {
                assert!(seen.insert((t, i)), "event {t}/{i} written twice");
            }
        }
    }
    (seen.len() as u64, reported, shed_reports)
}

/// The checks shared by both outages, once the cause is gone.
fn after_outage(dir: &Path, guard: FileSinkGuard, run: &Run, during: &Stats) {
    let resumed = fault_support::wait_until(Duration::from_secs(60), || guard.flush().is_ok());
    assert!(
        resumed,
        "writing did not resume by itself: {:?}",
        guard.stats()
    );
    guard.shutdown(Duration::from_secs(60)).expect("shutdown");
    let stats = guard.stats();
    let (written, reported, shed_reports) = read_back(dir);
    eprintln!(
        "logged {}, written {written}, shed {} (dropped {} in all, {reported} reported in-band \
         by {shed_reports} shedding record(s)), blocked {:?} in all by the sink's count; \
         time in slow logging calls per thread: {:?}",
        run.logged,
        stats.events_shed,
        stats.events_dropped,
        Duration::from_nanos(stats.blocked_nanos),
        run.slow_calls
    );
    assert!(
        during.events_shed > 0,
        "more events than the queue holds were logged during the outage: some must have been \
         shed: {during:?}"
    );
    assert_eq!(
        shed_reports, 1,
        "one outage, one in-band shedding record: {stats:?}"
    );
    assert_eq!(
        reported, stats.events_dropped,
        "drops reported in-band vs counted: {stats:?}"
    );
    assert_eq!(
        written + reported,
        run.logged,
        "every event is in the log or reported as shed/dropped in it: {stats:?}"
    );
}

/// Each thread waits at most one slice (100 ms) per outage; allow ten per thread for a
/// loaded machine. Before, the callers waited for as long as the outage lasted.
fn assert_bounded_blocking(stats: &Stats) {
    let bound = Duration::from_secs(THREADS);
    assert!(
        Duration::from_nanos(stats.blocked_nanos) < bound,
        "callers were blocked {:?} in all (bound {bound:?}): {stats:?}",
        Duration::from_nanos(stats.blocked_nanos)
    );
}

/// `app.log` moved away and a symlink planted in its place: the writer cannot reopen the
/// file (it never follows a symlink). Default configuration throughout.
#[test]
#[cfg_attr(
    windows,
    ignore = "plants a symlink: Wine 8 creates none; on Windows it needs Developer Mode"
)]
fn planted_symlink_at_the_active_path() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (layer, guard) = FileSink::builder(dir, STEM).build().expect("build");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let active = guard.active_path().to_path_buf();
    std::fs::rename(&active, dir.join("moved-away.log")).expect("move app.log");
    platform_support::symlink_file(dir.join("elsewhere"), &active).expect("plant symlink");
    guard
        .reopen()
        .expect_err("reopen must refuse to follow the planted symlink");

    // 4 x 50,000 events of 1 KiB: three times what the queue (32 MiB of large records) and
    // the writer's buffer (64 MiB) hold together.
    let run = hammer(&dispatch, 50_000);
    let during = guard.stats();
    assert_bounded_blocking(&during);
    guard
        .flush()
        .expect_err("flush must report that the file cannot be opened");

    std::fs::remove_file(&active).expect("remove the symlink");
    after_outage(dir, guard, &run, &during);
}

/// A real full disk: a 4 MiB tmpfs filled up before the run and freed after it.
#[test]
#[ignore = "needs root (mounts a tmpfs)"]
fn full_tmpfs() {
    let (_tmp, dir, _mount) = fault_support::tmpfs("4m");
    // The default policy (Overflow::Block), with a queue small enough that the backlog fits
    // on the disk once it is freed (the default 64 MiB queue would fill 4 MiB again).
    let (layer, guard) = FileSink::builder(&dir, STEM)
        .queue_capacity(1024)
        .queue_bytes(256 << 10)
        .build()
        .expect("build");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let filler = dir.join("filler");
    // Fill the disk, whatever its block accounting: write until ENOSPC.
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&filler).expect("create filler");
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
    }

    // 4 x 40,000 events of 1 KiB.
    let run = hammer(&dispatch, 40_000);
    let during = guard.stats();
    assert_bounded_blocking(&during);
    assert!(during.write_errors > 0, "{during:?}");
    guard.flush().expect_err("flush must report the full disk");

    std::fs::remove_file(&filler).expect("remove filler");
    after_outage(&dir, guard, &run, &during);
}

/// The writer keeps what it could not write during an outage; when the file can be opened
/// again, that backlog goes into segments no larger than the size limit, in order.
#[test]
#[cfg_attr(
    windows,
    ignore = "plants a symlink: Wine 8 creates none; on Windows it needs Developer Mode"
)]
fn a_backlog_after_an_outage_is_split_at_the_size_limit() {
    const LIMIT: u64 = 64 << 10;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (layer, guard) = FileSink::builder(dir, STEM)
        .rotation(tracing_filesink::Rotation::size(LIMIT))
        .build()
        .expect("build");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let active = guard.active_path().to_path_buf();
    std::fs::remove_file(&active).expect("remove app.log");
    platform_support::symlink_file(dir.join("elsewhere"), &active).expect("plant symlink");
    guard.reopen().expect_err("reopen refuses the symlink");
    // About 1 MiB: sixteen segments' worth, all held by the writer while it cannot open.
    let pad = "z".repeat(200);
    const EVENTS: u64 = 4_000;
    tracing::dispatcher::with_default(&dispatch, || {
        for seq in 0..EVENTS {
            tracing::info!(seq, pad = pad.as_str(), "backlog");
        }
    });
    std::fs::remove_file(&active).expect("remove the symlink");
    assert!(
        fault_support::wait_until(Duration::from_secs(60), || guard.flush().is_ok()),
        "{:?}",
        guard.stats()
    );
    guard.shutdown(Duration::from_secs(30)).expect("shutdown");
    assert_eq!(guard.stats().events_dropped, 0, "{:?}", guard.stats());
    let mut segments = 0;
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if fault_support::is_segment(STEM, &name) {
            segments += 1;
            let len = e.metadata().expect("metadata").len();
            assert!(
                len <= LIMIT,
                "{name} holds {len} bytes, over the {LIMIT} limit"
            );
        }
    }
    assert!(
        segments >= 10,
        "the backlog was not split: {segments} segments"
    );
    let lines = fault_support::read_all(dir, STEM).expect("read back");
    let seqs: Vec<u64> = lines
        .iter()
        .filter_map(|l| l.json["fields"]["seq"].as_u64())
        .collect();
    assert_eq!(
        seqs,
        (0..EVENTS).collect::<Vec<_>>(),
        "every event once, in order"
    );
}
