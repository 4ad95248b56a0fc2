//! Background gzip of finished segments: every `.gz` passes `gzip -t` and decompresses to
//! exactly the bytes of the plain segment (a twin sink without compression sees the same
//! events at the same stopped clock and keeps them plain); `compress_after(n)` keeps the
//! newest n plain; shutting the guard down stops the compressor, leaving no temp file and
//! every segment whole, plain or compressed.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tracing_filesink::{Compression, FileSink, FileSinkGuard, ManualClock, Rotation};
use tracing_subscriber::prelude::*;

const WAIT: Duration = Duration::from_secs(30);

/// `gzip -t` on `path`. The binary is required: CI installs it. Windows has none: there
/// flate2, which checks the CRC and the length, is the only decoder.
fn gzip_test(path: &Path) {
    if cfg!(windows) {
        let _ = gunzip_with_gzip(path);
        return;
    }
    let out = match common::forking(|| Command::new("gzip").arg("-t").arg(path).output()) {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "\n\n*** the `gzip` binary is required by tests/compression.rs and was not found \
             on PATH (apt-get install gzip; .ci/run installs it) ***\n"
        ),
        Err(e) => panic!("running gzip: {e}"),
    };
    assert!(
        out.status.success(),
        "gzip -t {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `gzip -dc`: an independent decoder.
fn gunzip_with_gzip(path: &Path) -> Vec<u8> {
    if cfg!(windows) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()),
            &mut out,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return out;
    }
    let out = common::forking(|| Command::new("gzip").arg("-dc").arg(path).output()).unwrap();
    assert!(out.status.success());
    out.stdout
}

fn no_temp_files(dir: &Path) {
    let temps: Vec<String> = common::file_names(dir)
        .into_iter()
        .filter(|n| n.starts_with('.') || n.ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "temp files left behind: {temps:?}");
}

/// Two sinks on one registry with one stopped clock: `plain` never compresses, `gz` does.
/// (Fields drop in order: the guards before their directories.)
struct Twins {
    plain: FileSinkGuard,
    gz: FileSinkGuard,
    dispatch: tracing::Dispatch,
    plain_dir: tempfile::TempDir,
    gz_dir: tempfile::TempDir,
}

fn twins(compression: Compression, compress_after: usize) -> Twins {
    let clock = ManualClock::new(common::at("2026-11-26T03:14:48Z"));
    let plain_dir = tempfile::tempdir().unwrap();
    let gz_dir = tempfile::tempdir().unwrap();
    let (pl, plain) = FileSink::builder(plain_dir.path(), "app")
        .clock(clock.clone())
        .build()
        .unwrap();
    let (gl, gz) = FileSink::builder(gz_dir.path(), "app")
        .clock(clock.clone())
        .compression(compression)
        .compress_after(compress_after)
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(pl).with(gl));
    Twins {
        plain,
        gz,
        dispatch,
        plain_dir,
        gz_dir,
    }
}

impl Twins {
    /// Logs `lines` records of varied content into segment `seg`, then rotates both sinks.
    fn segment(&self, seg: usize, lines: usize) {
        tracing::dispatcher::with_default(&self.dispatch, || {
            for i in 0..lines {
                let noise = format!(
                    "{:x}",
                    (seg * 7919 + i * 104_729).wrapping_mul(2_654_435_761)
                );
                tracing::info!(
                    seg,
                    i,
                    noise,
                    pad = "p".repeat(i % 97),
                    "segment {seg} line {i}"
                );
            }
        });
        self.plain.rotate().unwrap();
        self.gz.rotate().unwrap();
    }

    fn check_against_plain(&self, lines: usize) {
        check_against_plain(self.plain_dir.path(), self.gz_dir.path(), lines);
    }
}

