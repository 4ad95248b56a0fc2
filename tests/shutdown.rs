//! Shutdown and drop: everything enqueued before is in the file; afterwards every call on the
//! guard errors at once instead of hanging, and logging is counted as dropped, never a panic.

mod common;

use std::time::{Duration, Instant};

use tracing_filesink::{ErrorKind, FileSink, Format};

const THREADS: u64 = 4;
const PER_THREAD: u64 = 10_000;

fn log_from_threads(dispatch: &tracing::Dispatch) {
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let d = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for seq in 0..PER_THREAD {
                        tracing::info!(thread = t, seq, "before shutdown");
                    }
                })
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Every (thread, seq) once, in order per thread.
fn assert_all_present(dir: &std::path::Path) {
    let lines = common::lines(&common::read_active(dir, "app"), "app.log");
    assert_eq!(lines.len() as u64, THREADS * PER_THREAD);
    let mut next = vec![0u64; THREADS as usize];
    for l in &lines {
        let v = common::json(l);
        let t = v["fields"]["thread"].as_u64().unwrap() as usize;
        assert_eq!(v["fields"]["seq"].as_u64(), Some(next[t]), "{l}");
        next[t] += 1;
    }
}

fn assert_errors_at_once(what: &str, f: impl FnOnce() -> Result<(), tracing_filesink::Error>) {
    let start = Instant::now();
    let e = f().expect_err(what);
    let took = start.elapsed();
    assert_eq!(e.kind(), ErrorKind::ShutDown, "{what}: {e}");
    assert!(took < Duration::from_secs(1), "{what} took {took:?}");
}

#[test]
fn shutdown_writes_everything_then_every_call_errors_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app")
        // A long timeout: a hang would show as a slow call, not as a timeout error.
        .shutdown_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    log_from_threads(&dispatch);
    guard.shutdown(Duration::from_secs(10)).unwrap();
    assert_all_present(tmp.path());
    let before = guard.stats();
    assert_eq!(before.events_dropped, 0);
    assert_eq!(before.records_written, THREADS * PER_THREAD);

    assert_errors_at_once("flush after shutdown", || guard.flush());
    assert_errors_at_once("sync after shutdown", || guard.sync());
    assert_errors_at_once("rotate after shutdown", || guard.rotate());
    assert_errors_at_once("reopen after shutdown", || guard.reopen());
    assert_errors_at_once("second shutdown", || {
        guard.shutdown(Duration::from_secs(30))
    });

    // Logging after shutdown neither panics nor blocks nor writes: it counts drops.
    let start = Instant::now();
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..1000 {
            tracing::info!(i, "after shutdown");
        }
    });
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "logging after shutdown blocked"
    );
    assert_eq!(guard.stats().events_dropped, 1000);
    assert_all_present(tmp.path());
    drop(guard);
    assert_all_present(tmp.path());
}

#[test]
fn dropping_the_guard_flushes() {
    for format in [Format::Json, Format::Text] {
        let tmp = tempfile::tempdir().unwrap();
        let (layer, guard) = FileSink::builder(tmp.path(), "app")
            .format(format)
            .build()
            .unwrap();
        let dispatch = common::dispatch(layer);
        log_from_threads(&dispatch);
        // No flush: Drop alone must drain the queue and write it out.
        drop(guard);
        let lines = common::lines(&common::read_active(tmp.path(), "app"), "app.log");
        assert_eq!(lines.len() as u64, THREADS * PER_THREAD, "{format:?}");
        if format == Format::Json {
            assert_all_present(tmp.path());
        }
        // The layer still lives, so the sink goes on: a later event is written, and dropping
        // the layer (the last user) shuts the sink down, draining it.
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("late"));
        drop(dispatch);
        let after = common::read_active(tmp.path(), "app");
        let after = common::lines(&after, "app.log");
        assert_eq!(after.len(), lines.len() + 1, "{format:?}");
        assert!(after.last().unwrap().contains("late"), "{format:?}");
    }
}

/// Dropping the layer (the whole subscriber) before the guard loses nothing either.
#[test]
fn dropping_the_subscriber_first_then_the_guard() {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app").build().unwrap();
    let dispatch = common::dispatch(layer);
    log_from_threads(&dispatch);
    drop(dispatch);
    drop(guard);
    assert_all_present(tmp.path());
}

/// A guard shared between threads: one thread shuts down while others flush. Every call
/// returns (Ok before the shutdown, ShutDown after), none hangs.
#[test]
fn concurrent_flush_and_shutdown_never_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app")
        .shutdown_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let guard = std::sync::Arc::new(guard);
    let dispatch = common::dispatch(layer);
    let flushers: Vec<_> = (0..3)
        .map(|t| {
            let g = guard.clone();
            let d = dispatch.clone();
            std::thread::spawn(move || {
                let mut shut = false;
                for i in 0..2_000 {
                    tracing::dispatcher::with_default(&d, || tracing::info!(t, i, "x"));
                    let start = Instant::now();
                    match g.flush() {
                        Ok(()) => assert!(!shut, "flush succeeded after a ShutDown error"),
                        Err(e) => {
                            assert_eq!(e.kind(), ErrorKind::ShutDown, "{e}");
                            shut = true;
                        }
                    }
                    assert!(start.elapsed() < Duration::from_secs(5), "flush hung");
                }
            })
        })
        .collect();
    // Shut down while the flushers are busy, without waiting on any timing.
    common::wait_until("some records written", Duration::from_secs(30), || {
        guard.stats().records_written >= 100
    });
    guard.shutdown(Duration::from_secs(10)).unwrap();
    for f in flushers {
        f.join().unwrap();
    }
    let stats = guard.stats();
    let lines = common::lines(&common::read_active(tmp.path(), "app"), "app.log");
    assert_eq!(lines.len() as u64, stats.records_written);
    // Drops counted as the writer exited are reported by a record of the sink's own.
    assert_eq!(
        stats.records_written - stats.internal_records + stats.events_dropped,
        3 * 2_000
    );
}
