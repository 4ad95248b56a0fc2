//! End-to-end comparison of this crate with the usual `tracing` file pipelines.
//!
//! `cargo bench --bench compare` runs one workload through every variant and prints one
//! markdown table. Workload: 4 threads, each logging `BENCH_EVENTS` (default 500,000) JSON
//! events with 4 fields and no span, lossless, into a file in a fresh temp dir. The clock runs
//! from a start barrier to the moment everything is in the file (the final flush).
//!
//! | key | variant |
//! |---|---|
//! | a | this crate's layer, clock stopped after `guard.flush()` |
//! | b | `fmt::layer().json()` over `tracing_appender::non_blocking` (`lossy(false)`) over a `File`, clock stopped after dropping the `WorkerGuard` |
//! | c | `fmt::layer().json()` over `Mutex<BufWriter<File>>`, clock stopped after its flush |
//! | d | this crate's formatter into a reused buffer, bytes discarded, no queue or file: the formatting floor (`tracing_filesink::__private::format_only_layer()`, a bench-only hook) |
//! | d' | `fmt::layer().json()` into `io::sink`: tracing-subscriber's formatting floor |
//! | e | (a) with `Rotation::size(8 MiB)` and `Compression::gzip()` |
//! | e' | (a) with `Rotation::size(8 MiB)` only: tells rotation's cost from compression's |
//!
//! Each variant runs in a child process of its own (this executable, re-run with
//! `--child <key>`) so that its peak RSS (`VmHWM`) is its own. A child measures, shuts its
//! pipeline down, reads `VmHWM`, then reads back every output file (decompressing `.gz`
//! segments): every line must be a JSON bench event, each thread's ids must appear exactly
//! once and in order. It prints one `RESULT {json}` line. The parent runs every variant
//! `BENCH_RUNS` times (default 3), interleaved, prints medians, and exits non-zero when any
//! check failed.
//!
//! Environment: `BENCH_EVENTS` (events per thread), `BENCH_RUNS`, `BENCH_VARIANTS`
//! (comma-separated keys, e.g. `a,b`; default all).
//!
//! Caller latency is sampled around every single event call into a preallocated, pre-touched
//! `Vec<u32>` of nanoseconds per thread (4 bytes per event, included in every variant's peak
//! RSS alike), and includes one `Instant::now()`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tracing::Dispatch;
use tracing_filesink::{Compression, FileSink, FileSinkGuard, Rotation};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

const THREADS: usize = 4;
const STEM: &str = "bench";

struct Variant {
    key: &'static str,
    label: &'static str,
    /// Whether the variant writes a file whose lines are checked.
    writes_file: bool,
}

const VARIANTS: &[Variant] = &[
    Variant {
        key: "a",
        label: "(a) tracing-filesink",
        writes_file: true,
    },
    Variant {
        key: "b",
        label: "(b) fmt json -> tracing-appender non_blocking (lossless) -> File",
        writes_file: true,
    },
    Variant {
        key: "c",
        label: "(c) fmt json -> Mutex<BufWriter<File>>",
        writes_file: true,
    },
    Variant {
        key: "d",
        label: "(d) tracing-filesink formatter only (floor)",
        writes_file: false,
    },
    Variant {
        key: "d'",
        label: "(d') fmt json -> io::sink (floor)",
        writes_file: false,
    },
    Variant {
        key: "e",
        label: "(e) tracing-filesink, rotate 8 MiB + gzip",
        writes_file: true,
    },
    Variant {
        key: "e'",
        label: "(e') tracing-filesink, rotate 8 MiB, no gzip (diagnostic)",
        writes_file: true,
    },
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let key = args.get(2).cloned().unwrap_or_default();
        return match child(&key, events_per_thread()) {
            Ok(result) => {
                println!("RESULT {result}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("RESULT {}", json!({ "key": key, "error": e }));
                ExitCode::FAILURE
            }
        };
    }
    parent()
}

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

fn events_per_thread() -> usize {
    env_usize("BENCH_EVENTS", 500_000)
}

// ---------------------------------------------------------------------------------------
// Parent: run the children, check, print the table.
// ---------------------------------------------------------------------------------------