/// Each compressed segment equals its plain twin, byte for byte, by two decoders, and the
/// plain twin holds exactly what its segment logged.
fn check_against_plain(plain_dir: &Path, gz_dir: &Path, lines: usize) {
    let plain = common::segments(plain_dir, "app");
    let gz = common::segments(gz_dir, "app");
    assert_eq!(plain.len(), gz.len());
    for (k, (p, g)) in plain.iter().zip(&gz).enumerate() {
        assert_eq!((p.seq, &p.label), (g.seq, &g.label), "twins out of step");
        let want = std::fs::read(plain_dir.join(&p.name)).unwrap();
        let path = gz_dir.join(&g.name);
        if g.gz {
            gzip_test(&path);
            assert_eq!(common::read_maybe_gz(&path), want, "{} (flate2)", g.name);
            assert_eq!(gunzip_with_gzip(&path), want, "{} (gzip -dc)", g.name);
        } else {
            assert_eq!(std::fs::read(&path).unwrap(), want, "{}", g.name);
        }
        // And the plain twin holds exactly what segment k logged.
        let got = common::lines(&want, &p.name);
        assert_eq!(got.len(), lines, "{}", p.name);
        for (i, l) in got.iter().enumerate() {
            assert_eq!(
                common::json(l)["fields"]["message"],
                format!("segment {k} line {i}").as_str()
            );
        }
    }
    no_temp_files(gz_dir);
}

#[test]
fn every_gz_is_valid_and_equals_the_plain_segment() {
    for (compression, segments) in [
        (Compression::gzip(), 6),
        (Compression::gzip().level(0), 2),
        (Compression::gzip().level(1), 2),
        (Compression::gzip().level(9), 2),
    ] {
        let t = twins(compression, 0);
        for s in 0..segments {
            t.segment(s, 300);
        }
        common::wait_until("every segment compressed", WAIT, || {
            t.gz.stats().segments_compressed == segments as u64
        });
        let segs = common::segments(t.gz_dir.path(), "app");
        assert_eq!(segs.len(), segments, "{compression:?}");
        assert!(segs.iter().all(|s| s.gz), "{compression:?}: {segs:?}");
        t.check_against_plain(300);
        let stats = t.gz.stats();
        assert_eq!(stats.compression_failures, 0);
        assert_eq!(stats.rotations, segments as u64);
        // The active file is never compressed.
        assert!(common::active(t.gz_dir.path(), "app").exists());
        t.gz.shutdown(Duration::from_secs(10)).unwrap();
        assert_eq!(t.gz.stats().compression_backlog, 0);
    }
}

#[test]
fn compress_after_keeps_the_newest_plain() {
    let t = twins(Compression::gzip(), 2);
    for s in 0..5 {
        t.segment(s, 100);
    }
    common::wait_until("three segments compressed", WAIT, || {
        t.gz.stats().segments_compressed == 3
    });
    // Stop the compressor, so nothing changes while we look.
    t.gz.shutdown(Duration::from_secs(10)).unwrap();
    let segs = common::segments(t.gz_dir.path(), "app");
    let kinds: Vec<(u64, bool)> = segs.iter().map(|s| (s.seq, s.gz)).collect();
    let seqs: Vec<u64> = segs.iter().map(|s| s.seq).collect();
    let expected: Vec<(u64, bool)> = seqs.iter().enumerate().map(|(i, &q)| (q, i < 3)).collect();
    assert_eq!(
        kinds, expected,
        "the newest 2 stay plain, the rest are compressed once"
    );
    t.check_against_plain(100);

    // A restart with compress_after(0) picks up the plain ones. (The lock is held until the
    // guard is dropped, not just shut down.)
    // A child forked by another test holds the lock file until it execs.
    let (_layer, guard) = common::without_forks(|| {
        drop(t.gz);
        FileSink::builder(t.gz_dir.path(), "app")
            .compression(Compression::gzip())
            .build()
            .unwrap()
    });
    common::wait_until("the rest compressed after restart", WAIT, || {
        guard.stats().segments_compressed == 2
    });
    guard.shutdown(Duration::from_secs(10)).unwrap();
    assert!(common::segments(t.gz_dir.path(), "app")
        .iter()
        .all(|s| s.gz));
    check_against_plain(t.plain_dir.path(), t.gz_dir.path(), 100);
}

