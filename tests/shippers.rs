//! Hand-off to a real log shipper: `rsyslogd` with `imfile` follows `<stem>.log` while the
//! sink rotates more than 100 times, gzips with `compress_after(1)`, and rsyslog's output
//! holds every event exactly once. The configuration is the one `docs/shipping.md` gives.
//!
//! Needs `rsyslogd` (Debian package `rsyslog`), which `.ci/run` installs before running
//! `cargo test --test shippers -- --ignored`.
// Unix only: rsyslogd and the signals that stop it exist only there.
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tracing_filesink::{Compression, FileSink, Rotation};

const STEM: &str = "app";
/// Events logged, one every PACE: about 45 per 8 KiB segment, so ~130 rotations.
const EVENTS: u64 = 6_000;
/// A busy service's rate, not a tight loop: imfile notices a rename through inotify and
/// needs a moment to read the renamed file to its end before `compress_after(1)` lets the
/// next rotation compress (and delete) it: here about 70 ms, a segment every 70 ms.
const PACE: Duration = Duration::from_micros(1_500);

fn rsyslogd() -> PathBuf {
    for p in [
        "/usr/sbin/rsyslogd",
        "/sbin/rsyslogd",
        "/usr/local/sbin/rsyslogd",
    ] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("rsyslogd not found: install the Debian package `rsyslog` (.ci/run does)");
}

/// Kills rsyslogd (SIGTERM, then SIGKILL) when the test ends, whatever happens.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: a plain kill(2) on our own child's pid.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM);
        }
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `i` field of every event line in rsyslog's output, with its count.
fn shipped(out: &Path) -> BTreeMap<u64, u32> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let mut seen = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        let Ok(v) = line.parse::<serde_json::Value>() else {
            continue;
        };
        if let Some(i) = v["fields"]["i"].as_u64() {
            *seen.entry(i).or_insert(0) += 1;
        }
    }
    seen
}

fn wait_for(what: &str, limit: Duration, stderr: &Path, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < end,
            "gave up after {limit:?} waiting for {what}; rsyslogd said:\n{}",
            std::fs::read_to_string(stderr).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "needs rsyslogd (run by .ci/run)"]
fn rsyslog_imfile_ships_every_event_once_through_rotation_and_gzip() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let work = tmp.path().join("work");
    std::fs::create_dir(&logs).unwrap();
    std::fs::create_dir(&work).unwrap();
    let out = tmp.path().join("shipped.log");
    let conf = tmp.path().join("rsyslog.conf");
    let stderr = tmp.path().join("rsyslogd.stderr");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}")
module(load="imfile" mode="inotify")
template(name="raw" type="string" string="%msg%\n")
input(type="imfile" file="{logs}/{STEM}.log" tag="{STEM}" ruleset="ship")
ruleset(name="ship") {{
    action(type="omfile" file="{out}" template="raw")
}}
"#,
            work = work.display(),
            logs = logs.display(),
            out = out.display(),
        ),
    )
    .unwrap();
    // A first line in the active file (the sink adopts the file): once it is shipped,
    // imfile is watching.
    std::fs::write(
        logs.join(format!("{STEM}.log")),
        "{\"fields\":{\"message\":\"probe\"}}\n",
    )
    .unwrap();
    let _daemon = Daemon(
        Command::new(rsyslogd())
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(tmp.path().join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start rsyslogd"),
    );
    wait_for(
        "rsyslog to ship the probe line",
        Duration::from_secs(30),
        &stderr,
        || std::fs::read_to_string(&out).is_ok_and(|t| t.contains("probe")),
    );

    let (layer, guard) = FileSink::builder(&logs, STEM)
        .rotation(Rotation::size(8 << 10))
        .compression(Compression::gzip())
        .compress_after(1)
        .build()
        .unwrap();
    let d = common::dispatch(layer);
    let started = Instant::now();
    tracing::dispatcher::with_default(&d, || {
        let mut next = Instant::now();
        for i in 0..EVENTS {
            tracing::info!(
                i,
                user = "ada",
                path = "/api/v1/items",
                status = 200u64,
                "request served"
            );
            next += PACE;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait); // pacing, not synchronization
            }
        }
    });
    guard.flush().unwrap();
    let stats = guard.stats();
    let logging = started.elapsed();
    guard.shutdown(Duration::from_secs(10)).unwrap();
    assert!(stats.rotations >= 100, "only {} rotations", stats.rotations);
    assert!(stats.segments_compressed > 0, "nothing compressed");

    // Lost events never arrive: wait a bounded time, then report what is missing.
    let end = Instant::now() + Duration::from_secs(60);
    while (shipped(&out).len() as u64) < EVENTS && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = shipped(&out);
    let missing: Vec<u64> = (0..EVENTS).filter(|i| !seen.contains_key(i)).collect();
    let twice: Vec<(&u64, &u32)> = seen.iter().filter(|(_, &n)| n != 1).collect();
    println!(
        "rsyslog: {EVENTS} events logged in {logging:.1?} through {} rotations, {} compressed; \
         {} shipped, {} missing, {} more than once",
        stats.rotations,
        stats.segments_compressed,
        seen.len(),
        missing.len(),
        twice.len()
    );
    assert!(
        missing.is_empty(),
        "{} events never shipped: {missing:?}\nrsyslogd said:\n{}",
        missing.len(),
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    assert!(twice.is_empty(), "events shipped more than once: {twice:?}");
}

/// The promise shippers that read gzip rely on to match a `.gz` with the plain segment they
/// already read (OpenTelemetry's fingerprint over decompressed bytes, Filebeat's fingerprint
/// identity, Vector's checksum): each `.gz` decompresses byte for byte to its plain segment.
/// Runs without rsyslogd.
#[test]
fn each_gz_decompresses_byte_for_byte_to_its_plain_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (layer, guard) = FileSink::builder(dir, STEM)
        .compression(Compression::gzip())
        .compress_after(2)
        .build()
        .unwrap();
    let d = common::dispatch(layer);
    let mut plain: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for k in 0..8u64 {
        tracing::dispatcher::with_default(&d, || {
            for i in 0..200u64 {
                tracing::info!(k, i, pad = "s".repeat(k as usize * 20).as_str(), "event");
            }
        });
        // Answers once the segment it sealed has its final name.
        guard.rotate().unwrap();
        for s in common::segments(dir, STEM).into_iter().filter(|s| !s.gz) {
            if let Ok(bytes) = std::fs::read(dir.join(&s.name)) {
                plain.entry(s.seq).or_insert(bytes);
            }
        }
    }
    guard.wait_idle(Duration::from_secs(60)).unwrap();
    let gz: Vec<_> = common::segments(dir, STEM)
        .into_iter()
        .filter(|s| s.gz)
        .collect();
    assert_eq!(gz.len(), 6, "{gz:?}");
    for s in &gz {
        let was = plain
            .get(&s.seq)
            .unwrap_or_else(|| panic!("segment {} never seen plain", s.seq));
        assert!(
            common::read_maybe_gz(&dir.join(&s.name)) == *was,
            "{} does not decompress to its plain segment",
            s.name
        );
    }
    guard.shutdown(Duration::from_secs(10)).unwrap();
}