/// One child's measurements.
#[derive(Clone)]
struct Sample {
    events_per_sec: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    bytes_per_line: Option<f64>,
    peak_rss_kib: f64,
    lines: Option<u64>,
    notes: String,
}

fn parent() -> ExitCode {
    let n = events_per_thread();
    let runs = env_usize("BENCH_RUNS", 3).max(1);
    let wanted: Option<Vec<String>> = std::env::var("BENCH_VARIANTS")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let variants: Vec<&Variant> = VARIANTS
        .iter()
        .filter(|v| wanted.as_ref().is_none_or(|w| w.iter().any(|k| k == v.key)))
        .collect();
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("compare: cannot find my own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "compare: {THREADS} threads x {n} events, {runs} run(s) of {} variant(s), interleaved",
        variants.len()
    );

    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); variants.len()];
    let mut failures: Vec<String> = Vec::new();
    for run in 1..=runs {
        for (i, v) in variants.iter().enumerate() {
            match run_child(&exe, v, n) {
                Ok(s) => {
                    eprintln!(
                        "  run {run}/{runs} {:<3} {:>7} ev/s  p50 {:>8}  p99.9 {:>8}  {}",
                        v.key,
                        fmt_rate(s.events_per_sec),
                        fmt_ns(s.p50),
                        fmt_ns(s.p999),
                        if v.writes_file { "lines ok" } else { "no file" }
                    );
                    samples[i].push(s);
                }
                Err(e) => {
                    eprintln!("  run {run}/{runs} {:<3} FAILED: {e}", v.key);
                    failures.push(format!("{} run {run}: {e}", v.label));
                }
            }
        }
    }

    let medians: Vec<Option<Sample>> = samples.iter().map(|s| median_sample(s)).collect();
    println!();
    println!(
        "{THREADS} threads x {n} events (4 fields, no span, JSON, lossless); medians of {runs} run(s); {} CPU(s)",
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    println!();
    println!("| variant | events/s | p50 | p99 | p99.9 | bytes/line | peak RSS | lines |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (i, v) in variants.iter().enumerate() {
        match &medians[i] {
            Some(m) => println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                v.label,
                fmt_rate(m.events_per_sec),
                fmt_ns(m.p50),
                fmt_ns(m.p99),
                fmt_ns(m.p999),
                m.bytes_per_line.map_or("n/a".into(), |b| format!("{b:.1}")),
                fmt_mib(m.peak_rss_kib / 1024.0),
                match m.lines {
                    Some(l) => format!("{l} (checked)"),
                    None => "n/a (no file, not checked)".into(),
                },
            ),
            None => println!("| {} | FAILED | | | | | | |", v.label),
        }
    }

    let get = |key: &str| -> Option<&Sample> {
        let i = variants.iter().position(|v| v.key == key)?;
        medians[i].as_ref()
    };
    println!();
    if let Some(a) = get("a") {
        // Issue 2's targets apply to a/b only.
        for (name, target) in [("b", Some(3.0)), ("c", None), ("d", None), ("d'", None)] {
            if let Some(o) = get(name) {
                let t = |ok: bool| match target {
                    Some(_) if ok => " (target >= 3x: met)",
                    Some(_) => " (target >= 3x: MISSED)",
                    None => "",
                };
                let rate = a.events_per_sec / o.events_per_sec;
                let p50 = o.p50 / a.p50;
                println!(
                    "- a/{name}: events/s {rate:.2}x{}; caller latency {name}/a: p50 {p50:.2}x{}, p99 {:.2}x, p99.9 {:.2}x",
                    t(target.is_none_or(|t| rate >= t)),
                    t(target.is_none_or(|t| p50 >= t)),
                    o.p99 / a.p99,
                    o.p999 / a.p999,
                );
            }
        }
        if let Some(e) = get("e") {
            let rate = e.events_per_sec / a.events_per_sec;
            let p999 = e.p999 / a.p999;
            println!(
                "- e vs a: events/s e/a {rate:.2} (target >= 0.90: {}); caller p99.9 e/a {p999:.2}x (target <= 2x: {}); p50 e/a {:.2}x, p99 e/a {:.2}x",
                if rate >= 0.90 { "met" } else { "MISSED" },
                if p999 <= 2.0 { "met" } else { "MISSED" },
                e.p50 / a.p50,
                e.p99 / a.p99,
            );
        }
        if let Some(e) = get("e'") {
            println!(
                "- e' vs a (rotation and its fsyncs without gzip): events/s e'/a {:.2}; caller p99.9 e'/a {:.2}x",
                e.events_per_sec / a.events_per_sec,
                e.p999 / a.p999,
            );
        }
    }
    println!();
    for (i, v) in variants.iter().enumerate() {
        if samples[i].is_empty() {
            continue;
        }
        let rates: Vec<String> = samples[i]
            .iter()
            .map(|s| fmt_rate(s.events_per_sec))
            .collect();
        let notes = samples[i].last().map_or("", |s| s.notes.as_str());
        println!(
            "- {} runs: {} events/s{}{}",
            v.key,
            rates.join(", "),
            if notes.is_empty() { "" } else { "; " },
            notes
        );
    }

    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!();
        println!("FAILED checks:");
        for f in &failures {
            println!("- {f}");
        }
        ExitCode::FAILURE
    }
}

