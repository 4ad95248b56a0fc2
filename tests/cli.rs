//! The `filesink` command (needs `--features cli`): `verify` finds each kind of damage and
//! passes a healthy directory after a crash loop and a restart; `cat --since/--until/--level`
//! selects by the records' own timestamps across plain and compressed segments; `stats`
//! counts; `follow` follows a sink that rotates and compresses; `--stem` is required only
//! when the directory holds several stems.

mod common;

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tracing_filesink::read::{LogDir, SegmentKind};
use tracing_filesink::{Compression, FileSink, ManualClock, Rotation};

const STEM: &str = "app";

fn filesink(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_filesink"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run filesink")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 output")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A healthy directory: 32 KiB segments, the older ones compressed, the newest two plain.
fn healthy_dir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), STEM)
        .rotation(Rotation::size(32 << 10))
        .compression(Compression::gzip().level(1))
        .compress_after(2)
        .build()
        .unwrap();
    let d = common::dispatch(layer);
    tracing::dispatcher::with_default(&d, || {
        for i in 0..2_000u64 {
            tracing::info!(i, pad = "x".repeat(100).as_str(), "event");
        }
    });
    guard.flush().unwrap();
    common::wait_until("compression", Duration::from_secs(60), || {
        let s = guard.stats();
        s.rotations >= 5 && s.segments_compressed == s.rotations - 2
    });
    guard.shutdown(Duration::from_secs(10)).unwrap();
    drop(d);
    tmp
}

fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.path().join(e.file_name())).unwrap();
    }
    to
}

/// The finished segments of a directory, in order.
fn finished(dir: &Path) -> Vec<tracing_filesink::read::SegmentFile> {
    LogDir::open(dir, STEM)
        .unwrap()
        .segments()
        .unwrap()
        .into_iter()
        .filter(|s| matches!(s.kind(), SegmentKind::Plain | SegmentKind::Compressed))
        .collect()
}

/// Runs `verify` on a copy of `healthy` damaged by `damage`, which returns the file name the
/// report must name; checks exit status 1 and one line naming that file with `what`.
fn assert_found(healthy: &Path, what: &str, damage: impl FnOnce(&Path) -> String) {
    let tmp = copy_dir(healthy);
    let file = damage(tmp.path());
    let o = filesink(&["verify", path_str(tmp.path())]);
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: exit status; output:\n{out}"
    );
    assert!(
        out.lines().any(
            |l| l.contains(&file) && l.contains(what) && l.contains("offset")
                || l.contains(&file) && l.contains(what) && what.contains("missing")
        ),
        "{what}: no line naming {file}; output:\n{out}"
    );
}

