//! Retention over 1,000 rotations, by count, bytes and age: exactly the newest segments stay,
//! also after a restart; another stem's files (`app-worker`) and foreign files in the same
//! directory (look-alike names, a directory and a symlink named like segments) are never
//! touched.

mod common;
mod platform_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tracing_filesink::{FileSink, FileSinkGuard, ManualClock, Retention};

const ROTATIONS: usize = 1000;
const WAIT: Duration = Duration::from_secs(30);

struct Sink {
    guard: FileSinkGuard,
    dispatch: tracing::Dispatch,
}

impl Sink {
    fn new(dir: &Path, stem: &str, clock: &ManualClock, retention: Retention) -> Sink {
        let (layer, guard) = FileSink::builder(dir, stem)
            .clock(clock.clone())
            .retention(retention)
            .build()
            .unwrap();
        Sink {
            guard,
            dispatch: common::dispatch(layer),
        }
    }

    /// One record `r<k>` (fixed length at a stopped clock), then a rotation.
    fn segment(&self, k: usize) {
        tracing::dispatcher::with_default(&self.dispatch, || tracing::info!("r{k:05}"));
        self.guard.rotate().unwrap();
    }
}

/// The record numbers in this stem's segments, in name order (one record per segment).
fn kept(dir: &Path, stem: &str) -> Vec<usize> {
    common::segments(dir, stem)
        .iter()
        .map(|s| {
            let lines = common::lines(&common::read_maybe_gz(&dir.join(&s.name)), &s.name);
            assert_eq!(lines.len(), 1, "{}", s.name);
            let m = common::json(&lines[0])["fields"]["message"]
                .as_str()
                .unwrap()
                .to_string();
            m[1..].parse().unwrap()
        })
        .collect()
}

/// Files that are not this sink's, with what they must still be at the end.
struct Foreign {
    files: Vec<(PathBuf, Vec<u8>, SystemTime)>,
    dir_named_like_a_segment: PathBuf,
    symlink: PathBuf,
    symlink_target: PathBuf,
}

fn plant_foreign(dir: &Path, outside: &Path) -> Foreign {
    let names = [
        "app.0000000001.20261126T031448Z.log.bak",
        "app.0000000002.20261126T031448Z.txt",
        "app.12.20261126T031448Z.log",
        "app.00000000x3.20261126T031448Z.log",
        "app.0000000004.20261126T031448Q.log",
        "App.0000000005.20261126T031448Z.log",
        "app.log.1",
        "app.log.old",
        "app.txt",
        "notes.txt",
        "worker.0000000001.20261126T031448Z.log",
    ];
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let files = names
        .iter()
        .map(|n| {
            let p = dir.join(n);
            let content = format!("foreign file {n}\n").into_bytes();
            std::fs::write(&p, &content).unwrap();
            // Very old: age-based retention would delete them first if it confused them.
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(old)
                .unwrap();
            (p, content, old)
        })
        .collect();
    let d = dir.join("app.0000000006.20261126T031448Z.log");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("inside"), b"x").unwrap();
    let target = outside.join("precious.txt");
    std::fs::write(&target, b"precious\n").unwrap();
    let symlink = dir.join("app.0000000007.20261126T031448Z.log");
    // Not on Windows: a symlink needs Developer Mode there, and Wine 8 creates none
    // (tests/reopen.rs checks symlinks at segment names wherever they can be made).
    if cfg!(unix) {
        platform_support::symlink_file(&target, &symlink).unwrap();
    }
    Foreign {
        files,
        dir_named_like_a_segment: d,
        symlink,
        symlink_target: target,
    }
}

impl Foreign {
    fn assert_untouched(&self) {
        for (p, content, mtime) in &self.files {
            assert_eq!(&std::fs::read(p).unwrap(), content, "{}", p.display());
            assert_eq!(
                std::fs::metadata(p).unwrap().modified().unwrap(),
                *mtime,
                "{}",
                p.display()
            );
        }
        assert!(self.dir_named_like_a_segment.join("inside").exists());
        if cfg!(unix) {
            assert_eq!(
                std::fs::read_link(&self.symlink).unwrap(),
                self.symlink_target
            );
        }
        assert_eq!(std::fs::read(&self.symlink_target).unwrap(), b"precious\n");
    }
}

