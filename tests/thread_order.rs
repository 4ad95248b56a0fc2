//! Each thread's events stay in its order, and `flush()` returns only once every event logged
//! before it is in the file, while several threads log at full speed and another thread
//! flushes in between (the default configuration: full chunks travel through the channel
//! while the writer also collects the threads' open chunks).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tracing_filesink::FileSink;

const THREADS: usize = 4;
const PER_THREAD: u64 = 60_000;

/// Reads the lines added to the file since `offset`: per thread, the next expected seq.
fn read_new(path: &std::path::Path, offset: &mut usize, next: &mut [u64]) {
    let bytes = std::fs::read(path).unwrap();
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    for line in bytes[*offset..end]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
    {
        let v: serde_json::Value = serde_json::from_slice(line).expect("a JSON line");
        let t = v["fields"]["t"].as_u64().expect("field t") as usize;
        let seq = v["fields"]["seq"].as_u64().expect("field seq");
        assert_eq!(
            seq, next[t],
            "thread {t}: seq {seq} where {} was due (lost, duplicated or reordered)",
            next[t]
        );
        next[t] += 1;
    }
    *offset = end;
}

#[test]
fn per_thread_order_and_flush_under_contention() {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app").build().unwrap();
    let dispatch = common::dispatch(layer);
    let path = common::active(tmp.path(), "app");
    // Per thread: how many events have returned from the logging call.
    let logged: Arc<Vec<AtomicU64>> = Arc::new((0..THREADS).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let d = dispatch.clone();
            let logged = logged.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for seq in 0..PER_THREAD {
                        tracing::info!(t = t as u64, seq);
                        logged[t].store(seq + 1, Ordering::Release);
                    }
                })
            })
        })
        .collect();

    let mut offset = 0;
    let mut next = vec![0u64; THREADS];
    let mut flushes = 0;
    while !done.load(Ordering::Relaxed) {
        let before: Vec<u64> = logged.iter().map(|n| n.load(Ordering::Acquire)).collect();
        if before.iter().all(|&n| n == PER_THREAD) {
            done.store(true, Ordering::Relaxed);
        }
        guard.flush().unwrap();
        flushes += 1;
        read_new(&path, &mut offset, &mut next);
        for t in 0..THREADS {
            assert!(
                next[t] >= before[t],
                "flush {flushes}: thread {t} had logged {} events before the flush, the file holds {}",
                before[t],
                next[t]
            );
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(next, vec![PER_THREAD; THREADS]);
    assert!(
        flushes > 1,
        "no flush happened while the threads were logging"
    );
}
