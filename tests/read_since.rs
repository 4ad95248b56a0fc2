//! `LogDir::records_since` (what `filesink cat --since` uses) finds the same records as
//! reading everything and filtering, while reading far less: segments that end before the
//! time are skipped by their names, and the first plain file is entered by bisection (the
//! times in a file never decrease).

mod common;

use std::time::{Duration, SystemTime};

use tracing_filesink::read::LogDir;
use tracing_filesink::{Compression, FileSink, ManualClock, Rotation};

#[test]
fn records_since_finds_what_a_full_scan_finds_and_reads_less() {
    let tmp = tempfile::tempdir().unwrap();
    let start = common::at("2026-12-03T10:00:00Z");
    let clock = ManualClock::new(start);
    let (layer, guard) = FileSink::builder(tmp.path(), "app")
        .rotation(Rotation::size(512 * 1024))
        .compression(Compression::gzip())
        .compress_after(3)
        .clock(clock.clone())
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    const EVENTS: u64 = 40_000;
    tracing::dispatcher::with_default(&dispatch, || {
        for seq in 0..EVENTS {
            tracing::info!(seq, "tick");
            clock.advance(Duration::from_millis(7));
            // A segment's name carries the clock's time when the writer opened it. Under
            // load the writer can fall a whole queue (tens of thousands of events, minutes
            // of this clock) behind, and the names then say little about what the files
            // hold. Flushing keeps it within 500 events (3.5 s) of the clock, as a writer
            // keeping up with a real clock is.
            if seq % 500 == 499 {
                guard.flush().unwrap();
            }
        }
    });
    guard.wait_idle(Duration::from_secs(60)).unwrap();
    let logs = LogDir::open(tmp.path(), "app").unwrap();
    let kinds: Vec<_> = logs.segments().unwrap().iter().map(|s| s.kind()).collect();
    assert!(
        kinds.len() > 6,
        "several segments, some compressed: {kinds:?}"
    );
    let all: Vec<(u64, SystemTime)> = logs
        .records()
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            let seq = common::json(r.line().as_str().unwrap())["fields"]["seq"]
                .as_u64()
                .unwrap();
            (seq, r.timestamp().unwrap())
        })
        .collect();
    assert_eq!(all.len() as u64, EVENTS);
    for at_ms in [
        0u64,
        1,
        7 * 1_000,
        7 * 20_000 + 3,
        7 * 39_990,
        7 * 40_000,
        7 * 50_000,
    ] {
        let since = start + Duration::from_millis(at_ms);
        let expected: Vec<u64> = all
            .iter()
            .filter(|(_, t)| *t >= since)
            .map(|(s, _)| *s)
            .collect();
        let mut read = 0u64;
        let got: Vec<u64> = logs
            .records_since(since, |r| r.timestamp())
            .unwrap()
            .map(|r| r.unwrap())
            .inspect(|_| read += 1)
            .filter(|r| r.timestamp().is_some_and(|t| t >= since))
            .map(|r| {
                common::json(r.line().as_str().unwrap())["fields"]["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(got, expected, "since +{at_ms} ms");
        // Read before the first match: at most a probe span of lines (64 KiB, ~150 bytes
        // a line) plus what a compressed first segment holds.
        let extra = read - expected.len() as u64;
        if at_ms >= 7 * 20_000 {
            assert!(
                extra < 5_000,
                "since +{at_ms} ms: {extra} records read before it"
            );
        }
    }
}
