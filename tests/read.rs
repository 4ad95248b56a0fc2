//! Reading a sink's files back (`tracing_filesink::read`): segments in write order, lines
//! across plain, compressed and pending segments, and the follower across real rotations,
//! compression and retention.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing_filesink::read::{LogDir, SegmentKind};
use tracing_filesink::{Compression, FileSink, Retention, Rotation};

const L1: &str = "20261126T031448Z";
const L2: &str = "20261126T041448Z";

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The lines, and each error as `!` followed by its message.
fn texts(logs: &LogDir) -> Vec<String> {
    logs.lines()
        .unwrap()
        .map(|l| match l {
            Ok(l) => l.as_str().unwrap().to_string(),
            Err(e) => format!("!{e}"),
        })
        .collect()
}

/// A hand-made directory: the order comes from the sequence numbers, whatever the labels,
/// the kinds and the length of the numbers; a segment present plain and compressed is read
/// once; other stems and foreign files are ignored; the hole between 12 and 12345678901 is
/// reported once, where it is.
#[test]
fn segments_and_lines_in_write_order() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let w = |n: &str, b: &[u8]| std::fs::write(d.join(n), b).unwrap();
    w(&format!("app.0000000009.{L2}.log.gz"), &gz(b"nine\n"));
    w(&format!("app.0000000010.{L1}.log"), b"ten\n");
    w(&format!("app.0000000011.{L1}.log"), b"eleven\n");
    w(&format!("app.0000000011.{L1}.log.gz"), &gz(b"eleven\n"));
    w(&format!("app.0000000012.{L1}.log.pending"), b"twelve\n");
    w(&format!("app.12345678901.{L1}.log"), b"big\n");
    w("app.log", b"active 1\nactive 2\npartial");
    w(&format!("app-worker.0000000001.{L1}.log"), b"other stem\n");
    w("app-worker.log", b"other stem\n");
    w("app.log.lock", b"");
    w(".app.Xy12abCD34ef.tmp", b"temp\n");
    w("notes.txt", b"foreign\n");

    let logs = LogDir::open(d, "app").unwrap();
    let segs = logs.segments().unwrap();
    let listed: Vec<(Option<u64>, SegmentKind)> =
        segs.iter().map(|s| (s.seq(), s.kind())).collect();
    assert_eq!(
        listed,
        vec![
            (Some(9), SegmentKind::Compressed),
            (Some(10), SegmentKind::Plain),
            (Some(11), SegmentKind::Plain),
            (Some(11), SegmentKind::Compressed),
            (Some(12), SegmentKind::Pending),
            (Some(12_345_678_901), SegmentKind::Plain),
            (None, SegmentKind::Active),
        ]
    );
    assert_eq!(
        segs[0].start_time(),
        Some(common::at("2026-11-26T04:14:48Z"))
    );
    assert_eq!(segs[1].start_label(), Some(L1));
    let got = texts(&logs);
    assert_eq!(got.len(), 8, "{got:?}");
    assert!(
        got[4].starts_with('!') && got[4].contains("segments 13..=12345678900 were removed"),
        "{got:?}"
    );
    assert_eq!(
        [&got[..4], &got[5..]].concat(),
        ["nine", "ten", "eleven", "twelve", "big", "active 1", "active 2"]
    );
    assert_eq!(
        LogDir::stems(d).unwrap(),
        ["app".to_string(), "app-worker".to_string()]
    );

    let recs: Vec<_> = logs.records().unwrap().filter_map(Result::ok).collect();
    assert_eq!(recs.len(), 7);
    assert_eq!(recs[1].line().seq(), Some(10));
    assert_eq!(recs[5].line().seq(), None);
    assert_eq!(recs[6].line().offset(), 9);
}

/// A torn last line of a finished segment is returned, marked incomplete; one at the end of
/// the active file is held back until its newline arrives.
#[test]
fn partial_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join(format!("app.0000000001.{L1}.log")), b"a\ntorn").unwrap();
    std::fs::write(d.join("app.log"), b"b\nhalf").unwrap();
    let logs = LogDir::open(d, "app").unwrap();
    let lines: Vec<_> = logs.lines().unwrap().map(Result::unwrap).collect();
    let got: Vec<(&str, bool)> = lines
        .iter()
        .map(|l| (l.as_str().unwrap(), l.is_complete()))
        .collect();
    assert_eq!(got, [("a", true), ("torn", false), ("b", true)]);

    let mut f = logs.follow().unwrap();
    for want in ["a", "torn", "b"] {
        assert_eq!(f.poll().unwrap().unwrap().as_str(), Some(want));
    }
    assert_eq!(f.poll().unwrap(), None);
    append(&d.join("app.log"), b" a line");
    assert_eq!(f.poll().unwrap(), None, "still no newline");
    append(&d.join("app.log"), b"\nnext\n");
    assert_eq!(f.poll().unwrap().unwrap().as_str(), Some("half a line"));
    assert_eq!(f.poll().unwrap().unwrap().as_str(), Some("next"));
    assert_eq!(f.poll().unwrap(), None);
}

