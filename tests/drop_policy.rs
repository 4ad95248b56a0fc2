//! Dropping policies: `Overflow::Drop` and `Overflow::BlockFor` with a tiny queue. Every
//! dropped event is counted in `stats()`, the count equals the events missing from the file,
//! and the in-band records (level WARN, target `tracing_filesink`, message "events dropped",
//! field `dropped`) add up to the same number.

mod common;

use std::time::Duration;

use tracing_filesink::{FileSink, Format, Overflow};

const THREADS: u64 = 4;
const PER_THREAD: u64 = 20_000;

/// What the file says after a run: per-thread sequence numbers of the events present, and
/// the sum of the in-band drop reports.
struct Outcome {
    present: u64,
    reported: u64,
    reports: usize,
}

/// `threads` threads each log seq `base..base + per_thread`.
fn log_burst(dispatch: &tracing::Dispatch, threads: u64, base: u64, per_thread: u64) {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let d = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for seq in base..base + per_thread {
                        tracing::info!(thread = t, seq, "burst");
                    }
                })
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Reads the JSON file: every event at most once and in order per thread; sums the drop
/// reports, checking their shape.
fn read_json(dir: &std::path::Path, threads: u64) -> Outcome {
    let bytes = common::read_active(dir, "app");
    let mut next = vec![0u64; threads as usize];
    let mut out = Outcome {
        present: 0,
        reported: 0,
        reports: 0,
    };
    for line in common::lines(&bytes, "app.log") {
        let v = common::json(&line);
        if v["target"] == "tracing_filesink" {
            assert_eq!(v["level"], "WARN", "{line}");
            assert_eq!(v["fields"]["message"], "events dropped", "{line}");
            let n = v["fields"]["dropped"]
                .as_u64()
                .unwrap_or_else(|| panic!("`dropped` is not an integer: {line}"));
            assert!(n > 0, "a drop report of zero: {line}");
            assert!(v["timestamp"].is_string(), "{line}");
            out.reported += n;
            out.reports += 1;
            continue;
        }
        assert_eq!(v["target"], "drop_policy", "{line}");
        let t = v["fields"]["thread"].as_u64().unwrap() as usize;
        let seq = v["fields"]["seq"].as_u64().unwrap();
        assert!(
            seq >= next[t],
            "thread {t}: seq {seq} after {} (duplicated or reordered)",
            next[t]
        );
        next[t] = seq + 1;
        out.present += 1;
    }
    out
}

fn check_accounting(
    overflow: Overflow,
    builder: impl FnOnce(tracing_filesink::Builder) -> tracing_filesink::Builder,
) {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = builder(FileSink::builder(tmp.path(), "app").overflow(overflow))
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    log_burst(&dispatch, THREADS, 0, PER_THREAD);
    // Shutdown writes the last drop report (drops counted before it) and closes the file.
    guard.shutdown(Duration::from_secs(10)).unwrap();
    let stats = guard.stats();
    let out = read_json(tmp.path(), THREADS);
    let total = THREADS * PER_THREAD;
    assert!(
        stats.events_dropped > 0,
        "{overflow:?}: no event was dropped, so the accounting was not tested (stats {stats:?})"
    );
    assert_eq!(
        stats.events_dropped,
        total - out.present,
        "{overflow:?}: dropped count vs events missing from the file"
    );
    assert_eq!(
        out.reported, stats.events_dropped,
        "{overflow:?}: in-band reports ({} records) vs stats",
        out.reports
    );
    assert_eq!(stats.internal_records, out.reports as u64);
    assert_eq!(stats.records_written, out.present + out.reports as u64);
}

#[test]
fn drop_with_tiny_event_capacity_accounts_for_every_drop() {
    check_accounting(Overflow::Drop, |b| b.queue_capacity(4));
}

#[test]
fn drop_with_tiny_byte_budget_accounts_for_every_drop() {
    // A record is ~100 bytes: the byte budget, not the event capacity, is what overflows.
    check_accounting(Overflow::Drop, |b| b.queue_bytes(256));
}

#[test]
fn block_for_with_tiny_queue_accounts_for_every_drop() {
    check_accounting(Overflow::BlockFor(Duration::from_micros(1)), |b| {
        b.queue_capacity(2)
    });
}