fn run_child(exe: &Path, v: &Variant, n: usize) -> Result<Sample, String> {
    let out = Command::new(exe)
        .arg("--child")
        .arg(v.key)
        .env("BENCH_EVENTS", n.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run the child: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .ok_or_else(|| format!("no RESULT line from the child ({})", out.status))?;
    let r: Value = serde_json::from_str(line).map_err(|e| format!("bad RESULT line: {e}"))?;
    if let Some(e) = r["error"].as_str() {
        return Err(e.to_string());
    }
    if !out.status.success() {
        return Err(format!("child exited with {}", out.status));
    }
    let f = |k: &str| r[k].as_f64().ok_or_else(|| format!("RESULT lacks {k}"));
    let lines = r["lines"].as_u64();
    if v.writes_file {
        let expected = (THREADS * n) as u64;
        match lines {
            Some(l) if l == expected => {}
            other => return Err(format!("{other:?} lines in the files, expected {expected}")),
        }
    }
    Ok(Sample {
        events_per_sec: (THREADS * n) as f64 / f("wall_secs")?,
        p50: f("p50_ns")?,
        p99: f("p99_ns")?,
        p999: f("p999_ns")?,
        bytes_per_line: match (r["bytes"].as_f64(), lines) {
            (Some(b), Some(l)) if l > 0 => Some(b / l as f64),
            _ => None,
        },
        peak_rss_kib: f("vm_hwm_kib")?,
        lines,
        notes: r["notes"].as_str().unwrap_or_default().to_string(),
    })
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let m = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[m]
    } else {
        (xs[m - 1] + xs[m]) / 2.0
    }
}

/// The median of every metric on its own.
fn median_sample(s: &[Sample]) -> Option<Sample> {
    let last = s.last()?;
    let m = |f: fn(&Sample) -> f64| median(s.iter().map(f).collect());
    Some(Sample {
        events_per_sec: m(|s| s.events_per_sec),
        p50: m(|s| s.p50),
        p99: m(|s| s.p99),
        p999: m(|s| s.p999),
        bytes_per_line: last
            .bytes_per_line
            .map(|_| m(|s| s.bytes_per_line.unwrap_or(0.0))),
        peak_rss_kib: m(|s| s.peak_rss_kib),
        lines: last.lines,
        notes: last.notes.clone(),
    })
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else {
        format!("{:.0}k", r / 1e3)
    }
}

fn fmt_mib(mib: f64) -> String {
    format!("{mib:.1} MiB")
}

fn fmt_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

// ---------------------------------------------------------------------------------------
// Child: one variant, measured, shut down, checked.
// ---------------------------------------------------------------------------------------