/// Waits until `keep` segments of `stem` are left and the sink has counted `pruned` prunes.
fn wait_pruned(sink: &Sink, dir: &Path, stem: &str, keep: usize, pruned: u64) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let segs = common::segments(dir, stem);
        let stats = sink.guard.stats();
        if segs.len() == keep && stats.segments_pruned >= pruned {
            assert_eq!(stats.segments_pruned, pruned, "{stem}: {stats:?}");
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{stem}: waiting for {keep} segments and {pruned} prunes, {} left (first {:?}, last {:?}); {stats:?}",
            segs.len(),
            segs.first(),
            segs.last(),
        );
        std::thread::yield_now();
    }
}

#[test]
fn by_count_with_another_stem_and_foreign_files_and_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let foreign = plant_foreign(dir, outside.path());
    let clock = ManualClock::new(common::at("2026-11-26T03:14:48Z"));
    let app = Sink::new(dir, "app", &clock, Retention::files(5));
    let worker = Sink::new(dir, "app-worker", &clock, Retention::files(3));
    let mut worker_rotations = 0;
    for k in 0..ROTATIONS {
        app.segment(k);
        if k % 4 == 0 {
            worker.segment(k);
            worker_rotations += 1;
        }
    }
    wait_pruned(&app, dir, "app", 5, ROTATIONS as u64 - 5);
    wait_pruned(&worker, dir, "app-worker", 3, worker_rotations - 3);
    assert_eq!(
        kept(dir, "app"),
        (ROTATIONS - 5..ROTATIONS).collect::<Vec<_>>()
    );
    let worker_last: Vec<usize> = (0..ROTATIONS).step_by(4).collect();
    assert_eq!(
        kept(dir, "app-worker"),
        worker_last[worker_last.len() - 3..]
    );
    assert_eq!(app.guard.stats().rotations, ROTATIONS as u64);
    assert!(common::active(dir, "app").exists());
    assert!(common::active(dir, "app-worker").exists());
    foreign.assert_untouched();

    // Restart with the same policy: still exactly 5, and sequence numbers go on.
    let last_seq = common::segments(dir, "app").last().unwrap().seq;
    drop(app);
    let app = Sink::new(dir, "app", &clock, Retention::files(5));
    app.segment(ROTATIONS);
    wait_pruned(&app, dir, "app", 5, 1);
    assert_eq!(
        kept(dir, "app"),
        (ROTATIONS - 4..=ROTATIONS).collect::<Vec<_>>()
    );
    assert!(common::segments(dir, "app").last().unwrap().seq > last_seq);

    // Restart with a smaller count: applied at startup, before any rotation.
    drop(app);
    let app = Sink::new(dir, "app", &clock, Retention::files(2));
    wait_pruned(&app, dir, "app", 2, 3);
    assert_eq!(kept(dir, "app"), [ROTATIONS - 1, ROTATIONS]);
    assert_eq!(kept(dir, "app-worker").len(), 3);
    foreign.assert_untouched();
}

/// The length of the record `r<k>` at the stopped clock, measured on a sink of its own.
fn record_len(clock: &ManualClock) -> u64 {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sink::new(tmp.path(), "probe", clock, Retention::keep_all());
    tracing::dispatcher::with_default(&s.dispatch, || tracing::info!("r{:05}", 0));
    s.guard.flush().unwrap();
    common::read_active(tmp.path(), "probe").len() as u64
}

#[test]
fn by_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let foreign = plant_foreign(dir, outside.path());
    let clock = ManualClock::new(common::at("2026-11-26T03:14:48Z"));
    let len = record_len(&clock);
    // Room for 10 segments and half of another (the active file counts too).
    let budget = 10 * len + len / 2;
    let app = Sink::new(dir, "app", &clock, Retention::keep_all().max_bytes(budget));
    for k in 0..ROTATIONS {
        app.segment(k);
    }
    wait_pruned(&app, dir, "app", 10, ROTATIONS as u64 - 10);
    assert_eq!(
        kept(dir, "app"),
        (ROTATIONS - 10..ROTATIONS).collect::<Vec<_>>()
    );
    let on_disk: u64 = common::segments(dir, "app")
        .iter()
        .map(|s| std::fs::metadata(dir.join(&s.name)).unwrap().len())
        .sum();
    assert_eq!(on_disk, 10 * len);
    foreign.assert_untouched();

    // After a restart with a smaller budget, at startup.
    drop(app);
    let app = Sink::new(dir, "app", &clock, Retention::keep_all().max_bytes(4 * len));
    wait_pruned(&app, dir, "app", 4, 6);
    assert_eq!(
        kept(dir, "app"),
        (ROTATIONS - 4..ROTATIONS).collect::<Vec<_>>()
    );
    foreign.assert_untouched();
}