/// `BlockFor` with a generous bound behaves like `Block` while the writer is healthy.
#[test]
fn block_for_with_room_to_wait_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app")
        .overflow(Overflow::BlockFor(Duration::from_secs(30)))
        .queue_capacity(4)
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    log_burst(&dispatch, THREADS, 0, 5_000);
    guard.flush().unwrap();
    let out = read_json(tmp.path(), THREADS);
    assert_eq!(guard.stats().events_dropped, 0);
    assert_eq!(out.present, THREADS * 5_000);
    assert_eq!(out.reports, 0);
}

/// A record larger than the byte budget still goes through an empty queue: with `Block`,
/// a budget smaller than any record loses nothing.
#[test]
fn block_with_byte_budget_below_one_record_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app")
        .queue_bytes(16)
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    log_burst(&dispatch, THREADS, 0, 2_000);
    guard.flush().unwrap();
    let out = read_json(tmp.path(), THREADS);
    assert_eq!(guard.stats().events_dropped, 0);
    assert_eq!(out.present, THREADS * 2_000);
}

/// With `Block`, a queue of two chunks, and small records mixed with records large enough to
/// count against the byte budget: callers wait for room in the channel and in the budget
/// alike, and nothing is lost.
#[test]
fn block_with_mixed_record_sizes_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app")
        .queue_capacity(2)
        .queue_bytes(64 << 10)
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    let big = "b".repeat(20 << 10);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let d = dispatch.clone();
            let big = big.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for seq in 0..2_000u64 {
                        let pad = if seq % 3 == 0 { big.as_str() } else { "" };
                        tracing::info!(thread = t, seq, pad, "burst");
                    }
                })
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    guard.flush().unwrap();
    let out = read_json(tmp.path(), THREADS);
    assert_eq!(guard.stats().events_dropped, 0);
    assert_eq!(out.present, THREADS * 2_000);
}

/// After `flush()` returns, the file already reports every drop counted before the call.
#[test]
fn flush_writes_the_pending_drop_report() {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app")
        .overflow(Overflow::Drop)
        .queue_capacity(4)
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    for round in 0..20 {
        log_burst(&dispatch, THREADS, round * 2_000, 2_000);
        let dropped = guard.stats().events_dropped;
        guard.flush().unwrap();
        let out = read_json(tmp.path(), THREADS);
        assert_eq!(
            out.reported, dropped,
            "round {round}: after flush the file reports {} drops, stats counted {dropped} before the flush",
            out.reported
        );
    }
}

/// The drop report in the text format: `WARN tracing_filesink: events dropped dropped=N`.
#[test]
fn text_format_reports_drops_in_band() {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app")
        .format(Format::Text)
        .overflow(Overflow::Drop)
        .queue_capacity(4)
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    log_burst(&dispatch, THREADS, 0, PER_THREAD / 2);
    guard.shutdown(Duration::from_secs(10)).unwrap();
    let stats = guard.stats();
    assert!(stats.events_dropped > 0, "nothing dropped: {stats:?}");
    let bytes = common::read_active(tmp.path(), "app");
    let mut present = 0;
    let (mut reported, mut reported_info) = (0, 0);
    for line in common::lines(&bytes, "app.log") {
        if let Some(i) = line.find(" tracing_filesink: events dropped dropped=") {
            assert!(
                line[..i].ends_with(" WARN"),
                "drop report not at WARN: {line}"
            );
            // `dropped=N`, then the levels with any: `info=M`.
            let field = |key: &str| -> u64 {
                line[i..]
                    .split(' ')
                    .find_map(|w| w.strip_prefix(key))
                    .map_or(0, |v| v.parse().unwrap())
            };
            let (n, info) = (field("dropped="), field("info="));
            assert!(
                info <= n,
                "a report's levels add up to more than it: {line}"
            );
            reported += n;
            reported_info += info;
        } else {
            assert!(line.contains(" INFO drop_policy: burst thread="), "{line}");
            present += 1;
        }
    }
    assert_eq!(stats.events_dropped, THREADS * PER_THREAD / 2 - present);
    assert_eq!(reported, stats.events_dropped);
    // Every event of the burst is INFO: over all reports, the levels add up too.
    assert_eq!(reported_info, stats.events_dropped);
    assert_eq!(stats.dropped_by_level.info, stats.events_dropped);
}
