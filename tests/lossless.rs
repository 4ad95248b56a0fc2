//! With `Overflow::Block` (the default) nothing is lost, duplicated or reordered: 8 threads
//! log 100,000 events each and every (thread, seq) is in the file exactly once, in order per
//! thread, on a valid JSON line with the expected fields and types.

mod common;

use serde_json::Value;
use tracing_filesink::{FileSink, Overflow};

const THREADS: u64 = 8;
const PER_THREAD: u64 = 100_000;

#[derive(Debug)]
struct Payload {
    #[allow(dead_code)]
    id: u64,
}

#[test]
fn eight_threads_block_lose_nothing_and_keep_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app")
        .overflow(Overflow::Block)
        // A small queue makes the callers block often: the lossless path is what is tested.
        .queue_capacity(1024)
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);

    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let d = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    let span = tracing::info_span!("worker", thread = t);
                    let _e = span.enter();
                    for seq in 0..PER_THREAD {
                        tracing::info!(
                            thread = t,
                            seq,
                            neg = -(seq as i64),
                            ratio = seq as f64 / 4.0,
                            even = seq.is_multiple_of(2),
                            name = "filesink",
                            dbg = ?Payload { id: seq },
                            "event {seq} of thread {t}"
                        );
                    }
                })
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    guard.flush().unwrap();

    let bytes = std::fs::read(common::active(tmp.path(), "app")).unwrap();
    let lines = common::lines(&bytes, "app.log");
    assert_eq!(lines.len() as u64, THREADS * PER_THREAD, "line count");

    // Parsing 800,000 lines dominates a debug run: check them on every core, then check the
    // order sequentially.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = lines.len().div_ceil(workers);
    let ids: Vec<(u64, u64)> = std::thread::scope(|s| {
        let parts: Vec<_> = lines
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|l| check_line(l)).collect::<Vec<_>>()))
            .collect();
        parts.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut next = vec![0u64; THREADS as usize];
    for (t, seq) in ids {
        assert_eq!(
            seq, next[t as usize],
            "thread {t}: expected seq {} next, found {seq} (lost, duplicated or reordered)",
            next[t as usize]
        );
        next[t as usize] += 1;
    }
    assert!(
        next.iter().all(|&n| n == PER_THREAD),
        "per-thread counts {next:?}"
    );

    let stats = guard.stats();
    assert_eq!(stats.events_dropped, 0);
    assert_eq!(stats.records_written, THREADS * PER_THREAD);
    assert_eq!(stats.internal_records, 0);
    assert_eq!(stats.bytes_written, bytes.len() as u64);
    assert_eq!(stats.write_errors, 0);
    guard.shutdown(std::time::Duration::from_secs(10)).unwrap();
}

/// Checks one record's fields and types; returns its (thread, seq).
fn check_line(line: &str) -> (u64, u64) {
    let v = common::json(line);
    let obj = v.as_object().unwrap();
    let ts = obj["timestamp"]
        .as_str()
        .unwrap_or_else(|| panic!("{line}"));
    chrono::DateTime::parse_from_rfc3339(ts)
        .unwrap_or_else(|e| panic!("timestamp not RFC 3339 ({e}): {line}"));
    assert_eq!(obj["level"], "INFO", "{line}");
    assert_eq!(obj["target"], "lossless", "{line}");
    let f = obj["fields"].as_object().unwrap();
    let t = f["thread"].as_u64().unwrap();
    let seq = f["seq"].as_u64().unwrap();
    assert!(t < THREADS && seq < PER_THREAD, "{line}");
    assert_eq!(
        f["message"],
        format!("event {seq} of thread {t}").as_str(),
        "{line}"
    );
    assert_eq!(f["neg"].as_i64(), Some(-(seq as i64)), "{line}");
    assert!(f["ratio"].is_f64(), "{line}");
    assert_eq!(f["ratio"].as_f64(), Some(seq as f64 / 4.0), "{line}");
    assert_eq!(f["even"], Value::Bool(seq.is_multiple_of(2)), "{line}");
    assert_eq!(f["name"], "filesink", "{line}");
    assert_eq!(
        f["dbg"],
        format!("Payload {{ id: {seq} }}").as_str(),
        "{line}"
    );
    assert_eq!(f.len(), 8, "unexpected fields: {line}");
    let span = obj["span"].as_object().unwrap();
    assert_eq!(span["name"], "worker", "{line}");
    assert_eq!(span["thread"].as_u64(), Some(t), "{line}");
    assert_eq!(span.len(), 2, "{line}");
    let spans = obj["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 1, "{line}");
    assert_eq!(spans[0], obj["span"], "{line}");
    assert_eq!(obj.len(), 6, "unexpected keys: {line}");
    (t, seq)
}
