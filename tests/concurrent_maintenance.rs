//! While 8 threads log, rotation, compression and retention run on their own threads: every
//! event is accounted for (in compressed or plain segments and the active file), once and in
//! order per thread; with a pruning policy, what is kept is complete and ordered; and the
//! callers finish while the compressor is still behind, so they never waited on it.

mod common;

use std::path::Path;
use std::time::Duration;

use tracing_filesink::{Compression, FileSink, Retention, Rotation};

const THREADS: u64 = 8;
const PER_THREAD: u64 = 4_000;
const WAIT: Duration = Duration::from_secs(30);

fn log_from_threads(dispatch: &tracing::Dispatch) {
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let d = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    for seq in 0..PER_THREAD {
                        // Poorly compressible, so compression is real work.
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        tracing::info!(
                            thread = t,
                            seq,
                            noise = format!("{x:016x}{:016x}", x.rotate_left(17)),
                            "work"
                        );
                    }
                })
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Per-thread sequence numbers found in all files, in file order. Checks no segment is both
/// plain and compressed.
fn read_all(dir: &Path) -> Vec<Vec<u64>> {
    let segs = common::segments(dir, "app");
    let mut seqs: Vec<u64> = segs.iter().map(|s| s.seq).collect();
    seqs.dedup();
    assert_eq!(
        seqs.len(),
        segs.len(),
        "a segment is both plain and compressed"
    );
    let mut per_thread = vec![Vec::new(); THREADS as usize];
    for (_, lines) in common::all_files_lines(dir, "app") {
        for l in lines {
            let v = common::json(&l);
            let t = v["fields"]["thread"].as_u64().unwrap() as usize;
            per_thread[t].push(v["fields"]["seq"].as_u64().unwrap());
        }
    }
    per_thread
}

#[test]
fn everything_accounted_for_while_rotating_compressing_and_retaining() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (layer, guard) = FileSink::builder(dir, "app")
        .rotation(Rotation::size(64 * 1024))
        .compression(Compression::gzip().level(9))
        .compress_after(1)
        // Retention runs after every rotation but keeps everything here.
        .retention(Retention::files(10_000))
        .build()
        .unwrap();
    log_from_threads(&common::dispatch(layer));
    guard.flush().unwrap();
    let at_end = guard.stats();
    assert!(
        at_end.rotations >= 20,
        "too few rotations to test anything: {at_end:?}"
    );
    // Callers and writer are done while finished segments still wait for the compressor:
    // nothing on the logging path waited on compression.
    assert!(
        at_end.segments_compressed + 1 < at_end.rotations,
        "the compressor kept up with 8 logging threads: did the logging path wait on it? ({at_end:?})"
    );
    let rotations = guard.stats().rotations;
    common::wait_until("all but the newest segment compressed", WAIT, || {
        guard.stats().segments_compressed == rotations - 1
    });
    guard.shutdown(Duration::from_secs(10)).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.events_dropped, 0);
    assert_eq!(stats.segments_pruned, 0);
    assert_eq!(stats.compression_failures, 0);
    let segs = common::segments(dir, "app");
    assert_eq!(segs.len() as u64, stats.rotations);
    assert_eq!(
        segs.iter().map(|s| s.gz).collect::<Vec<_>>(),
        (0..segs.len())
            .map(|i| i + 1 < segs.len())
            .collect::<Vec<_>>(),
        "all but the newest compressed"
    );
    for (t, seqs) in read_all(dir).iter().enumerate() {
        assert_eq!(
            *seqs,
            (0..PER_THREAD).collect::<Vec<_>>(),
            "thread {t}: lost, duplicated or reordered"
        );
    }
    let temps: Vec<String> = common::file_names(dir)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
}

#[test]
fn what_retention_keeps_is_complete_and_ordered() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (layer, guard) = FileSink::builder(dir, "app")
        .rotation(Rotation::size(32 * 1024))
        .compression(Compression::gzip().level(1))
        .retention(Retention::files(5))
        .build()
        .unwrap();
    log_from_threads(&common::dispatch(layer));
    guard.flush().unwrap();
    let rotations = guard.stats().rotations;
    assert!(rotations > 20, "{:?}", guard.stats());
    common::wait_until("retention and compression to settle", WAIT, || {
        let s = guard.stats();
        s.segments_pruned == rotations - 5 && common::segments(dir, "app").iter().all(|s| s.gz)
    });
    guard.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(common::segments(dir, "app").len(), 5);
    // The oldest segments are gone; each thread's surviving events are its latest, without a
    // gap or a repeat.
    let mut survivors = 0;
    for (t, seqs) in read_all(dir).iter().enumerate() {
        let first = seqs.first().copied().unwrap_or(PER_THREAD);
        assert_eq!(
            *seqs,
            (first..PER_THREAD).collect::<Vec<_>>(),
            "thread {t}: kept events are not a gap-free suffix"
        );
        survivors += seqs.len();
    }
    assert!(survivors > 0);
}