fn append(p: &Path, b: &[u8]) {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .append(true)
        .open(p)
        .unwrap()
        .write_all(b)
        .unwrap();
}

/// The follower across rotations done by hand the way the sink does them (rename to
/// pending, create the next active file, write the last lines to the old one before that),
/// including a segment that is compressed and deleted while the follower holds it, and two
/// rotations between two polls.
#[test]
fn follower_across_hand_made_rotations() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let active = d.join("app.log");
    std::fs::write(&active, b"1\n").unwrap();
    let logs = LogDir::open(d, "app").unwrap();
    let mut f = logs.follow().unwrap();
    let mut got = Vec::new();
    let drain = |f: &mut tracing_filesink::read::Follower, got: &mut Vec<String>| {
        while let Some(l) = f.poll().unwrap() {
            got.push(l.as_str().unwrap().to_string());
        }
    };
    drain(&mut f, &mut got);
    // Rotation 1: more lines, seal, then compress and delete the plain file at once.
    append(&active, b"2\n");
    let seg1 = d.join(format!("app.0000000001.{L1}.log"));
    std::fs::rename(&active, &seg1).unwrap();
    std::fs::write(&active, b"3\n").unwrap();
    let bytes = std::fs::read(&seg1).unwrap();
    std::fs::write(d.join(format!("app.0000000001.{L1}.log.gz")), gz(&bytes)).unwrap();
    std::fs::remove_file(&seg1).unwrap();
    drain(&mut f, &mut got);
    // Rotations 2 and 3 between two polls; the third segment still pending.
    std::fs::rename(&active, d.join(format!("app.0000000002.{L1}.log"))).unwrap();
    std::fs::write(&active, b"4\n5\n").unwrap();
    std::fs::rename(&active, d.join(format!("app.0000000003.{L2}.log.pending"))).unwrap();
    std::fs::write(&active, b"6\n").unwrap();
    drain(&mut f, &mut got);
    append(&active, b"7\n");
    drain(&mut f, &mut got);
    assert_eq!(got, ["1", "2", "3", "4", "5", "6", "7"]);

    // A follower from the end sees only what comes next.
    let mut tail = logs.follow_new().unwrap();
    assert_eq!(tail.poll().unwrap(), None);
    append(&active, b"8\n");
    assert_eq!(tail.poll().unwrap().unwrap().as_str(), Some("8"));
}

/// The follower holds the active file when the sink seals it and compresses it: it reads the
/// file to its end once, finds the `.gz` is that file, and goes on with the next active file,
/// repeating nothing. (On Windows the plain name stays listed, a delete pending, while the
/// follower holds the file, and opening it fails.)
#[test]
fn follower_holding_a_file_compressed_under_it_repeats_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (layer, guard) = FileSink::builder(dir, "app")
        .compression(Compression::gzip())
        .build()
        .unwrap();
    let sub = common::dispatch(layer);
    let log = |tag: &str| {
        tracing::dispatcher::with_default(&sub, || {
            for i in 0..20u64 {
                tracing::info!(tag, i, "event");
            }
        });
        guard.flush().unwrap();
    };
    let mut follower = LogDir::open(dir, "app").unwrap().follow().unwrap();
    let mut got = Vec::new();
    let mut read_all = |f: &mut tracing_filesink::read::Follower| {
        while let Some(l) = f.poll().unwrap() {
            let v = common::json(l.as_str().unwrap());
            got.push(format!("{} {}", v["fields"]["tag"], v["fields"]["i"]));
        }
    };
    log("before");
    read_all(&mut follower);
    guard.rotate().unwrap();
    guard.wait_idle(Duration::from_secs(30)).unwrap();
    assert_eq!(guard.stats().segments_compressed, 1);
    log("after");
    read_all(&mut follower);
    let want: Vec<String> = ["before", "after"]
        .iter()
        .flat_map(|t| (0..20).map(move |i| format!("\"{t}\" {i}")))
        .collect();
    assert_eq!(got, want);
}

