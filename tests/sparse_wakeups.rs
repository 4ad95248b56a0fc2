//! Wake-ups follow the work. A caller logging every millisecond or so must not pay a futex
//! wake-up of the writer per event (tokio-rs/tracing#3446 measured p50 2.6 µs / p99 26 µs
//! for that path): the writer lingers without asking to be woken while events keep coming
//! every few milliseconds. A quiet service (an event every 10 ms or more) costs one writer
//! wake-up per event, as tracing-appender's worker does, and an idle sink none at all.
//! `stats().caller_wakeups` counts every wake a caller paid, `stats().writer_wakeups` every
//! time the writer woke.

use std::time::{Duration, Instant};

use tracing_filesink::FileSink;
use tracing_subscriber::prelude::*;

/// Logs `n` events spaced `gap` apart (the workload's pacing, not synchronization) and
/// returns the caller wake-ups they caused.
fn wakeups_for(n: usize, gap: Duration) -> (u64, usize) {
    let (stats, lines) = stats_for(n, gap);
    (stats.caller_wakeups, lines)
}

/// As `wakeups_for`, with the whole snapshot taken before the final flush.
fn stats_for(n: usize, gap: Duration) -> (tracing_filesink::Stats, usize) {
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
    let before_flush = guard.stats();
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
    // The first events may find the writer asleep after start-up, and on a loaded machine a
    // gap stretched past the writer's 5 ms lingering window costs one more. Per-event
    // wake-ups would be ~300.
    assert!(
        wakeups <= 30,
        "{wakeups} wake-ups for 300 events 1 ms apart"
    );
}

#[test]
fn events_after_long_pauses_wake_the_writer_each_time() {
    // The counter must be able to fail the test above: with 300 ms pauses the writer sleeps
    // between events (they are more than 5 ms apart), and the events wake it.
    let (wakeups, lines) = wakeups_for(5, Duration::from_millis(300));
    assert_eq!(lines, 5);
    assert!(
        wakeups >= 3,
        "only {wakeups} wake-ups for 5 events 300 ms apart"
    );
}

#[test]
fn a_quiet_service_costs_about_one_writer_wakeup_per_event() {
    let (stats, lines) = stats_for(60, Duration::from_millis(10));
    assert_eq!(lines, 60);
    // One wake-up per event (the caller's), the first linger after it at most: a writer
    // napping every millisecond would wake about 600 times.
    assert!(
        stats.writer_wakeups <= 2 * 60,
        "{} writer wake-ups for 60 events 10 ms apart",
        stats.writer_wakeups
    );
}

#[test]
fn an_idle_sink_does_not_wake() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(dir.path(), "app").build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("one event"));
    guard.flush().unwrap();
    // The measurement window, not synchronization: let the writer settle (a linger or two
    // after the flush), then watch it for half a second.
    std::thread::sleep(Duration::from_millis(100));
    let before = guard.stats().writer_wakeups;
    std::thread::sleep(Duration::from_millis(500));
    let after = guard.stats().writer_wakeups;
    assert_eq!(
        after,
        before,
        "an idle writer woke {} times",
        after - before
    );
    // And it still answers.
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("another"));
    guard.flush().unwrap();
    let lines = std::fs::read_to_string(dir.path().join("app.log")).unwrap();
    assert_eq!(lines.lines().count(), 2);
}