/// How a variant's pipeline is brought to "everything is in the file" (inside the clock),
/// then shut down (outside it).
enum Finish {
    Sink(FileSinkGuard),
    Appender {
        guard: tracing_appender::non_blocking::WorkerGuard,
        lines: Arc<LineCount>,
    },
    Buffered(SharedBufWriter),
    Nothing,
}

fn child(key: &str, n: usize) -> Result<Value, String> {
    let tmp = tempfile::Builder::new()
        .prefix("filesink-bench-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let dir = tmp.path();
    let active = dir.join(format!("{STEM}.log"));
    let expected = (THREADS * n) as u64;
    let (dispatch, finish) = match key {
        "a" => sink(FileSink::builder(dir, STEM))?,
        "e" => sink(
            FileSink::builder(dir, STEM)
                .rotation(Rotation::size(8 << 20))
                .compression(Compression::gzip()),
        )?,
        "e'" => sink(FileSink::builder(dir, STEM).rotation(Rotation::size(8 << 20)))?,
        "b" => {
            let lines = Arc::new(LineCount::new(expected));
            let file = CountingFile {
                file: File::create(&active).map_err(|e| format!("{}: {e}", active.display()))?,
                lines: lines.clone(),
            };
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .finish(file);
            let layer = tracing_subscriber::fmt::layer().json().with_writer(writer);
            (
                Dispatch::new(tracing_subscriber::registry().with(layer)),
                Finish::Appender { guard, lines },
            )
        }
        "c" => {
            let file = File::create(&active).map_err(|e| format!("{}: {e}", active.display()))?;
            let shared = SharedBufWriter(Arc::new(Mutex::new(BufWriter::new(file))));
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .with_writer(shared.clone());
            (
                Dispatch::new(tracing_subscriber::registry().with(layer)),
                Finish::Buffered(shared),
            )
        }
        "d" => (
            Dispatch::new(
                tracing_subscriber::registry()
                    .with(tracing_filesink::__private::format_only_layer()),
            ),
            Finish::Nothing,
        ),
        "d'" => {
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .with_writer(io::sink);
            (
                Dispatch::new(tracing_subscriber::registry().with(layer)),
                Finish::Nothing,
            )
        }
        other => return Err(format!("unknown variant {other:?}")),
    };
    tracing::dispatcher::set_global_default(dispatch).map_err(|e| e.to_string())?;

    // ---- measured: start barrier .. everything in the file ----
    let mut early_drop = false;
    let (wall, per_thread) = workload(n, || match &finish {
        Finish::Sink(guard) => guard.flush().map_err(|e| format!("flush: {e}")),
        Finish::Buffered(w) => w.lock().flush().map_err(|e| format!("flush: {e}")),
        Finish::Appender { .. } | Finish::Nothing => Ok(()),
    })
    .map_err(|e| e.to_string())?;
    let (wall, finish) = match finish {
        Finish::Appender { guard, lines } => {
            // The clock already ran through the workload; dropping the guard is tracing-
            // appender's flush (it waits up to 100 ms + 1 s). If it gives up early, keep the
            // clock running until the worker has really written everything.
            let start = Instant::now();
            drop(guard);
            early_drop = lines.get() < expected;
            if !lines.wait(Duration::from_secs(60)) {
                return Err(format!(
                    "tracing-appender wrote {} of {expected} lines within 60 s of the guard drop",
                    lines.get()
                ));
            }
            (wall + start.elapsed(), Finish::Nothing)
        }
        f => (wall, f),
    };

    // ---- not measured: shut down, peak RSS, read everything back ----
    let mut notes = Vec::new();
    if early_drop {
        notes.push("WorkerGuard drop returned before the worker had written everything".into());
    }
    if let Finish::Sink(guard) = &finish {
        guard
            .shutdown(Duration::from_secs(60))
            .map_err(|e| format!("shutdown: {e}"))?;
        let s = guard.stats();
        if s.events_dropped != 0 || s.internal_records != 0 || s.write_errors != 0 {
            notes.push(format!(
                "stats: {} dropped, {} internal records, {} write errors",
                s.events_dropped, s.internal_records, s.write_errors
            ));
        }
        notes.push(format!("queue high water {} events", s.queue_high_water));
        if s.rotations > 0 {
            notes.push(format!(
                "{} rotations, {} segments compressed by shutdown (compression backlog {})",
                s.rotations, s.segments_compressed, s.compression_backlog
            ));
        }
    }
    let vm_hwm_kib = vm_hwm_kib()?;
    drop(finish);

    let mut result = json!({
        "key": key,
        "wall_secs": wall.as_secs_f64(),
        "vm_hwm_kib": vm_hwm_kib,
    });
    if VARIANTS.iter().any(|v| v.key == key && v.writes_file) {
        let check = check_files(dir, n)?;
        result["lines"] = json!(check.lines);
        result["bytes"] = json!(check.bytes);
        if check.gz_files > 0 || check.plain_segments > 0 {
            notes.push(format!(
                "files: {} .gz + {} plain segments + active, {:.1} MiB on disk for {:.1} MiB of lines",
                check.gz_files,
                check.plain_segments,
                check.disk_bytes as f64 / (1 << 20) as f64,
                check.bytes as f64 / (1 << 20) as f64
            ));
        }
    }

    let mut all: Vec<u32> = per_thread.into_iter().flatten().collect();
    all.sort_unstable();
    let pct = |p: f64| {
        let rank = ((p * all.len() as f64).ceil() as usize).clamp(1, all.len());
        all[rank - 1]
    };
    result["p50_ns"] = json!(pct(0.50));
    result["p99_ns"] = json!(pct(0.99));
    result["p999_ns"] = json!(pct(0.999));
    result["notes"] = json!(notes.join("; "));
    drop(tmp);
    Ok(result)
}

fn sink(builder: tracing_filesink::Builder) -> Result<(Dispatch, Finish), String> {
    let (layer, guard) = builder.build().map_err(|e| format!("build: {e}"))?;
    Ok((
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        Finish::Sink(guard),
    ))
}

/// Runs the workload: `THREADS` threads released by one barrier, each logging `n` events and
/// timing every call. Returns the wall time from the barrier to the end of `finish`.
fn workload(
    n: usize,
    finish: impl FnOnce() -> Result<(), String>,
) -> Result<(Duration, Vec<Vec<u32>>), String> {
    let barrier = Barrier::new(THREADS + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    // Written now, so no page fault lands inside a measured call.
                    let mut samples = vec![u32::MAX; n];
                    barrier.wait();
                    for (i, slot) in samples.iter_mut().enumerate() {
                        let t0 = Instant::now();
                        tracing::info!(
                            target: "bench",
                            id = i as u64,
                            thread = t as u64,
                            user = "alice",
                            latency_ms = 3.25_f64,
                            "request handled"
                        );
                        *slot = t0.elapsed().as_nanos().min(u32::MAX as u128) as u32;
                    }
                    samples
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let samples: Vec<Vec<u32>> = handles
            .into_iter()
            .map(|h| h.join().expect("a logging thread panicked"))
            .collect();
        finish()?;
        Ok((start.elapsed(), samples))
    })
}