/// An error while the follower reads the active file (here the directory is moved away and a
/// file put in its place) is returned, and the follower keeps its place: once the directory
/// is back it reads on from where it was, repeating nothing. Unix only: Windows refuses to
/// rename a directory while a file in it is open.
#[cfg(unix)]
#[test]
fn follower_keeps_its_place_across_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    let moved = tmp.path().join("moved");
    let log = |tag: &str| {
        let (layer, guard) = FileSink::builder(&dir, "app").build().unwrap();
        let sub = common::dispatch(layer);
        tracing::dispatcher::with_default(&sub, || {
            for i in 0..5u64 {
                tracing::info!(tag, i, "event");
            }
        });
        guard.shutdown(Duration::from_secs(5)).unwrap();
    };
    let take = |f: &mut tracing_filesink::read::Follower| {
        let mut got = Vec::new();
        while let Some(l) = f.poll().unwrap() {
            got.push(common::json(l.as_str().unwrap())["fields"]["tag"].to_string());
        }
        got
    };
    log("first");
    let mut follower = LogDir::open(&dir, "app").unwrap().follow().unwrap();
    assert_eq!(take(&mut follower), vec!["\"first\""; 5]);

    std::fs::rename(&dir, &moved).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    assert!(
        follower.poll().is_err(),
        "the follower cannot look at the directory"
    );
    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(&moved, &dir).unwrap();

    assert_eq!(
        take(&mut follower),
        Vec::<String>::new(),
        "nothing read twice"
    );
    log("second");
    assert_eq!(take(&mut follower), vec!["\"second\""; 5]);
}

const THREADS: u64 = 8;
const PER_THREAD: u64 = 3_000;
/// Loggers wait while they are this many events ahead of the follower, so retention (which
/// keeps 8 segments of about 160 lines) can never delete a segment the follower has not opened.
const WINDOW: u64 = 400;

/// 8 threads log through 32 KiB rotation, gzip and retention by count while a follower
/// started on the empty directory reads along: it yields every event exactly once, in each
/// thread's order, and nothing else.
#[test]
fn follower_sees_every_event_once_through_rotation_gzip_and_retention() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let (layer, guard) = FileSink::builder(&dir, "app")
        .rotation(Rotation::size(32 << 10))
        .compression(Compression::gzip().level(1))
        .retention(Retention::files(8))
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    let followed = Arc::new(AtomicU64::new(0));
    let logged = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    let reader = {
        let (dir, followed, stop) = (dir.clone(), followed.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut f = LogDir::open(&dir, "app").unwrap().follow().unwrap();
            let mut out = Vec::new();
            loop {
                match f.poll().unwrap() {
                    Some(l) => {
                        out.push(l.as_str().unwrap().to_string());
                        followed.fetch_add(1, Ordering::Release);
                    }
                    None if stop.load(Ordering::Acquire) => {
                        // Everything was flushed before `stop`: one more look to the end.
                        while let Some(l) = f.poll().unwrap() {
                            out.push(l.as_str().unwrap().to_string());
                        }
                        return out;
                    }
                    None => std::thread::park_timeout(Duration::from_millis(1)),
                }
            }
        })
    };
    let pad = "p".repeat(100);
    // Halfway, the loggers wait until compression and retention have both worked, so the
    // second half is followed while they run.
    let halfway = Arc::new(std::sync::Barrier::new(THREADS as usize + 1));
    let loggers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (d, followed, logged, pad, halfway) = (
                dispatch.clone(),
                followed.clone(),
                logged.clone(),
                pad.clone(),
                halfway.clone(),
            );
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for seq in 0..PER_THREAD {
                        if seq == PER_THREAD / 2 {
                            halfway.wait();
                            halfway.wait();
                        }
                        while logged.load(Ordering::Acquire)
                            > followed.load(Ordering::Acquire) + WINDOW
                        {
                            std::thread::park_timeout(Duration::from_micros(200));
                        }
                        tracing::info!(thread = t, seq, pad = pad.as_str(), "event");
                        logged.fetch_add(1, Ordering::Release);
                        if seq % 4 == 0 {
                            // A busy service's pace, not a tight loop: compression at nice 19
                            // waits while the application logs more than 16 MiB/s.
                            std::thread::park_timeout(Duration::from_millis(1));
                        }
                    }
                })
            })
        })
        .collect();
    halfway.wait();
    common::wait_until(
        "a segment compressed and one pruned",
        Duration::from_secs(60),
        || {
            let s = guard.stats();
            s.segments_compressed > 0 && s.segments_pruned > 0
        },
    );
    halfway.wait();
    for h in loggers {
        h.join().unwrap();
    }
    guard.flush().unwrap();
    let stats = guard.stats();
    stop.store(true, Ordering::Release);
    let lines = reader.join().unwrap();
    drop(guard);
    assert!(stats.rotations >= 50, "only {} rotations", stats.rotations);

    let mut next: HashMap<u64, u64> = HashMap::new();
    for line in &lines {
        let v = common::json(line);
        let f = &v["fields"];
        let t = f["thread"].as_u64().unwrap_or_else(|| panic!("{line}"));
        let seq = f["seq"].as_u64().unwrap();
        let want = next.entry(t).or_default();
        assert_eq!(seq, *want, "thread {t}: got seq {seq}, expected {want}");
        *want += 1;
    }
    assert_eq!(lines.len() as u64, THREADS * PER_THREAD, "line count");
    for t in 0..THREADS {
        assert_eq!(next.get(&t), Some(&PER_THREAD), "thread {t}");
    }
}

