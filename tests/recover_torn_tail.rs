//! A torn last line left by a crash (issue 18, item 7): the next start seals the file as it
//! is, never shrinking or rewriting a byte a reader may already have read, records what it
//! did, and readers return the fragment marked torn, never as a record.

mod common;

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::Duration;

use tracing_filesink::read::LogDir;
use tracing_filesink::FileSink;

const SEALED: &str = "recovery: sealed a file as it was, with a torn last line";
const FRAGMENT: &[u8] = b"{\"timestamp\":\"2026-11-26T03:14:48.123456Z\",\"level\":\"INFO\",\"fiel";

fn log(dir: &Path, tag: &str, n: u64) {
    let (layer, guard) = FileSink::builder(dir, "app").build().unwrap();
    let d = common::dispatch(layer);
    tracing::dispatcher::with_default(&d, || {
        for i in 0..n {
            tracing::info!(tag, i, "event");
        }
    });
    guard.shutdown(Duration::from_secs(10)).unwrap();
}

fn tear(dir: &Path) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("app.log"))
        .unwrap()
        .write_all(FRAGMENT)
        .unwrap();
}

/// What a reader sees across the restart, and what a shipper holding the file has.
#[test]
fn a_torn_active_file_is_sealed_as_it_is_and_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    log(dir, "before", 10);
    tear(dir);
    // A shipper has read the whole file, fragment included, and holds it open.
    let mut held = std::fs::File::open(dir.join("app.log")).unwrap();
    let mut seen = Vec::new();
    held.read_to_end(&mut seen).unwrap();
    let mut follower = LogDir::open(dir, "app").unwrap().follow().unwrap();
    let mut got = Vec::new();
    while let Some(l) = follower.poll().unwrap() {
        got.push(l);
    }
    assert_eq!(got.len(), 10, "the fragment is not a line yet");

    log(dir, "after", 5);

    // Never shrunk, never rewritten: the held file has exactly the bytes read before.
    assert_eq!(held.metadata().unwrap().len(), seen.len() as u64);
    let mut now = Vec::new();
    let mut again = std::fs::File::open(dir.join("app.log")).unwrap();
    again.read_to_end(&mut now).unwrap();
    assert!(!now.starts_with(FRAGMENT) && !now.is_empty());
    let segs = common::segments(dir, "app");
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert_eq!(std::fs::read(dir.join(&segs[0].name)).unwrap(), seen);

    while let Some(l) = follower.poll().unwrap() {
        got.push(l);
    }
    let torn = &got[10];
    assert!(!torn.is_complete());
    assert_eq!(torn.as_bytes(), FRAGMENT);
    assert_eq!(torn.seq(), None, "read as the active file it was");
    let rec = common::json(got[11].as_str().unwrap());
    let f = &rec["fields"];
    assert!(f["message"].as_str().unwrap().starts_with(SEALED), "{rec}");
    assert_eq!(f["segment"].as_u64(), Some(segs[0].seq));
    assert_eq!(f["torn_bytes"].as_u64(), Some(FRAGMENT.len() as u64));
    let tags: Vec<String> = got[12..]
        .iter()
        .map(|l| common::json(l.as_str().unwrap())["fields"]["tag"].to_string())
        .collect();
    assert_eq!(tags, vec!["\"after\""; 5]);

    // Read back from the start: the same, the fragment marked torn, from the segment.
    let lines: Vec<_> = LogDir::open(dir, "app")
        .unwrap()
        .lines()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(lines.len(), 17);
    assert!(!lines[10].is_complete() && lines[10].seq() == Some(segs[0].seq));
    assert!(lines.iter().filter(|l| !l.is_complete()).count() == 1);
}

/// A start killed between sealing the torn file and writing its record leaves the newest
/// segment torn and no record: the next start writes it, once.
#[test]
fn a_record_lost_to_a_second_crash_is_written_by_the_next_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    log(dir, "before", 3);
    tear(dir);
    // What the killed start left: the file sealed, no active file yet.
    let name = "app.0000000001.20261126T031448Z.log";
    std::fs::rename(dir.join("app.log"), dir.join(name)).unwrap();
    log(dir, "after", 2);
    log(dir, "later", 2);
    let records: Vec<serde_json::Value> = LogDir::open(dir, "app")
        .unwrap()
        .lines()
        .unwrap()
        .map(Result::unwrap)
        .filter(|l| l.is_complete())
        .map(|l| common::json(l.as_str().unwrap()))
        .filter(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(SEALED))
        })
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["fields"]["segment"].as_u64(), Some(1));
    assert_eq!(
        records[0]["fields"]["torn_bytes"].as_u64(),
        Some(FRAGMENT.len() as u64)
    );
}
