//! Level-aware shedding over a slow or stuck disk (the fault-injecting file system is
//! crate-private, hence tests inside the crate).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracing::Level;

use crate::fault::{Fault, FaultFs, Held};
use crate::{FileSink, FileSinkGuard, Overflow, Shedding};

const STEM: &str = "app";
const THREADS: u64 = 4;

fn sink(dir: &Path, fs: &FaultFs, shedding: Shedding) -> (tracing::Dispatch, FileSinkGuard) {
    use tracing_subscriber::prelude::*;
    // 8 chunks of 128 records: the queue is more than 80% full with 7 chunks waiting.
    let (layer, guard) = FileSink::builder(dir, STEM)
        .queue_capacity(1024)
        .queue_bytes(1 << 20)
        .overflow(Overflow::Block)
        .shedding(shedding)
        .with_fs(Arc::new(fs.clone()))
        .build()
        .expect("build");
    (
        tracing::Dispatch::new(tracing_subscriber::registry().with(layer)),
        guard,
    )
}

/// Per level (ERROR 0 .. TRACE 4): events of the bench's threads in the file, and the sum
/// of the per-level counts of the in-band drop reports.
fn read_back(dir: &Path) -> ([u64; 5], [u64; 5]) {
    let data = std::fs::read(dir.join("app.log")).expect("read app.log");
    let (mut written, mut reported) = ([0u64; 5], [0u64; 5]);
    let names = ["error", "warn", "info", "debug", "trace"];
    for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(line).expect("JSON line");
        if v["target"] == "tracing_filesink" {
            for (i, name) in names.iter().enumerate() {
                reported[i] += v["fields"][name].as_u64().unwrap_or(0);
            }
        } else {
            let level = v["level"].as_str().expect("level").to_ascii_lowercase();
            let i = names.iter().position(|n| *n == level).expect("a level");
            written[i] += 1;
        }
    }
    (written, reported)
}

/// Each thread logs `per_thread` events: an ERROR every 1,000, a WARN every 1,000 (500
/// later), DEBUG otherwise. Returns the events logged per level.
fn storm(dispatch: &tracing::Dispatch, per_thread: u64) -> [u64; 5] {
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let d = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for i in 0..per_thread {
                        match i % 1000 {
                            0 => tracing::error!(t, i, user = "alice", "request failed"),
                            500 => tracing::warn!(t, i, user = "alice", "request slow"),
                            _ => tracing::debug!(t, i, user = "alice", "request handled"),
                        }
                    }
                })
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a logging call panicked");
    }
    let rare = THREADS * per_thread.div_ceil(1000);
    let mut logged = [0; 5];
    logged[crate::stats::level_index(Level::ERROR)] = rare;
    logged[crate::stats::level_index(Level::WARN)] = THREADS * ((per_thread + 500) / 1000);
    logged[crate::stats::level_index(Level::DEBUG)] = THREADS * per_thread - rare - logged[1];
    logged
}

/// A DEBUG storm over a slow disk: every ERROR and WARN is written, the DEBUG events that
/// are not are reported by level, and the counts add up.
#[test]
fn a_debug_storm_over_a_slow_disk_keeps_every_error_and_warn() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("logs");
    let fs = FaultFs::new(&dir, &root.path().join("trash"), 0, Fault::Fail(0));
    let (dispatch, guard) = sink(&dir, &fs, Shedding::below(Level::WARN));
    fs.slow_writes(Duration::from_millis(20));
    let logged = storm(&dispatch, 50_000);
    fs.slow_writes(Duration::ZERO);
    guard.shutdown(Duration::from_secs(30)).expect("shutdown");
    let stats = guard.stats();
    let (written, reported) = read_back(&dir);
    assert_eq!(written[0], logged[0], "every ERROR in the file: {stats:?}");
    assert_eq!(written[1], logged[1], "every WARN in the file: {stats:?}");
    assert_eq!(
        (reported[0], reported[1]),
        (0, 0),
        "no ERROR or WARN dropped"
    );
    assert!(reported[3] > 0, "DEBUG events were shed: {stats:?}");
    assert_eq!(
        written[3] + reported[3],
        logged[3],
        "every DEBUG written or reported: {stats:?}"
    );
    assert_eq!(stats.dropped_by_level.debug, reported[3], "{stats:?}");
    assert_eq!(stats.events_shed_below_level, reported[3], "{stats:?}");
}

/// With the writer stuck in a write, DEBUG callers never wait: without shedding each
/// waits for the stall to be noticed (the stall timeout and one slice).
#[test]
fn debug_callers_never_wait_for_a_stuck_writer() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("logs");
    let fs = FaultFs::new(&dir, &root.path().join("trash"), 0, Fault::Fail(0));
    let (dispatch, guard) = sink(&dir, &fs, Shedding::below(Level::INFO));
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("before"));
    guard.flush().expect("flush before the stall");
    fs.hold(Held::Write);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let d = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for i in 0..20_000u64 {
                        tracing::debug!(t, i, "request handled");
                    }
                })
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a logging call panicked");
    }
    let during = guard.stats();
    fs.release(Held::Write);
    assert_eq!(during.blocked_nanos, 0, "a DEBUG caller waited: {during:?}");
    assert!(during.events_shed_below_level > 0, "{during:?}");
    guard.shutdown(Duration::from_secs(30)).expect("shutdown");
    let stats = guard.stats();
    let (written, reported) = read_back(&dir);
    assert_eq!(written[3] + reported[3], THREADS * 20_000, "{stats:?}");
}
