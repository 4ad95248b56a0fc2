//! A caller logging now and then must not pay a futex wake-up of the writer per event
//! (tokio-rs/tracing#3446 measured p50 2.6 µs / p99 26 µs for that path). The writer naps
//! without asking to be woken while events keep coming every few milliseconds, and only a
//! long pause lets it sleep deeply; `stats().caller_wakeups` counts every wake a caller paid.

use std::time::{Duration, Instant};

use tracing_filesink::FileSink;
use tracing_subscriber::prelude::*;

/// Logs `n` events spaced `gap` apart (the workload's pacing, not synchronization) and
/// returns the caller wake-ups they caused.
fn wakeups_for(n: usize, gap: Duration) -> (u64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(dir.path(), "app").build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        let start = Instant::now();
        for i in 0..n {
            // Pace by absolute deadlines so a slow iteration does not stretch the gaps.
            let due = start + gap * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            tracing::info!(i, "sparse");
        }
    });
    let before_flush = guard.stats().caller_wakeups;
    guard.flush().unwrap();
    let lines = std::fs::read_to_string(dir.path().join("app.log"))
        .unwrap()
        .lines()
        .count();
    (before_flush, lines)
}

#[test]
fn events_every_millisecond_never_wake_the_writer() {
    let (wakeups, lines) = wakeups_for(300, Duration::from_millis(1));
    assert_eq!(lines, 300);
    // The first event may find the writer asleep after start-up; a scheduler hiccup of more
    // than 50 ms on a loaded machine may cost one more. Per-event wake-ups would be ~300.
    assert!(wakeups <= 3, "{wakeups} wake-ups for 300 events 1 ms apart");
}

#[test]
fn events_after_long_pauses_wake_the_writer_each_time() {
    // The counter must be able to fail the test above: with 300 ms pauses the writer goes to
    // deep sleep between events (after ~50 ms idle), and the events wake it.
    let (wakeups, lines) = wakeups_for(5, Duration::from_millis(300));
    assert_eq!(lines, 5);
    assert!(
        wakeups >= 3,
        "only {wakeups} wake-ups for 5 events 300 ms apart"
    );
}
