//! The fsync policies, observed through `stats().fsyncs`.

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