#[test]
fn verify_finds_each_kind_of_damage() {
    let healthy = healthy_dir();
    let segs = finished(healthy.path());
    let gz: Vec<_> = segs
        .iter()
        .filter(|s| s.kind() == SegmentKind::Compressed)
        .collect();
    let plain: Vec<_> = segs
        .iter()
        .filter(|s| s.kind() == SegmentKind::Plain)
        .collect();
    assert!(gz.len() >= 3 && plain.len() == 2, "{segs:?}");

    let o = filesink(&["verify", path_str(healthy.path())]);
    assert_eq!(o.status.code(), Some(0), "healthy: {}", stdout(&o));
    assert_eq!(stdout(&o), "", "healthy: no problem line");

    // A flipped byte in the middle of a .gz.
    let name = gz[1].file_name().to_string();
    assert_found(healthy.path(), "gzip data damaged", |d| {
        let p = d.join(&name);
        let mut b = std::fs::read(&p).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x5a;
        std::fs::write(&p, b).unwrap();
        name.clone()
    });
    // A truncated .gz, and a truncated plain segment.
    assert_found(healthy.path(), "gzip data damaged", |d| {
        let p = d.join(&name);
        let len = std::fs::metadata(&p).unwrap().len();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len - 100)
            .unwrap();
        name.clone()
    });
    let pname = plain[0].file_name().to_string();
    assert_found(healthy.path(), "torn last line", |d| {
        let p = d.join(&pname);
        let len = std::fs::metadata(&p).unwrap().len();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len - 30)
            .unwrap();
        pname.clone()
    });
    // A middle segment deleted.
    let mid = segs[segs.len() / 2].clone();
    assert_found(
        healthy.path(),
        &format!("segment {} is missing", mid.seq().unwrap()),
        |d| {
            std::fs::remove_file(d.join(mid.file_name())).unwrap();
            d.display().to_string()
        },
    );
    // A torn line inside a finished segment: the first half of a record, then the next ones.
    assert_found(healthy.path(), "invalid JSON", |d| {
        let p = d.join(&pname);
        let b = std::fs::read(&p).unwrap();
        let starts: Vec<usize> = b
            .iter()
            .enumerate()
            .filter(|(_, &c)| c == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        let (s, e) = (starts[9], starts[10]);
        let mut torn = b[..s + (e - s) / 2].to_vec();
        torn.push(b'\n');
        torn.extend_from_slice(&b[e..]);
        std::fs::write(&p, torn).unwrap();
        pname.clone()
    });
    // One segment present plain and compressed.
    let gname = gz[0].file_name().to_string();
    assert_found(healthy.path(), "duplicate", |d| {
        let bytes = common::read_maybe_gz(&d.join(&gname));
        std::fs::write(d.join(gname.strip_suffix(".gz").unwrap()), bytes).unwrap();
        gname.clone()
    });
    // A middle segment kept as `.unsynced` (its fsync failed): reported as such, not as a
    // missing segment.
    let (useq, uname) = (plain[0].seq().unwrap(), plain[0].file_name().to_string());
    let tmp = copy_dir(healthy.path());
    std::fs::rename(
        tmp.path().join(&uname),
        tmp.path().join(format!("{uname}.unsynced")),
    )
    .unwrap();
    let o = filesink(&["verify", path_str(tmp.path())]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "unsynced: {out}");
    assert!(
        out.lines().any(|l| l.contains(&format!("{uname}.unsynced"))
            && l.contains(&format!("the fsync of segment {useq} failed"))),
        "unsynced: {out}"
    );
    assert!(
        !out.contains("missing"),
        "unsynced reported as missing: {out}"
    );
    // Retention's holes at the oldest end are not problems.
    let tmp = copy_dir(healthy.path());
    std::fs::remove_file(tmp.path().join(segs[0].file_name())).unwrap();
    std::fs::remove_file(tmp.path().join(segs[1].file_name())).unwrap();
    let o = filesink(&["verify", path_str(tmp.path())]);
    assert_eq!(o.status.code(), Some(0), "oldest removed: {}", stdout(&o));
}

const KILLS: u64 = 40;

fn crash_builder(dir: &Path) -> tracing_filesink::Builder {
    FileSink::builder(dir, STEM)
        .rotation(Rotation::size(32 << 10))
        .compression(Compression::gzip().level(1))
}

#[test]
#[ignore = "the child process of verify_passes_after_crash_loop; does nothing unless CLI_CRASH_DIR is set"]
fn crash_child() {
    let Ok(dir) = std::env::var("CLI_CRASH_DIR") else {
        return;
    };
    println!("ready");
    let (layer, guard) = crash_builder(Path::new(&dir))
        .build()
        .expect("child: build");
    let d = common::dispatch(layer);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let d = d.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for seq in 0..2_000u64 {
                        tracing::info!(thread = t, seq, pad = "y".repeat(120).as_str(), "event");
                    }
                })
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    guard
        .shutdown(Duration::from_secs(5))
        .expect("child: shutdown");
}

/// Children killed with SIGKILL at random moments (as in `tests/crash_loop.rs`), then one
/// clean restart: `verify` finds nothing wrong.
#[test]
fn verify_passes_after_crash_loop_and_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    let exe = std::env::current_exe().unwrap();
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    for _ in 0..KILLS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("CLI_CRASH_DIR", &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.ends_with("ready\n") {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "child never said ready"
            );
        }
        // Picks the moment of the kill; synchronizes nothing.
        std::thread::sleep(Duration::from_micros(x % 30_000));
        let _ = child.kill();
        child.wait().unwrap();
    }
    let (_layer, guard) = crash_builder(&dir).build().expect("restart");
    guard.shutdown(Duration::from_secs(30)).expect("shutdown");
    assert!(
        finished(&dir).len() >= 5,
        "too few segments to mean anything"
    );
    let o = filesink(&["verify", path_str(&dir)]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "verify after crash loop:\n{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
}

const START: &str = "2026-11-26T00:00:00Z";

/// Event `i` is logged at START + i seconds; every 10th is a WARN.
fn timed_dir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(common::at(START));
    let (layer, guard) = FileSink::builder(tmp.path(), STEM)
        .clock(clock.clone())
        .rotation(Rotation::size(8 << 10))
        .compression(Compression::gzip().level(1))
        .compress_after(3)
        .build()
        .unwrap();
    let d = common::dispatch(layer);
    tracing::dispatcher::with_default(&d, || {
        for i in 0..1_000u64 {
            if i % 10 == 0 {
                tracing::warn!(i, "event");
            } else {
                tracing::info!(i, "event");
            }
            clock.advance(Duration::from_secs(1));
        }
    });
    guard.flush().unwrap();
    common::wait_until("compression", Duration::from_secs(60), || {
        let s = guard.stats();
        s.rotations >= 5 && s.segments_compressed == s.rotations - 3
    });
    guard.shutdown(Duration::from_secs(10)).unwrap();
    tmp
}