#[test]
fn reader_types_are_send() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<tracing_filesink::read::Follower>();
    send::<tracing_filesink::read::Lines>();
    send::<tracing_filesink::read::Records>();
    send_sync::<LogDir>();
    send_sync::<tracing_filesink::read::Line>();
    send_sync::<tracing_filesink::read::Record>();
    send_sync::<tracing_filesink::read::SegmentFile>();
}

/// Issue 18, item 6: `follow_new()` takes the active file when it is made, so the lines
/// logged after it are read even when a rotation comes before the first poll, and none of
/// those logged before it are.
#[test]
fn follow_new_reads_what_is_logged_after_it_across_an_early_rotation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (layer, guard) = FileSink::builder(dir, "app").build().unwrap();
    let sub = common::dispatch(layer);
    let log = |tag: &str| {
        tracing::dispatcher::with_default(&sub, || {
            for i in 0..10u64 {
                tracing::info!(tag, i, "event");
            }
        });
        guard.flush().unwrap();
    };
    log("old");
    let mut f = LogDir::open(dir, "app").unwrap().follow_new().unwrap();
    log("new");
    guard.rotate().unwrap();
    log("newer");
    let mut got = Vec::new();
    while let Some(l) = f.poll().unwrap() {
        let v = common::json(l.as_str().unwrap());
        got.push(format!("{} {}", v["fields"]["tag"], v["fields"]["i"]));
    }
    let want: Vec<String> = ["new", "newer"]
        .iter()
        .flat_map(|t| (0..10).map(move |i| format!("\"{t}\" {i}")))
        .collect();
    assert_eq!(got, want);
}

/// A segment removed before a slow follower got to it is reported, once, naming the numbers,
/// and the follower goes on with the next one: never skipped in silence.
#[test]
fn a_segment_removed_before_the_follower_read_it_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join(format!("app.0000000001.{L1}.log")), b"one\n").unwrap();
    std::fs::write(d.join(format!("app.0000000002.{L1}.log")), b"two\n").unwrap();
    std::fs::write(d.join("app.log"), b"active\n").unwrap();
    let logs = LogDir::open(d, "app").unwrap();
    // `lines()`: the same reader as a follower, without a watcher that could open the
    // segments below before they are removed.
    let mut f = logs.lines().unwrap();
    assert_eq!(f.next().unwrap().unwrap().as_str(), Some("one"));
    // While the follower was on segment 1: rotations 3 and 4, then retention took 2 and 3.
    // (Segment 2 is still held: it was there when the follower started.)
    std::fs::rename(
        d.join("app.log"),
        d.join(format!("app.0000000003.{L1}.log")),
    )
    .unwrap();
    std::fs::write(d.join(format!("app.0000000004.{L1}.log")), b"four\n").unwrap();
    std::fs::write(d.join("app.log"), b"five\n").unwrap();
    std::fs::remove_file(d.join(format!("app.0000000002.{L1}.log"))).unwrap();
    std::fs::remove_file(d.join(format!("app.0000000003.{L1}.log"))).unwrap();
    let got: Vec<String> = f
        .map(|l| match l {
            Ok(l) => l.as_str().unwrap().to_string(),
            Err(e) => format!("!{e}"),
        })
        .collect();
    // The held file of segment 2 is read; 3, the active file when the reader started, was
    // never opened: it is reported.
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0], "two");
    assert!(got[1].contains("segment 3 was removed"), "{got:?}");
    assert_eq!(&got[2..], ["four", "five"]);
}

