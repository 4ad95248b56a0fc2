//! What `stats()` tells a dashboard: the bytes on disk now, what is buffered in memory, the
//! writer's state and its last error; `Display`; and how many events `shutdown()` gave up on
//! a full disk (a real one: a tmpfs, as root).

mod fault_support;

use std::path::Path;
use std::time::Duration;

use tracing_filesink::{Compression, FileSink, Overflow, Rotation, WriterState};
use tracing_subscriber::prelude::*;

const STEM: &str = "app";

/// Bytes of this sink's files in `dir`: the active file and the segments (not the lock).
fn sink_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(STEM) && !name.ends_with(".lock")
        })
        .map(|e| e.metadata().expect("stat").len())
        .sum()
}

fn log(dispatch: &tracing::Dispatch, from: u64, n: u64) {
    let pad = "p".repeat(100);
    tracing::dispatcher::with_default(dispatch, || {
        for seq in from..from + n {
            tracing::info!(seq, pad = pad.as_str(), "event");
        }
    });
}

/// Without compression or retention there is no maintenance pass, yet the count follows
/// every write and rotation.
#[test]
fn bytes_on_disk_is_current_without_maintenance() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (layer, guard) = FileSink::builder(dir, STEM)
        .rotation(Rotation::size(16 << 10))
        .build()
        .expect("build");
    let sub = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    log(&sub, 0, 100);
    guard.flush().expect("flush");
    let on_disk = sink_bytes(dir);
    assert!(on_disk > 10_000, "{on_disk}");
    assert_eq!(guard.stats().bytes_on_disk, on_disk, "active file only");
    log(&sub, 100, 500);
    guard.rotate().expect("rotate");
    log(&sub, 600, 10);
    guard.flush().expect("flush");
    let stats = guard.stats();
    assert!(stats.rotations >= 2, "{stats:?}");
    assert_eq!(
        stats.bytes_on_disk,
        sink_bytes(dir),
        "segments and active file"
    );
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
    // A new start counts what is there.
    let (_layer, guard) = FileSink::builder(dir, STEM).build().expect("build again");
    guard.flush().expect("flush");
    assert_eq!(
        guard.stats().bytes_on_disk,
        sink_bytes(dir),
        "after a restart"
    );
}

/// With compression, the count follows the plain segments being replaced by `.gz` ones.
#[test]
fn bytes_on_disk_follows_compression() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (layer, guard) = FileSink::builder(dir, STEM)
        .compression(Compression::gzip())
        .build()
        .expect("build");
    let sub = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    log(&sub, 0, 1000);
    guard.rotate().expect("rotate");
    log(&sub, 1000, 10);
    guard.wait_idle(Duration::from_secs(10)).expect("wait_idle");
    let stats = guard.stats();
    assert_eq!(stats.segments_compressed, 1, "{stats:?}");
    assert_eq!(stats.bytes_on_disk, sink_bytes(dir), "{stats:?}");
    assert!(stats.bytes_on_disk < stats.bytes_written / 2, "{stats:?}");
    // Writes after the pass count at once too.
    log(&sub, 1010, 50);
    guard.flush().expect("flush");
    assert_eq!(
        guard.stats().bytes_on_disk,
        sink_bytes(dir),
        "after more writes"
    );
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
}

/// A healthy sink's line, and a gone one's.
#[test]
fn display_is_one_line_with_the_state() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (layer, guard) = FileSink::builder(tmp.path(), STEM).build().expect("build");
    let sub = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    log(&sub, 0, 3);
    guard.flush().expect("flush");
    let stats = guard.stats();
    assert_eq!(stats.state, WriterState::Healthy);
    assert_eq!((stats.events_buffered, stats.bytes_buffered), (0, 0));
    assert_eq!(stats.last_error, None);
    let line = stats.to_string();
    assert!(line.starts_with("healthy: 3 records written ("), "{line}");
    assert!(
        line.contains("; buffered 0 events (0 B); 0 dropped (0 shed);"),
        "{line}"
    );
    assert!(!line.contains('\n'), "{line}");
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
    let stats = guard.stats();
    assert_eq!(stats.state, WriterState::Gone);
    assert!(stats.to_string().starts_with("gone: "), "{stats}");
}

/// During a full-disk outage `stats()` says the writer is failing, why and since when, and
/// how much waits in memory; `shutdown()` then says how many events it gave up, and they are
/// exactly the ones not in the file.
#[test]
#[ignore = "needs root (mounts a tmpfs)"]
fn a_full_disk_shows_in_stats_and_shutdown_counts_what_it_gave_up() {
    let (_tmp, dir, _mount) = fault_support::tmpfs("1m");
    std::fs::write(dir.join("filler"), vec![0u8; 900 << 10]).expect("write filler");
    let (layer, guard) = FileSink::builder(&dir, STEM)
        .overflow(Overflow::Block)
        .queue_capacity(100_000)
        .queue_bytes(64 << 20)
        .build()
        .expect("build");
    let sub = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let mut seq = 0;
    let full = fault_support::wait_until(Duration::from_secs(20), || {
        log(&sub, seq, 100);
        seq += 100;
        guard.stats().write_errors > 0
    });
    assert!(
        full,
        "no write error after {seq} events: {:?}",
        guard.stats()
    );
    // More than the free space, less than the queue holds: all of it waits in memory.
    log(&sub, seq, 2000);
    seq += 2000;
    let in_file = |s: &tracing_filesink::Stats| s.records_written - s.internal_records;
    let settled = fault_support::wait_until(Duration::from_secs(10), || {
        let s = guard.stats();
        s.events_buffered == seq - in_file(&s) && s.state == WriterState::Failing
    });
    let stats = guard.stats();
    assert!(
        settled,
        "{seq} events logged, {} in the file, {} buffered: {stats:?}",
        in_file(&stats),
        stats.events_buffered
    );
    assert!(stats.bytes_buffered > 2000 * 100, "{stats:?}");
    let last = stats.last_error.as_deref().expect("a last error");
    assert!(last.contains("write"), "{last}");
    let at = stats.last_error_at.expect("its time");
    assert!(
        at.elapsed().unwrap_or_default() < Duration::from_secs(60),
        "{at:?}"
    );
    let line = stats.to_string();
    assert!(line.starts_with("failing: "), "{line}");
    assert!(line.contains("; last error at "), "{line}");
    eprintln!("while full: {line}");

    let err = guard
        .shutdown(Duration::from_millis(300))
        .expect_err("shutdown on a full disk");
    let after = guard.stats();
    let lost = err.events_lost().expect("events given up");
    assert_eq!(lost, seq - in_file(&after), "{err}; {after:?}");
    assert_eq!(after.events_dropped, lost, "{after:?}");
    assert!(
        err.to_string().contains(&format!("{lost} events given up")),
        "{err}"
    );
    assert_eq!(after.state, WriterState::Gone);
    assert_eq!(
        (after.events_buffered, after.bytes_buffered),
        (0, 0),
        "{after:?}"
    );
    eprintln!("shutdown: {err}");
}
