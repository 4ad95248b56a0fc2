//! Memory after an outage: while the disk is full the writer buffers up to `queue_bytes` and
//! the queue's chunks fill; once space is back and the backlog is written, that memory goes
//! back, so a sink that survived one outage does not keep ~100 MiB for the rest of its life.
//! Needs root (a 1 MiB tmpfs, grown afterwards): `#[ignore]`d, run as root by `.ci/run`.

mod fault_support;

use std::process::Command;
use std::time::Duration;

use tracing_filesink::FileSink;
use tracing_subscriber::prelude::*;

const STEM: &str = "app";
const THREADS: usize = 4;
/// 64 MiB of 1 KiB events in all.
const PER_THREAD: usize = 16 * 1024;

/// Resident anonymous memory of this process, in KiB (Linux: `RssAnon` in /proc/self/status).
fn rss_anon_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon in /proc/self/status")
}

#[test]
#[ignore = "needs root (mounts a tmpfs)"]
fn memory_is_given_back_after_an_outage() {
    let (_tmp, dir, _mount) = fault_support::tmpfs("1m");
    let (layer, guard) = FileSink::builder(&dir, STEM).build().expect("build");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("before"));
    guard.flush().expect("flush");
    let before = rss_anon_kib();

    // Fill the file system, then log 64 MiB against it.
    let filler = dir.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 1 << 20]);
    let pad = "m".repeat(1000);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let d = dispatch.clone();
            let pad = pad.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for i in 0..PER_THREAD {
                        tracing::info!(t, i, pad = pad.as_str(), "outage");
                    }
                })
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a logging call panicked");
    }
    let during = rss_anon_kib();
    assert!(guard.stats().write_errors > 0, "{:?}", guard.stats());

    // Space comes back (more than the backlog); everything held is written.
    std::fs::remove_file(&filler).expect("remove filler");
    let grown = Command::new("mount")
        .args(["-o", "remount,size=512m"])
        .arg(&dir)
        .status()
        .expect("run mount");
    assert!(grown.success(), "remount the tmpfs larger");
    let written = fault_support::wait_until(Duration::from_secs(60), || guard.flush().is_ok());
    assert!(written, "writing did not resume: {:?}", guard.stats());
    // A flush answers once what was logged before it is written: the backlog is gone.
    guard.flush().expect("flush after the backlog");
    let after = rss_anon_kib();
    let stats = guard.stats();
    eprintln!("RssAnon: {before} KiB before, {during} KiB during, {after} KiB after: {stats:?}");
    assert!(
        during > before + 16 * 1024,
        "the outage did not grow memory ({before} -> {during} KiB): the test proves nothing"
    );
    assert!(
        after < before + 8 * 1024,
        "resident anonymous memory {after} KiB after the backlog was written, {before} KiB \
         before the outage ({during} KiB during)"
    );
    guard.shutdown(Duration::from_secs(30)).expect("shutdown");
}
