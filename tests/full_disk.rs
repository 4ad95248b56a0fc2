//! A real full disk: a 1 MiB tmpfs (needs root: `#[ignore]`d, run as root by `.ci/run`),
//! filled while logging, then freed. Checks: no panic, write errors in stats and returned by flush, no torn line,
//! drops counted in stats and reported in-band with the same count, writing resumes by itself.

mod fault_support;

use std::path::Path;
use std::time::Duration;

use tracing_filesink::{FileSink, Overflow};
use tracing_subscriber::prelude::*;

const STEM: &str = "app";

/// The file ends with a complete line.
fn ends_clean(path: &Path) -> bool {
    let data = std::fs::read(path).unwrap_or_default();
    data.is_empty() || data.ends_with(b"\n")
}

#[test]
#[ignore = "needs root (mounts a tmpfs)"]
fn full_disk_then_space_returns() {
    // Small, but the space freed later must exceed what the writer holds while it cannot
    // write (up to max(queue_bytes, 256 KiB)), or it fills the disk again at once.
    let (_tmp, dir, _mount) = fault_support::tmpfs("1m");
    // A filler we can delete later to give the space back.
    let filler = dir.join("filler");
    std::fs::write(&filler, vec![0u8; 800 << 10]).expect("write filler");

    let (layer, guard) = FileSink::builder(&dir, STEM)
        .overflow(Overflow::BlockFor(Duration::from_millis(1)))
        .queue_capacity(512)
        .queue_bytes(32 << 10)
        // flush() while the disk is full waits at most this long for room in the queue.
        .shutdown_timeout(Duration::from_secs(1))
        .build()
        .expect("build");
    let active = guard.active_path().to_path_buf();
    let subscriber = tracing_subscriber::registry().with(layer);
    let pad = "p".repeat(150);
    let mut seq = 0u64;
    tracing::subscriber::with_default(subscriber, || {
        // Fill the disk.
        let full = fault_support::wait_until(Duration::from_secs(20), || {
            for _ in 0..50 {
                tracing::info!(seq, pad = pad.as_str(), "filling");
                seq += 1;
            }
            guard.stats().write_errors > 0
        });
        assert!(
            full,
            "no write error after {seq} events on a 1 MiB tmpfs: {:?}",
            guard.stats()
        );
        // Keep logging against the full disk: the queue fills and events are dropped.
        for _ in 0..3000 {
            tracing::info!(seq, pad = pad.as_str(), "while full");
            seq += 1;
        }
        let err = guard.flush().expect_err("flush must report the full disk");
        eprintln!("flush while full: {err}");
        let stats = guard.stats();
        assert!(stats.write_errors > 0, "{stats:?}");
        assert!(
            stats.events_dropped > 0,
            "a full queue must drop with BlockFor: {stats:?}"
        );
        assert!(
            ends_clean(&active),
            "while the disk is full, {} ends with a torn line: a partial write must be cut back \
             to the last complete record before a retry",
            active.display()
        );

        // Give the space back; the writer must resume by itself.
        std::fs::remove_file(&filler).expect("remove filler");
        let resumed = fault_support::wait_until(Duration::from_secs(20), || guard.flush().is_ok());
        assert!(
            resumed,
            "writing did not resume after freeing space: {:?}",
            guard.stats()
        );
        // New events now reach the file.
        let first_after = seq;
        for _ in 0..10 {
            tracing::info!(seq, "after freeing");
            seq += 1;
        }
        guard.flush().expect("flush after space returned");
        let lines = fault_support::read_all(&dir, STEM).unwrap_or_else(|e| panic!("{e}"));
        let present: std::collections::HashSet<u64> = lines
            .iter()
            .filter_map(|l| l.json["fields"]["seq"].as_u64())
            .collect();
        for s in first_after..seq {
            assert!(
                present.contains(&s),
                "event {s} logged after freeing space is missing"
            );
        }
    });
    guard.shutdown(Duration::from_secs(10)).expect("shutdown");
    let stats = guard.stats();

    // Every line complete; no duplicate; the in-band drop records add up to the drop count.
    let lines = fault_support::read_all(&dir, STEM)
        .unwrap_or_else(|e| panic!("{e}\nfiles:\n  {}", fault_support::listing(&dir)));
    let mut seen = std::collections::HashSet::new();
    let mut reported_drops = 0u64;
    for l in &lines {
        if let Some(s) = l.json["fields"]["seq"].as_u64() {
            assert!(seen.insert(s), "event {s} appears twice");
        }
        if l.json["target"] == "tracing_filesink" {
            if let Some(n) = l.json["fields"]["dropped"].as_u64() {
                reported_drops += n;
            }
        }
    }
    assert_eq!(
        reported_drops, stats.events_dropped,
        "drops reported in-band vs counted in stats"
    );
    assert_eq!(
        seen.len() as u64 + stats.events_dropped,
        seq,
        "every event is either in the file or counted as dropped: {stats:?}"
    );
    eprintln!(
        "full_disk: {seq} events, {} written, {} dropped (reported in-band), {} write errors",
        seen.len(),
        stats.events_dropped,
        stats.write_errors
    );
}

/// `Retention::min_free_bytes` keeps a small file system from filling: oldest segments go
/// first, writing never fails, and what survives is the newest, gap-free run of events.
#[test]
#[ignore = "needs root (mounts a tmpfs)"]
fn min_free_bytes_keeps_space() {
    let (_tmp, dir, _mount) = fault_support::tmpfs("2m");
    let (layer, guard) = FileSink::builder(&dir, STEM)
        .rotation(tracing_filesink::Rotation::size(64 << 10))
        .retention(tracing_filesink::Retention::keep_all().min_free_bytes(768 << 10))
        .build()
        .expect("build");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let mut seq = 0u64;
    // About 6 MiB in all, three times the file system.
    for _batch in 0..60 {
        tracing::dispatcher::with_default(&dispatch, || {
            for _ in 0..500 {
                tracing::info!(seq, pad = "0123456789abcdef0123456789abcdef", "filling");
                seq += 1;
            }
        });
        // A maintenance pass after each ~100 KiB, as rotations would trigger anyway.
        guard.wait_idle(Duration::from_secs(30)).expect("wait_idle");
    }
    let stats = guard.stats();
    guard.shutdown(Duration::from_secs(10)).expect("shutdown");
    assert_eq!(stats.write_errors, 0, "the disk never filled: {stats:?}");
    assert!(stats.segments_pruned > 0, "{stats:?}");
    let lines = fault_support::read_all(&dir, STEM).expect("read back");
    let seqs: Vec<u64> = lines
        .iter()
        .filter_map(|l| l.json["fields"]["seq"].as_u64())
        .collect();
    assert!(!seqs.is_empty());
    let first = seqs[0];
    assert_eq!(
        seqs,
        (first..seq).collect::<Vec<_>>(),
        "the newest events survive, in order, without a gap"
    );
    assert!(first > 0, "old segments were pruned");
}