/// Issue 18, item 2: reading never spins on one file: an active file's name taken by a
/// directory ends `lines()` after one error (so `.flatten()` ends), and a follower returns the
/// error once, not at every poll.
#[test]
fn an_unreadable_active_file_is_one_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join(format!("app.0000000001.{L1}.log")), b"one\n").unwrap();
    std::fs::create_dir(d.join("app.log")).unwrap();
    let logs = LogDir::open(d, "app").unwrap();
    // At most 100: the reader used to return the same error forever.
    let all: Vec<_> = logs.lines().unwrap().take(100).collect();
    assert_eq!(all.len(), 2, "{:?}", &all[..all.len().min(3)]);
    assert_eq!(all[0].as_ref().unwrap().as_str(), Some("one"));
    let e = all[1].as_ref().unwrap_err();
    assert_eq!(e.path(), Some(d.join("app.log").as_path()), "{e}");
    assert_eq!(logs.lines().unwrap().take(100).flatten().count(), 1);

    let mut f = logs.follow().unwrap();
    assert_eq!(f.poll().unwrap().unwrap().as_str(), Some("one"));
    assert!(f.poll().is_err());
    for _ in 0..10 {
        assert_eq!(f.poll().unwrap(), None, "the same error again");
    }
    // Once the directory is replaced by a file, the follower reads it.
    std::fs::remove_dir(d.join("app.log")).unwrap();
    std::fs::write(d.join("app.log"), b"back\n").unwrap();
    assert_eq!(f.poll().unwrap().unwrap().as_str(), Some("back"));
}

/// Issue 18, item 5: a `.gz` whose member fails its check yields none of its lines; the
/// error names the file and the segments after it are read.
#[test]
fn a_damaged_gz_yields_no_line_of_the_bad_member() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let body: String = (0..2000).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let mut z = gz(body.as_bytes());
    // The CRC32 in the trailer: every byte inflates, and only the check at the end fails.
    let crc = z.len() - 8;
    z[crc] ^= 0xff;
    let bad = format!("app.0000000001.{L1}.log.gz");
    std::fs::write(d.join(&bad), z).unwrap();
    std::fs::write(d.join(format!("app.0000000002.{L1}.log")), b"two\n").unwrap();
    let got = texts(&LogDir::open(d, "app").unwrap());
    assert_eq!(got.len(), 2, "{:?}", &got[..got.len().min(5)]);
    assert!(got[0].starts_with('!') && got[0].contains(&bad), "{got:?}");
    assert_eq!(got[1], "two");
}

/// Issue 18, item 1, through the library: with file-system events (feature `notify`) a
/// follower that never throttles the loggers keeps up with 32 KiB rotation, gzip at once and
/// retention by 4 files: every event once, in order.
#[cfg(feature = "notify")]
#[test]
fn a_watching_follower_keeps_up_with_fast_retention() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let (layer, guard) = FileSink::builder(&dir, "app")
        .rotation(Rotation::size(32 << 10))
        .compression(Compression::gzip().level(1))
        .retention(Retention::files(4))
        .build()
        .unwrap();
    let mut f = LogDir::open(&dir, "app").unwrap().follow().unwrap();
    assert!(f.is_watching());
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        for l in &mut f {
            let l = l.unwrap();
            let end = l.as_str().unwrap().contains("\"end\":true");
            out.push(l.as_str().unwrap().to_string());
            if end {
                return out;
            }
        }
        out
    });
    let d = common::dispatch(layer);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let d = d.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for seq in 0..5_000u64 {
                        tracing::info!(thread = t, seq, pad = "r".repeat(80).as_str(), "event");
                        if seq % 6 == 5 {
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
    tracing::dispatcher::with_default(&d, || tracing::info!(end = true, "end"));
    guard.flush().unwrap();
    let lines = reader.join().unwrap();
    assert!(guard.stats().segments_pruned >= 40);
    let mut next = [0u64; 4];
    for l in &lines[..lines.len() - 1] {
        let f = &common::json(l)["fields"];
        let (Some(t), Some(seq)) = (f["thread"].as_u64(), f["seq"].as_u64()) else {
            continue;
        };
        assert_eq!(seq, next[t as usize], "thread {t}");
        next[t as usize] += 1;
    }
    assert_eq!(next, [5_000; 4]);
}