/// Names of this process's threads (`/proc/self/task/*/comm`, at most 15 bytes each).
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .map(|s| s.trim_end().to_string())
        .collect()
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "reads thread names from /proc/self/task (Linux)"
)]
fn shutdown_stops_the_compressor() {
    // A stem no other test uses: its threads are `filesink-zq` and `filesink-zq-maint`.
    let stem = "zq";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (layer, guard) = FileSink::builder(dir, stem)
        .compression(Compression::gzip().level(9))
        .build()
        .unwrap();
    // A new thread names itself once it runs.
    common::wait_until("the maintenance thread to start", WAIT, || {
        thread_names()
            .iter()
            .any(|n| n.starts_with("filesink-zq-m"))
    });
    let d = common::dispatch(layer);
    // Big, poorly compressible segments: a backlog the compressor is still working through.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for seg in 0..6 {
        tracing::dispatcher::with_default(&d, || {
            for i in 0..400 {
                let mut noise = String::with_capacity(4096);
                while noise.len() < 4000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    noise.push_str(&format!("{x:016x}"));
                }
                tracing::info!(seg, i, noise, "big");
            }
        });
        guard.rotate().unwrap();
    }
    let before = guard.stats();
    let start = Instant::now();
    guard.shutdown(Duration::from_secs(20)).unwrap();
    let took = start.elapsed();
    let names = thread_names();
    assert!(
        !names.iter().any(|n| n.starts_with("filesink-zq")),
        "a sink thread outlived shutdown ({took:?}): {names:?}"
    );
    eprintln!(
        "backlog at shutdown: {} of 6 compressed before, shutdown took {took:?}",
        before.segments_compressed
    );
    // Whatever the compressor was doing, it left no temp file and every segment whole.
    no_temp_files(dir);
    let segs = common::segments(dir, stem);
    assert_eq!(segs.len(), 6, "{segs:?}");
    let mut seqs: Vec<u64> = segs.iter().map(|s| s.seq).collect();
    seqs.dedup();
    assert_eq!(
        seqs.len(),
        6,
        "a segment is both plain and compressed: {segs:?}"
    );
    for (k, s) in segs.iter().enumerate() {
        let path = dir.join(&s.name);
        if s.gz {
            gzip_test(&path);
        }
        let lines = common::lines(&common::read_maybe_gz(&path), &s.name);
        assert_eq!(lines.len(), 400, "{}", s.name);
        assert_eq!(common::json(&lines[0])["fields"]["seg"], k as u64);
    }
    assert_eq!(
        guard.stats().segments_compressed as usize,
        segs.iter().filter(|s| s.gz).count()
    );
}

/// A burst rotates far faster than gzip level 6 compresses (a segment every 64 KiB), so
/// segments wait, and an unpinned `Compression::gzip()` compresses them at its catch-up level
/// while they do: the gzip header's XFL byte says "fastest" (4) on some `.gz`, where level
/// 6 writes 0. Every `.gz` still decompresses to whole lines.
#[test]
fn a_backlog_is_compressed_at_the_catch_up_level() {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app")
        .rotation(Rotation::size(64 << 10))
        .compression(Compression::gzip())
        .build()
        .unwrap();
    let d = common::dispatch(layer);
    let pad = "x".repeat(100);
    tracing::dispatcher::with_default(&d, || {
        for i in 0..60_000u64 {
            tracing::info!(i, pad = pad.as_str(), "event");
        }
    });
    guard.flush().unwrap();
    guard.wait_idle(Duration::from_secs(120)).unwrap();
    let s = guard.stats();
    assert!(s.rotations > 100, "{s:?}");
    assert_eq!(s.segments_compressed, s.rotations, "{s:?}");
    let mut xfl = Vec::new();
    for name in common::file_names(tmp.path()) {
        if name.ends_with(".gz") {
            let path = tmp.path().join(&name);
            let bytes = std::fs::read(&path).unwrap();
            xfl.push(bytes[8]);
            common::lines(&common::read_maybe_gz(&path), &name);
        }
    }
    assert!(
        xfl.contains(&4),
        "no segment at the catch-up level: XFL {xfl:?}"
    );
    guard.shutdown(Duration::from_secs(10)).unwrap();
}