fn vm_hwm_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmHWM in /proc/self/status".to_string())
}

/// (c)'s writer: `fmt::layer()` formats outside the lock, then writes one line under it.
#[derive(Clone)]
struct SharedBufWriter(Arc<Mutex<BufWriter<File>>>);

impl SharedBufWriter {
    fn lock(&self) -> MutexGuard<'_, BufWriter<File>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct LockedWriter<'a>(MutexGuard<'a, BufWriter<File>>);

impl Write for LockedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<'a> MakeWriter<'a> for SharedBufWriter {
    type Writer = LockedWriter<'a>;
    fn make_writer(&'a self) -> LockedWriter<'a> {
        LockedWriter(self.lock())
    }
}

/// Lines written by (b)'s worker, so the parent's check cannot race a `WorkerGuard` drop
/// that gave up early. One atomic add per write; the condvar is touched only at the end.
struct LineCount {
    written: AtomicU64,
    expected: u64,
    lock: Mutex<()>,
    done: Condvar,
}

impl LineCount {
    fn new(expected: u64) -> LineCount {
        LineCount {
            written: AtomicU64::new(0),
            expected,
            lock: Mutex::new(()),
            done: Condvar::new(),
        }
    }

    fn get(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    fn add(&self, lines: u64) {
        let total = self.written.fetch_add(lines, Ordering::AcqRel) + lines;
        if total >= self.expected && total - lines < self.expected {
            let _g = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.done.notify_all();
        }
    }

    /// True once every expected line was written, false after `timeout`.
    fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        while self.get() < self.expected {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = self
                .done
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

struct CountingFile {
    file: File,
    lines: Arc<LineCount>,
}

impl Write for CountingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        let lines = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        if lines > 0 {
            self.lines.add(lines);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

struct FileCheck {
    lines: u64,
    /// Bytes of lines (decompressed).
    bytes: u64,
    disk_bytes: u64,
    gz_files: usize,
    plain_segments: usize,
}

/// Reads back every file of the stem, in write order (finished segments by sequence number,
/// then the active file): every line a JSON bench event, each thread's ids 0..n exactly once
/// and in order.
fn check_files(dir: &Path, n: usize) -> Result<FileCheck, String> {
    let mut segments: Vec<(String, PathBuf)> = Vec::new();
    let mut active = None;
    for entry in std::fs::read_dir(dir).map_err(|e| format!("read_dir: {e}"))? {
        let entry = entry.map_err(|e| format!("read_dir: {e}"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == format!("{STEM}.log") {
            active = Some(entry.path());
        } else if name.starts_with(&format!("{STEM}.")) && !name.ends_with(".lock") {
            segments.push((name, entry.path()));
        }
    }
    segments.sort();
    // A segment may exist as plain and .gz at once if shutdown fell between the rename of
    // the .gz and the removal of the plain file: both hold the same lines, read the .gz.
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for (name, path) in segments {
        if !name.ends_with(".gz") && dir.join(format!("{name}.gz")).exists() {
            continue;
        }
        files.push((name, path));
    }
    let mut check = FileCheck {
        lines: 0,
        bytes: 0,
        disk_bytes: 0,
        gz_files: files.iter().filter(|(n, _)| n.ends_with(".gz")).count(),
        plain_segments: files.iter().filter(|(n, _)| !n.ends_with(".gz")).count(),
    };
    files.extend(active.map(|p| (format!("{STEM}.log"), p)));
    if files.is_empty() {
        return Err("no output file".into());
    }
    let mut next = [0u64; THREADS];
    let mut line = Vec::with_capacity(512);
    for (name, path) in &files {
        let file = File::open(path).map_err(|e| format!("{name}: {e}"))?;
        check.disk_bytes += file.metadata().map_err(|e| format!("{name}: {e}"))?.len();
        let reader: Box<dyn Read> = if name.ends_with(".gz") {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let mut reader = BufReader::with_capacity(1 << 16, reader);
        let mut lineno = 0u64;
        loop {
            line.clear();
            let got = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| format!("{name}: {e}"))?;
            if got == 0 {
                break;
            }
            lineno += 1;
            if line.last() != Some(&b'\n') {
                return Err(format!("{name}:{lineno}: last line has no newline"));
            }
            check.lines += 1;
            check.bytes += got as u64;
            let v: Value = serde_json::from_slice(&line)
                .map_err(|e| format!("{name}:{lineno}: not JSON ({e})"))?;
            let (t, id) = match (
                v["target"].as_str(),
                v["fields"]["thread"].as_u64(),
                v["fields"]["id"].as_u64(),
            ) {
                (Some("bench"), Some(t), Some(id)) if (t as usize) < THREADS => (t as usize, id),
                _ => return Err(format!("{name}:{lineno}: not a bench event: {v}")),
            };
            if id != next[t] {
                return Err(format!(
                    "{name}:{lineno}: thread {t} id {id}, expected {} (lost, duplicated or reordered)",
                    next[t]
                ));
            }
            next[t] += 1;
        }
    }
    if let Some(t) = next.iter().position(|&c| c != n as u64) {
        return Err(format!(
            "thread {t}: {} of {n} events in the files",
            next[t]
        ));
    }
    Ok(check)
}