fn event_numbers(out: &str) -> Vec<u64> {
    out.lines()
        .map(|l| {
            common::json(l)["fields"]["i"]
                .as_u64()
                .unwrap_or_else(|| panic!("{l}"))
        })
        .collect()
}

#[test]
fn cat_selects_by_time_and_level_across_plain_and_compressed() {
    let tmp = timed_dir();
    let d = path_str(tmp.path());
    let all = filesink(&["cat", d]);
    assert!(all.status.success());
    assert_eq!(event_numbers(&stdout(&all)), (0..1_000).collect::<Vec<_>>());

    // Events 100..=899: they span compressed and plain segments.
    let kinds: std::collections::BTreeSet<_> = LogDir::open(tmp.path(), STEM)
        .unwrap()
        .segments()
        .unwrap()
        .iter()
        .map(|s| s.kind())
        .collect();
    assert!(kinds.contains(&SegmentKind::Compressed) && kinds.contains(&SegmentKind::Plain));
    let o = filesink(&[
        "cat",
        d,
        "--since",
        "2026-11-26T00:01:40Z",
        "--until",
        "2026-11-26T00:15:00Z",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(event_numbers(&stdout(&o)), (100..900).collect::<Vec<_>>());
    // Other spellings of the same instants; the bounds are [since, until).
    let o = filesink(&[
        "cat",
        d,
        "--since",
        "2026-11-26T01:01:40+01:00",
        "--until",
        "2026-11-26 00:15:00",
    ]);
    assert_eq!(event_numbers(&stdout(&o)), (100..900).collect::<Vec<_>>());
    let o = filesink(&[
        "cat",
        d,
        "--since",
        "2026-11-26T00:16:30Z",
        "--level",
        "warn",
    ]);
    assert_eq!(
        event_numbers(&stdout(&o)),
        (990..1_000).step_by(10).collect::<Vec<_>>()
    );
    let o = filesink(&["cat", d, "--until", "2026-11-26"]);
    assert_eq!(stdout(&o), "");
    let o = filesink(&["cat", d, "--since", "soon"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a time"));

    // stats: the totals match what was logged.
    let o = filesink(&["stats", d]);
    let out = stdout(&o);
    let total: Vec<&str> = out
        .lines()
        .find(|l| l.trim_start().starts_with("total"))
        .unwrap()
        .split_whitespace()
        .collect();
    // total, N, files, lines, bytes, compressed, TRACE, DEBUG, INFO, WARN, ERROR
    assert_eq!(total[3], "1000", "{out}");
    assert_eq!((total[8], total[9]), ("900", "100"), "{out}");
    assert!(
        out.lines().any(|l| l.contains("2026-11-26T00:00:00Z")),
        "{out}"
    );
}

#[test]
fn stem_is_required_only_when_several() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("app.log"), "{\"a\":1}\n").unwrap();
    let o = filesink(&["cat", path_str(tmp.path())]);
    assert_eq!(stdout(&o), "{\"a\":1}\n");
    std::fs::write(tmp.path().join("worker.log"), "{\"b\":2}\n").unwrap();
    let o = filesink(&["cat", path_str(tmp.path())]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("app, worker") && err.contains("--stem"),
        "{err}"
    );
    let o = filesink(&["cat", path_str(tmp.path()), "--stem", "worker"]);
    assert_eq!(stdout(&o), "{\"b\":2}\n");
    let empty = tempfile::tempdir().unwrap();
    let o = filesink(&["verify", path_str(empty.path())]);
    assert_eq!(o.status.code(), Some(2));
}

/// `follow --from-start` prints every event once while the sink rotates and compresses.
#[test]
fn follow_prints_every_line_across_rotations() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().to_path_buf();
    std::fs::write(dir.join("app.log"), "").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_filesink"))
        .args(["follow", "--from-start", path_str(&dir)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            if tx.send(l.unwrap()).is_err() {
                break;
            }
        }
    });
    let (layer, guard) = FileSink::builder(&dir, STEM)
        .rotation(Rotation::size(16 << 10))
        .compression(Compression::gzip().level(1))
        .build()
        .unwrap();
    let d = common::dispatch(layer);
    const N: u64 = 3_000;
    tracing::dispatcher::with_default(&d, || {
        for i in 0..N {
            tracing::info!(i, pad = "z".repeat(80).as_str(), "event");
            if i % 100 == 0 {
                // A service's pace: rotations some milliseconds apart.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
    guard.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    while (got.len() as u64) < N {
        let l = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("follow printed {} of {N} lines", got.len()));
        got.push(common::json(&l)["fields"]["i"].as_u64().unwrap());
    }
    let _ = child.kill();
    child.wait().unwrap();
    assert!(guard.stats().rotations >= 10);
    assert_eq!(got, (0..N).collect::<Vec<_>>());
}

/// A damaged `.gz` does not stop `cat`: it is named on stderr, the other segments are
/// printed, and the exit status is 1.
#[test]
fn cat_goes_on_past_a_damaged_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let l = "20261126T031448Z";
    std::fs::write(d.join(format!("app.0000000001.{l}.log")), "{\"n\":1}\n").unwrap();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, "{\"n\":2}\n".repeat(1000).as_bytes()).unwrap();
    let mut gz = e.finish().unwrap();
    let mid = gz.len() / 2;
    gz[mid] ^= 0xff;
    let bad = format!("app.0000000002.{l}.log.gz");
    std::fs::write(d.join(&bad), gz).unwrap();
    std::fs::write(d.join("app.log"), "{\"n\":3}\n").unwrap();
    let o = filesink(&["cat", path_str(d)]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.starts_with("{\"n\":1}\n") && out.ends_with("{\"n\":3}\n"),
        "{out}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains(&bad));
}

/// `filesink follow --from-start DIR` as a child, its stdout lines sent through a channel.
fn spawn_follow(dir: &Path) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_filesink"))
        .args(["follow", "--from-start", "--stem", STEM, path_str(dir)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Receives lines until one satisfies `last` (returned with it), failing after 60 s.
fn lines_until(
    rx: &std::sync::mpsc::Receiver<String>,
    mut last: impl FnMut(&str) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    loop {
        let l = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("follow printed {} lines, then nothing", got.len()));
        let end = last(&l);
        got.push(l);
        if end {
            return got;
        }
    }
}

const FAST_THREADS: u64 = 4;
const FAST_PER_THREAD: u64 = 5_000;

/// Issue 18, item 1: 4 threads at about 20,000 events/s, 32 KiB rotation, gzip at once,
/// `Retention::files(4)`: a segment lives some tens of milliseconds. `filesink follow` prints
/// every event exactly once, in each thread's order, in 5 runs out of 5 (before the follower
/// held each segment from the moment it appeared, it printed 8,979-9,668 of 20,000).
#[test]
fn follow_keeps_up_with_fast_rotation_gzip_and_retention() {
    for run in 0..5 {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let (layer, guard) = FileSink::builder(&dir, STEM)
            .rotation(Rotation::size(32 << 10))
            .compression(Compression::gzip().level(1))
            .retention(tracing_filesink::Retention::files(4))
            .build()
            .unwrap();
        let (mut child, rx) = spawn_follow(&dir);
        let d = common::dispatch(layer);
        let started = Instant::now();
        let threads: Vec<_> = (0..FAST_THREADS)
            .map(|t| {
                let d = d.clone();
                std::thread::spawn(move || {
                    tracing::dispatcher::with_default(&d, || {
                        for seq in 0..FAST_PER_THREAD {
                            tracing::info!(thread = t, seq, pad = "q".repeat(80).as_str(), "event");
                            if seq % 6 == 5 {
                                // The pace (about 5,000 events/s per thread), not a
                                // synchronization.
                                std::thread::sleep(Duration::from_millis(1));
                            }
                        }
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let elapsed = started.elapsed();
        tracing::dispatcher::with_default(&d, || tracing::info!(end = true, "end"));
        guard.flush().unwrap();
        let got = lines_until(&rx, |l| l.contains("\"end\":true"));
        let _ = child.kill();
        child.wait().unwrap();
        let stats = guard.stats();
        drop(guard);
        assert!(
            stats.rotations >= 50 && stats.segments_pruned >= 40,
            "run {run}: {} rotations, {} pruned: too few to mean anything",
            stats.rotations,
            stats.segments_pruned
        );
        let mut next = [0u64; FAST_THREADS as usize];
        let mut events = 0u64;
        for l in &got[..got.len() - 1] {
            let f = &common::json(l)["fields"];
            let (Some(t), Some(seq)) = (f["thread"].as_u64(), f["seq"].as_u64()) else {
                continue; // the sink's own records
            };
            assert_eq!(seq, next[t as usize], "run {run}: thread {t}: {l}");
            next[t as usize] += 1;
            events += 1;
        }
        assert_eq!(
            events,
            FAST_THREADS * FAST_PER_THREAD,
            "run {run}: lines followed"
        );
        println!(
            "run {run}: {events} of {} events followed once each; {:.0} events/s, {} rotations, {} pruned",
            FAST_THREADS * FAST_PER_THREAD,
            events as f64 / elapsed.as_secs_f64(),
            stats.rotations,
            stats.segments_pruned
        );
    }
}

/// Issue 18, item 6: `follow` on a directory that does not exist yet waits for it, like
/// `tail -F`, instead of exiting.
#[test]
fn follow_waits_for_a_directory_that_does_not_exist_yet() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("not-yet");
    let mut child = Command::new(env!("CARGO_BIN_EXE_filesink"))
        .args(["follow", "--from-start", "--stem", STEM, path_str(&dir)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It says once that it waits: only then is the directory made.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    err.read_line(&mut said).unwrap();
    assert!(said.contains("waiting"), "follow said {said:?}");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let (layer, guard) = FileSink::builder(&dir, STEM).build().unwrap();
    let d = common::dispatch(layer);
    tracing::dispatcher::with_default(&d, || {
        for i in 0..100u64 {
            tracing::info!(i, "event");
        }
    });
    guard.flush().unwrap();
    let got = lines_until(&rx, |l| l.contains("\"i\":99"));
    let _ = child.kill();
    child.wait().unwrap();
    let is: Vec<u64> = got
        .iter()
        .map(|l| common::json(l)["fields"]["i"].as_u64().unwrap())
        .collect();
    assert_eq!(is, (0..100).collect::<Vec<_>>());
}

/// A sink rotating every 1 MiB with gzip and retention, logging all the while: 20 runs of
/// `verify` on its directory, all clean (issue 18, item 3: a segment compressed or pruned
/// between the listing and the open aborted the run with exit 2, and the same window could
/// report a false duplicate).
#[test]
fn verify_on_a_live_directory_is_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let (layer, guard) = FileSink::builder(&dir, STEM)
        .rotation(Rotation::size(1 << 20))
        .compression(Compression::gzip().level(1))
        .retention(tracing_filesink::Retention::files(3))
        .build()
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let logger = {
        let (d, stop) = (common::dispatch(layer), stop.clone());
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&d, || {
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tracing::info!(i, pad = "v".repeat(200).as_str(), "event");
                    i += 1;
                    if i.is_multiple_of(64) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            })
        })
    };
    common::wait_until("three segments", Duration::from_secs(60), || {
        guard.stats().segments_compressed >= 3
    });
    let mut failures = Vec::new();
    for run in 0..20 {
        let o = filesink(&["verify", path_str(&dir)]);
        if o.status.code() != Some(0) {
            failures.push(format!(
                "run {run}: exit {:?}\n{}{}",
                o.status.code(),
                stdout(&o),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    logger.join().unwrap();
    let stats = guard.stats();
    guard.shutdown(Duration::from_secs(10)).unwrap();
    assert!(stats.segments_pruned >= 1, "retention never ran: {stats:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Issue 18, item 4: a `--stem` with no files in the directory is refused with exit 2,
/// naming the stems found (and the stem of `app.log`), by every command.
#[test]
fn a_mistyped_stem_is_refused_naming_the_stems_found() {
    let healthy = healthy_dir();
    let d = path_str(healthy.path());
    for cmd in ["verify", "cat", "stats"] {
        for stem in ["App", "app.log"] {
            let o = filesink(&[cmd, d, "--stem", stem]);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{cmd} --stem {stem}: {err}");
            assert!(
                err.contains("stems found: app") && err.contains(stem),
                "{cmd} --stem {stem}: {err}"
            );
            assert_eq!(stdout(&o), "", "{cmd} --stem {stem}");
        }
    }
    let o = filesink(&["verify", d, "--stem", "app.log"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("the stem of app.log is app"));
}

/// Issue 18, item 5: three damaged `.gz` files (four bytes zeroed in the compressed data of
/// two, which still inflates into wrong bytes until the CRC at the end says so; a flipped
/// CRC in the third, whose data is intact): `cat` prints no line of any of them, no line that
/// is not JSON, every other event once and in order; it names each damaged file on stderr
/// and exits 1; `verify` finds the three.
#[test]
fn damaged_gz_never_puts_an_invalid_line_on_stdout() {
    let healthy = healthy_dir();
    let tmp = copy_dir(healthy.path());
    let gz: Vec<_> = finished(tmp.path())
        .into_iter()
        .filter(|s| s.kind() == SegmentKind::Compressed)
        .take(3)
        .collect();
    assert_eq!(gz.len(), 3);
    let mut damaged = std::collections::BTreeSet::new();
    for (k, s) in gz.iter().enumerate() {
        for l in String::from_utf8(common::read_maybe_gz(s.path()))
            .unwrap()
            .lines()
        {
            damaged.insert(common::json(l)["fields"]["i"].as_u64().unwrap());
        }
        let mut b = std::fs::read(s.path()).unwrap();
        if k == 0 {
            let crc = b.len() - 8;
            b[crc] ^= 0xff;
        } else {
            let at = b.len() * (2 * k + 3) / 10;
            b[at..at + 4].fill(0);
        }
        std::fs::write(s.path(), b).unwrap();
    }
    let o = filesink(&["cat", path_str(tmp.path())]);
    let out = stdout(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let mut printed = Vec::new();
    for l in out.lines() {
        let v: serde_json::Value = l
            .parse()
            .unwrap_or_else(|e| panic!("cat printed a line that is not JSON ({e}): {l:?}"));
        let i = v["fields"]["i"].as_u64().expect("a logged event");
        assert!(
            !damaged.contains(&i),
            "event {i} of a damaged member printed"
        );
        printed.push(i);
    }
    let want: Vec<u64> = (0..2_000).filter(|i| !damaged.contains(i)).collect();
    assert_eq!(printed, want);
    for s in &gz {
        assert!(
            err.contains(s.file_name()),
            "{} not named: {err}",
            s.file_name()
        );
    }
    let o = filesink(&["verify", path_str(tmp.path())]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o)
            .lines()
            .filter(|l| l.contains("gzip data damaged"))
            .count(),
        3,
        "{}",
        stdout(&o)
    );
}

/// Issue 18, items 3 and 6: `stats` goes on past a damaged segment (its table printed, exit
/// 1); `cat` reports a missing middle segment (exit 1); `verify` checks the complete lines of
/// the active file.
#[test]
fn stats_cat_and_verify_report_what_they_could_not_read() {
    let healthy = healthy_dir();
    let segs = finished(healthy.path());
    let gz = segs
        .iter()
        .find(|s| s.kind() == SegmentKind::Compressed)
        .unwrap();

    let tmp = copy_dir(healthy.path());
    let p = tmp.path().join(gz.file_name());
    let mut b = std::fs::read(&p).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x5a;
    std::fs::write(&p, b).unwrap();
    let o = filesink(&["stats", path_str(tmp.path())]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o)
        .lines()
        .any(|l| l.trim_start().starts_with("total")));
    assert!(String::from_utf8_lossy(&o.stderr).contains(gz.file_name()));

    let tmp = copy_dir(healthy.path());
    let mid = &segs[segs.len() / 2];
    std::fs::remove_file(tmp.path().join(mid.file_name())).unwrap();
    let o = filesink(&["cat", path_str(tmp.path())]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("segment {} was removed", mid.seq().unwrap())),
        "{err}"
    );

    let tmp = copy_dir(healthy.path());
    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(tmp.path().join("app.log"))
            .unwrap();
        f.write_all(b"garbage, not a record\n").unwrap();
    }
    let o = filesink(&["verify", path_str(tmp.path())]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("app.log: offset") && l.contains("invalid JSON")),
        "{out}"
    );
}

/// Issue 18, item 2: one segment unreadable (mode 000, read as an unprivileged user), and
/// `app.log` a directory: `cat`, `stats` and `verify` name each once and end with exit 1 in
/// under a second, every readable line printed.
#[cfg(unix)]
#[test]
fn an_unreadable_file_is_reported_once_and_passed() {
    use std::os::unix::fs::PermissionsExt as _;
    use std::os::unix::process::CommandExt as _;
    // Readable by anyone: the commands may run as `nobody`.
    let open_to_all = |d: &Path| {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let mode = if p.is_dir() { 0o755 } else { 0o644 };
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    };
    let healthy = healthy_dir();
    let tmp = copy_dir(healthy.path());
    let d = tmp.path();
    open_to_all(d);
    let segs = finished(d);
    let locked = segs[segs.len() / 2].clone();
    std::fs::set_permissions(locked.path(), std::fs::Permissions::from_mode(0o000)).unwrap();
    let all = filesink(&["cat", path_str(healthy.path())]);
    let total = stdout(&all).lines().count();
    // Root reads anything: the commands run as `nobody` when the test runs as root. One
    // that has not ended after 10 s is killed (it used to run forever, printing the same
    // error).
    let run = |args: &[&str]| -> (Output, Duration) {
        let mut c = Command::new(env!("CARGO_BIN_EXE_filesink"));
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if rustix::process::geteuid().is_root() {
            c.uid(65534).gid(65534);
        }
        let t = Instant::now();
        let child = c.spawn().unwrap();
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let o = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(o) => o.unwrap(),
            Err(_) => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                panic!("filesink {args:?} still running after 10 s");
            }
        };
        (o, t.elapsed())
    };
    for cmd in ["cat", "stats", "verify"] {
        let (o, took) = run(&[cmd, path_str(d)]);
        let err = String::from_utf8_lossy(&o.stderr);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {err}{out}");
        assert!(took < Duration::from_secs(1), "{cmd} took {took:?}");
        let named =
            err.matches(locked.file_name()).count() + out.matches(locked.file_name()).count();
        assert_eq!(named, 1, "{cmd}: {err}{out}");
        if cmd == "cat" {
            assert!(out.lines().count() < total && out.lines().count() > total / 2);
        }
    }
    // The active file's name taken by a directory.
    let tmp = copy_dir(healthy.path());
    std::fs::remove_file(tmp.path().join("app.log")).unwrap();
    std::fs::create_dir(tmp.path().join("app.log")).unwrap();
    open_to_all(tmp.path());
    let (o, took) = run(&["cat", path_str(tmp.path())]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(took < Duration::from_secs(1), "cat took {took:?}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// Issue 18, item 7: after a crash tore the last line and the next start sealed the file as
/// it was, `verify` recognizes the recorded fragment (exit 0, a note on stderr), and `cat`
/// prints every record and never the fragment (a note on stderr); a torn last line no record
/// names is still a problem.
#[test]
fn a_sealed_torn_line_is_recognized_not_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let log = |n: u64| {
        let (layer, guard) = FileSink::builder(dir, STEM).build().unwrap();
        let d = common::dispatch(layer);
        tracing::dispatcher::with_default(&d, || {
            for i in 0..n {
                tracing::info!(i, "event");
            }
        });
        guard.shutdown(Duration::from_secs(10)).unwrap();
    };
    log(5);
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("app.log"))
        .unwrap()
        .write_all(b"{\"timestamp\":\"2026-11-26T03:1")
        .unwrap();
    log(5);
    let o = filesink(&["verify", path_str(dir)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{}{err}", stdout(&o));
    assert!(err.contains("torn last line left by a crash"), "{err}");
    let o = filesink(&["cat", path_str(dir)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("torn last line"), "{err}");
    let out = stdout(&o);
    for l in out.lines() {
        common::json(l);
    }
    assert_eq!(
        out.lines().count(),
        11,
        "10 events and the recovery record:\n{out}"
    );

    // Without its record (here: removed by hand), the same tear is a problem.
    let tmp2 = copy_dir(dir);
    std::fs::remove_file(tmp2.path().join("app.log")).unwrap();
    let o = filesink(&["verify", path_str(tmp2.path())]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("torn last line (no newline at the end)"));
}

/// Issue 18, item 6: with a custom time format, `cat --since` refuses the timestamps it
/// cannot read (exit 2, saying why) instead of printing nothing; with `--time-format` it
/// selects by them; in text format a time format with spaces does not hide the level.
#[test]
fn cat_with_a_custom_time_format() {
    const FORMAT: &str = "%d/%m/%Y %H:%M:%S%.6f %z";
    for format in [
        tracing_filesink::Format::Json,
        tracing_filesink::Format::Text,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(common::at(START));
        let (layer, guard) = FileSink::builder(tmp.path(), STEM)
            .clock(clock.clone())
            .format(format)
            .time_format(tracing_filesink::TimeFormat::custom(FORMAT))
            .build()
            .unwrap();
        let d = common::dispatch(layer);
        tracing::dispatcher::with_default(&d, || {
            for i in 0..200u64 {
                if i % 10 == 0 {
                    tracing::warn!(i, "event");
                } else {
                    tracing::info!(i, "event");
                }
                clock.advance(Duration::from_secs(1));
            }
        });
        guard.shutdown(Duration::from_secs(10)).unwrap();
        let dir = path_str(tmp.path());
        // The event number, whatever the format.
        let numbers = |out: &str| -> Vec<u64> {
            out.lines()
                .map(|l| {
                    let at = l
                        .find("i=")
                        .map(|a| a + 2)
                        .or_else(|| l.find("\"i\":").map(|a| a + 4));
                    let rest = &l[at.unwrap_or_else(|| panic!("{l}"))..];
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    digits.parse().unwrap()
                })
                .collect()
        };
        let o = filesink(&["cat", dir, "--since", "2026-11-26T00:01:40Z"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{format:?}: {err}");
        assert!(
            err.contains("not RFC 3339") && err.contains("--time-format"),
            "{err}"
        );
        let o = filesink(&[
            "cat",
            dir,
            "--since",
            "2026-11-26T00:01:40Z",
            "--time-format",
            FORMAT,
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            numbers(&stdout(&o)),
            (100..200).collect::<Vec<_>>(),
            "{format:?}"
        );
        let o = filesink(&["cat", dir, "--level", "warn"]);
        assert_eq!(
            numbers(&stdout(&o)),
            (0..200).step_by(10).collect::<Vec<_>>(),
            "{format:?}"
        );
    }
}

/// `cat --level` and `stats` in every layout the sink writes: logfmt, text, compact, and JSON
/// with the Elastic Common Schema and Google Cloud names, in `.jsonl` files (`--extension`);
/// `verify` passes them all.
#[test]
fn every_layout_is_read_with_levels_and_extensions() {
    use tracing_filesink::Format;
    type Shape = fn(tracing_filesink::Builder) -> tracing_filesink::Builder;
    let shapes: [(&str, Shape); 5] = [
        ("logfmt", |b| b.format(Format::Logfmt)),
        ("text", |b| b.format(Format::Text)),
        ("compact", |b| b.format(Format::Compact)),
        ("ecs", |b| {
            b.flatten_event(true)
                .rename_key("timestamp", "@timestamp")
                .rename_key("level", "log.level")
        }),
        ("gcl", |b| {
            b.flatten_event(true)
                .rename_key("timestamp", "time")
                .rename_key("level", "severity")
        }),
    ];
    for (what, shape) in shapes {
        let tmp = tempfile::tempdir().unwrap();
        let (layer, guard) = shape(FileSink::builder(tmp.path(), STEM))
            .file_extension("jsonl")
            .rotation(Rotation::size(2048))
            .build()
            .unwrap();
        tracing::dispatcher::with_default(&common::dispatch(layer), || {
            for i in 0..60u64 {
                match i % 3 {
                    0 => tracing::info!(i, "event"),
                    1 => tracing::warn!(i, "event"),
                    _ => tracing::error!(i, "event"),
                }
            }
        });
        guard.shutdown(Duration::from_secs(10)).unwrap();
        let dir = path_str(tmp.path());
        let out = filesink(&["cat", dir, "--extension", "jsonl", "--level", "warn"]);
        assert!(out.status.success(), "{what}: {out:?}");
        let lines = stdout(&out);
        assert_eq!(lines.lines().count(), 40, "{what}:\n{lines}");
        assert!(
            lines.lines().all(|l| !l.contains("INFO")),
            "{what}:\n{lines}"
        );
        let out = filesink(&["cat", dir, "--extension", "jsonl", "--since", "1h"]);
        assert_eq!(stdout(&out).lines().count(), 60, "{what}: timestamps read");
        let out = filesink(&["stats", dir, "--extension", "jsonl"]);
        let stats = stdout(&out);
        assert!(out.status.success(), "{what}: {out:?}");
        assert!(
            !stats.contains("without a recognizable level"),
            "{what}:\n{stats}"
        );
        let out = filesink(&["verify", dir, "--extension", "jsonl"]);
        assert!(out.status.success(), "{what}: {out:?}");
        // A line that is not logfmt in a logfmt segment is found.
        if what == "logfmt" {
            let seg = LogDir::open(tmp.path(), STEM)
                .unwrap()
                .with_extension("jsonl")
                .segments()
                .unwrap()
                .into_iter()
                .find(|s| s.kind() == SegmentKind::Plain)
                .unwrap();
            let mut bytes = std::fs::read(seg.path()).unwrap();
            bytes.extend_from_slice(b"level=INFO message=\"unterminated\n");
            std::fs::write(seg.path(), &bytes).unwrap();
            let out = filesink(&["verify", dir, "--extension", "jsonl"]);
            assert!(!out.status.success(), "{out:?}");
            assert!(
                stdout(&out).contains("invalid logfmt: byte 19: an unterminated quoted value"),
                "{}",
                stdout(&out)
            );
        }
        // Without the extension there is nothing to read, and it says so.
        let out = filesink(&["cat", dir]);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("ending in .log"),
            "{out:?}"
        );
    }
}