/// Sets a file's modification time (retention by age reads it).
fn set_mtime(p: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn by_age() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let foreign = plant_foreign(dir, outside.path());
    // The sink's clock runs days behind the real one, so a segment's real mtime looks new
    // until the test sets it to the sink's time of its rotation.
    let start = SystemTime::now() - Duration::from_secs(30 * 86_400);
    let clock = ManualClock::new(start);
    let max_age = Duration::from_secs(60 * 60);
    let app = Sink::new(dir, "app", &clock, Retention::keep_all().max_age(max_age));
    let mut finished = Vec::new(); // (record number, rotation time)
    for k in 0..ROTATIONS {
        tracing::dispatcher::with_default(&app.dispatch, || tracing::info!("r{k:05}"));
        clock.advance(Duration::from_secs(60));
        app.guard.rotate().unwrap();
        let newest = common::segments(dir, "app").pop().unwrap();
        set_mtime(&dir.join(&newest.name), clock.now());
        finished.push((k, clock.now()));
    }
    let limit = clock.now() - max_age;
    let expected: Vec<usize> = finished
        .iter()
        .filter(|(_, t)| *t >= limit)
        .map(|(k, _)| *k)
        .collect();
    assert!(expected.len() > 10 && expected.len() < ROTATIONS / 2);
    wait_pruned(
        &app,
        dir,
        "app",
        expected.len(),
        (ROTATIONS - expected.len()) as u64,
    );
    assert_eq!(kept(dir, "app"), expected);
    foreign.assert_untouched();

    // Half an hour later, after a restart: the startup pass prunes what has aged out since.
    drop(app);
    clock.advance(Duration::from_secs(30 * 60));
    let limit = clock.now() - max_age;
    let expected: Vec<usize> = finished
        .iter()
        .filter(|(_, t)| *t >= limit)
        .map(|(k, _)| *k)
        .collect();
    let before = common::segments(dir, "app").len();
    let app = Sink::new(dir, "app", &clock, Retention::keep_all().max_age(max_age));
    wait_pruned(
        &app,
        dir,
        "app",
        expected.len(),
        (before - expected.len()) as u64,
    );
    assert_eq!(kept(dir, "app"), expected);
    foreign.assert_untouched();
}

/// Limits combine: whichever keeps fewer segments wins.
#[test]
fn limits_combine() {
    let clock = ManualClock::new(common::at("2026-11-26T03:14:48Z"));
    let len = record_len(&clock);
    for (retention, keep) in [
        (Retention::files(7).max_bytes(10 * len), 7),
        (Retention::files(12).max_bytes(10 * len), 10),
        (
            Retention::files(12)
                .max_bytes(10 * len)
                .max_age(Duration::from_secs(86_400)),
            10,
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let app = Sink::new(tmp.path(), "app", &clock, retention);
        for k in 0..30 {
            app.segment(k);
        }
        wait_pruned(&app, tmp.path(), "app", keep, 30 - keep as u64);
        assert_eq!(
            kept(tmp.path(), "app"),
            (30 - keep..30).collect::<Vec<_>>(),
            "{retention:?}"
        );
    }
}

/// A burst rotating fast while gzip lags: `shutdown()` abandons the compression in progress
/// but still applies the retention bound before it returns (deleting is cheap; compression
/// is left for the next start). Repeated, since how far compression lags varies.
#[test]
fn the_bound_holds_when_shutdown_returns_after_a_burst() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 5_000;
    for run in 0..5 {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (layer, guard) = FileSink::builder(dir, "app")
            .rotation(tracing_filesink::Rotation::size(16 << 10))
            .compression(tracing_filesink::Compression::gzip())
            .retention(Retention::files(3))
            .build()
            .unwrap();
        let dispatch = common::dispatch(layer);
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let d = dispatch.clone();
                std::thread::spawn(move || {
                    tracing::dispatcher::with_default(&d, || {
                        for i in 0..PER_THREAD {
                            tracing::info!(t, i, user = "alice", "request handled");
                        }
                    })
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        guard.shutdown(WAIT).unwrap();
        let mut seqs: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("app.0"))
            .map(|n| n.split('.').nth(1).unwrap_or_default().to_string())
            .collect();
        seqs.sort();
        seqs.dedup();
        assert!(
            seqs.len() <= 3,
            "run {run}: {} finished segments kept with Retention::files(3): {seqs:?}",
            seqs.len()
        );
    }
}
