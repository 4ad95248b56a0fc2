//! Helpers shared by the integration tests: installing a sink's layer, reading back what it
//! wrote (active file, finished segments, compressed segments), and an independent parser of
//! the documented on-disk names, so the tests do not trust the crate's own name module.
//!
//! Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::Dispatch;
use tracing_subscriber::prelude::*;

/// A dispatcher with only `layer` on a registry; `tracing::dispatcher::with_default` it on
/// each logging thread.
pub fn dispatch<L>(layer: L) -> Dispatch
where
    L: tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    Dispatch::new(tracing_subscriber::registry().with(layer))
}

/// A finished segment's name, parsed as `docs/design.md` describes it:
/// `<stem>.<10-digit sequence>.<YYYYMMDDTHHMMSS><Z|+HHMM|-HHMM>.log[.gz]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegName {
    pub name: String,
    pub seq: u64,
    pub label: String,
    pub gz: bool,
}

pub fn parse_segment_name(stem: &str, name: &str) -> Option<SegName> {
    let rest = name.strip_prefix(stem)?.strip_prefix('.')?;
    let (rest, gz) = match rest.strip_suffix(".log.gz") {
        Some(r) => (r, true),
        None => (rest.strip_suffix(".log")?, false),
    };
    let (seq, label) = rest.split_once('.')?;
    if seq.len() != 10 || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let b = label.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let zone_ok = match &b.get(15..)? {
        [b'Z'] => true,
        [s, rest @ ..] => {
            (*s == b'+' || *s == b'-') && rest.len() == 4 && rest.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    };
    if b.len() < 16 || !digits(0..8) || b[8] != b'T' || !digits(9..15) || !zone_ok {
        return None;
    }
    Some(SegName {
        name: name.to_string(),
        seq: seq.parse().ok()?,
        label: label.to_string(),
        gz,
    })
}

/// Every file name in `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// This stem's finished segments (plain and compressed), sorted by name as plain strings.
/// Only regular files: a directory or a symlink with a segment's name is not a segment.
pub fn segments(dir: &Path, stem: &str) -> Vec<SegName> {
    file_names(dir)
        .iter()
        .filter_map(|n| parse_segment_name(stem, n))
        .filter(|s| std::fs::symlink_metadata(dir.join(&s.name)).is_ok_and(|m| m.is_file()))
        .collect()
}

/// The bytes of a file; a `.gz` file is decompressed.
pub fn read_maybe_gz(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("gunzip {}: {e}", path.display()));
        out
    } else {
        raw
    }
}

/// The active file's path.
pub fn active(dir: &Path, stem: &str) -> PathBuf {
    dir.join(format!("{stem}.log"))
}

/// The active file's bytes (empty if it does not exist).
pub fn read_active(dir: &Path, stem: &str) -> Vec<u8> {
    std::fs::read(active(dir, stem)).unwrap_or_default()
}

/// Splits file contents into lines, checking the file ends with a newline (no torn record).
pub fn lines(bytes: &[u8], what: &str) -> Vec<String> {
    if bytes.is_empty() {
        return Vec::new();
    }
    assert_eq!(
        bytes.last(),
        Some(&b'\n'),
        "{what} does not end with a newline: a record was split"
    );
    std::str::from_utf8(&bytes[..bytes.len() - 1])
        .unwrap_or_else(|e| panic!("{what} is not UTF-8: {e}"))
        .split('\n')
        .map(str::to_string)
        .collect()
}

/// Parses one JSON line, with a message naming the line on failure.
pub fn json(line: &str) -> serde_json::Value {
    line.parse::<serde_json::Value>()
        .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
}

/// Every record of the stem in write order: finished segments in name order, then the
/// active file. Returns (file name, lines) per file.
pub fn all_files_lines(dir: &Path, stem: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for s in segments(dir, stem) {
        let bytes = read_maybe_gz(&dir.join(&s.name));
        out.push((s.name.clone(), lines(&bytes, &s.name)));
    }
    let a = format!("{stem}.log");
    out.push((a.clone(), lines(&read_active(dir, stem), &a)));
    out
}

/// Waits for `cond` by yielding, failing the test after `limit`: for background work (the
/// compressor, retention) that has no acknowledgement to wait on.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    let mut spins = 0u64;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for {what}"
        );
        spins += 1;
        if spins.is_multiple_of(64) {
            // Give the background thread the core on a 2-core machine.
            std::thread::park_timeout(Duration::from_millis(1));
        } else {
            std::thread::yield_now();
        }
    }
}

/// `s` (RFC 3339) as a `SystemTime`.
pub fn at(s: &str) -> SystemTime {
    let dt = chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    UNIX_EPOCH + Duration::from_nanos(dt.timestamp_nanos_opt().unwrap() as u64)
}

/// The start-time label a segment starting at `t` must carry in a zone `offset` seconds
/// east of UTC (`utc` selects the `Z` spelling).
pub fn label(t: SystemTime, offset: i32, utc: bool) -> String {
    let dt = chrono::DateTime::<chrono::Utc>::from(t)
        .with_timezone(&chrono::FixedOffset::east_opt(offset).unwrap());
    let zone = if utc {
        "Z".to_string()
    } else {
        let a = offset.unsigned_abs();
        format!(
            "{}{:02}{:02}",
            if offset < 0 { '-' } else { '+' },
            a / 3600,
            a % 3600 / 60
        )
    };
    format!("{}{zone}", dt.format("%Y%m%dT%H%M%S"))
}

/// Held for reading while a test spawns a child process, for writing while a test drops a
/// sink and builds it again. A child forked between `fork` and `exec` briefly holds a copy of
/// every descriptor of the process, the sink's lock file included, so a rebuild racing a
/// spawn in another test thread could be refused as `Locked`.
pub static FORKS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Runs `f` while no test of this binary spawns a process.
pub fn without_forks<T>(f: impl FnOnce() -> T) -> T {
    let _g = FORKS.write().unwrap_or_else(|p| p.into_inner());
    f()
}

/// Runs `f`, which spawns a process, alongside other spawners but never during a rebuild.
pub fn forking<T>(f: impl FnOnce() -> T) -> T {
    let _g = FORKS.read().unwrap_or_else(|p| p.into_inner());
    f()
}

/// This test binary again, running only its ignored test `entry`: the body of a child
/// process, which acts only when the caller's environment variables tell it what to do.
pub fn rerun_ignored(entry: &str) -> std::process::Command {
    let mut c = std::process::Command::new(std::env::current_exe().expect("current_exe"));
    c.args([
        "--exact",
        entry,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    c
}
