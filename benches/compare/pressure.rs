//! **Pressure**: a DEBUG storm against a slow disk. 4 threads each log
//! `BENCH_STORM_EVENTS` (default 100,000) events as fast as they can, DEBUG but for an
//! ERROR every 1,000, onto a disk that takes `BENCH_SLOW_MBPS` (default 20) MB/s: the
//! bench's own throttle (`tracing_filesink::__private::Throttle`), the same pacing for every
//! variant whatever the size of its writes. Measured around every call: the ERROR calls'
//! latency (p50, p99, max) and the DEBUG calls' p99; the storm's wall time (until every
//! thread has returned). Then everything accepted is written (`flush()`; tracing-appender:
//! its worker has written every line it did not drop) and the file is read back: every line
//! parsed, each thread's ids rising, ERRORs and DEBUG counted, and the in-band drop reports
//! of this crate summed per level. Checked: for this crate, written + reported = logged at
//! every level; for tracing-appender, written + its dropped-lines counter = logged.
//!
//! | key | variant |
//! |---|---|
//! | la | this crate, defaults (`Overflow::Block`, no shedding): lossless, callers wait for the disk |
//! | ld | this crate, `Overflow::Drop`, no shedding: sheds whatever comes, level-blind |
//! | ls | this crate, `Overflow::Block` with `Shedding::below(WARN)` (above 80% full, INFO and below are shed) |
//! | lb | `fmt::layer().json()` over `tracing_appender::non_blocking` in its default lossy mode |

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tracing::Dispatch;
use tracing_filesink::__private::{slow_disk, Throttle};
use tracing_filesink::{FileSink, Overflow, Shedding};
use tracing_subscriber::prelude::*;

use super::{env_num, env_usize, Histogram, Variant, STEM, THREADS};

/// The slow disk under tracing-appender: a `File` whose writes are paced.
struct SlowFile {
    file: File,
    throttle: Arc<Throttle>,
    lines: Arc<std::sync::atomic::AtomicU64>,
}

impl Write for SlowFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.throttle.pace(n);
        let lines = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        self.lines
            .fetch_add(lines, std::sync::atomic::Ordering::Release);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

enum Under {
    Sink(tracing_filesink::FileSinkGuard),
    Appender {
        guard: tracing_appender::non_blocking::WorkerGuard,
        dropped: tracing_appender::non_blocking::ErrorCounter,
        lines: Arc<std::sync::atomic::AtomicU64>,
    },
}

fn pipeline(key: &str, dir: &Path, throttle: Arc<Throttle>) -> Result<(Dispatch, Under), String> {
    let builder = || slow_disk(FileSink::builder(dir, STEM), throttle.clone());
    let builder = match key {
        "la" => builder(),
        "ld" => builder().overflow(Overflow::Drop),
        "ls" => builder().shedding(Shedding::below(tracing::Level::WARN)),
        "lb" => {
            let lines = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let active = dir.join(format!("{STEM}.log"));
            let file = SlowFile {
                file: File::create(&active).map_err(|e| format!("{}: {e}", active.display()))?,
                throttle,
                lines: lines.clone(),
            };
            let (writer, guard) = tracing_appender::non_blocking(file);
            let dropped = writer.error_counter();
            let layer = tracing_subscriber::fmt::layer().json().with_writer(writer);
            return Ok((
                Dispatch::new(tracing_subscriber::registry().with(layer)),
                Under::Appender {
                    guard,
                    dropped,
                    lines,
                },
            ));
        }
        other => return Err(format!("no pressure pipeline for {other:?}")),
    };
    let (layer, guard) = builder.build().map_err(|e| format!("build: {e}"))?;
    Ok((
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        Under::Sink(guard),
    ))
}

const ERROR_EVERY: u64 = 1000;

pub(super) fn child(v: &Variant, dir: &Path) -> Result<Value, String> {
    let n = env_usize("BENCH_STORM_EVENTS", 100_000) as u64;
    let mbps = env_num("BENCH_SLOW_MBPS", 20.0);
    let throttle = Arc::new(Throttle::new((mbps * 1e6) as u64));
    let (dispatch, under) = pipeline(v.key, dir, throttle)?;
    if let Under::Sink(guard) = &under {
        guard.flush().map_err(|e| format!("flush: {e}"))?;
    }
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let d = dispatch.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let (mut errors, mut debug) = (Histogram::new(), Histogram::new());
                tracing::dispatcher::with_default(&d, || {
                    barrier.wait();
                    for i in 0..n {
                        let t0 = Instant::now();
                        if i % ERROR_EVERY == 0 {
                            tracing::error!(target: "bench", id = i, thread = t as u64,
                                user = "alice", latency_ms = 3.25_f64, "request failed");
                            errors.record(t0.elapsed());
                        } else {
                            tracing::debug!(target: "bench", id = i, thread = t as u64,
                                user = "alice", latency_ms = 3.25_f64, "request handled");
                            debug.record(t0.elapsed());
                        }
                    }
                });
                (errors, debug)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let (mut errors, mut debug) = (Histogram::new(), Histogram::new());
    for h in handles {
        let (e, d) = h.join().map_err(|_| "a logging thread panicked")?;
        errors.merge(&e);
        debug.merge(&d);
    }
    let storm_secs = start.elapsed().as_secs_f64();
    let logged_errors = THREADS as u64 * n.div_ceil(ERROR_EVERY);
    let logged_debug = THREADS as u64 * n - logged_errors;

    // Everything accepted reaches the file, then the pipeline stops.
    let dropped_by_appender = match under {
        Under::Sink(guard) => {
            guard.flush().map_err(|e| format!("flush: {e}"))?;
            guard
                .shutdown(Duration::from_secs(60))
                .map_err(|e| format!("shutdown: {e}"))?;
            None
        }
        Under::Appender {
            guard,
            dropped,
            lines,
        } => {
            let accepted = THREADS as u64 * n - dropped.dropped_lines() as u64;
            let deadline = Instant::now() + Duration::from_secs(120);
            while lines.load(std::sync::atomic::Ordering::Acquire) < accepted {
                if Instant::now() > deadline {
                    return Err("tracing-appender did not write what it accepted".into());
                }
                std::thread::sleep(Duration::from_millis(5)); // polling, outside the clock
            }
            drop(guard);
            Some(dropped.dropped_lines() as u64)
        }
    };
    drop(dispatch);

    let c = read_back(dir)?;
    match dropped_by_appender {
        None => {
            if c.errors + c.reported_errors != logged_errors
                || c.debug + c.reported_debug != logged_debug
            {
                return Err(format!(
                    "counts do not add up: ERROR {} written + {} reported of {logged_errors}, \
                     DEBUG {} written + {} reported of {logged_debug}",
                    c.errors, c.reported_errors, c.debug, c.reported_debug
                ));
            }
        }
        Some(dropped) => {
            if c.errors + c.debug + dropped != THREADS as u64 * n {
                return Err(format!(
                    "counts do not add up: {} ERROR + {} DEBUG written + {dropped} dropped of {}",
                    c.errors,
                    c.debug,
                    THREADS as u64 * n
                ));
            }
        }
    }
    Ok(json!({
        "key": v.key,
        "error_p50_ns": errors.percentile(0.5),
        "error_p99_ns": errors.percentile(0.99),
        "error_max_ns": errors.percentile(1.0),
        "debug_p99_ns": debug.percentile(0.99),
        "storm_secs": storm_secs,
        "errors_lost": (logged_errors - c.errors) as f64,
        "errors_logged": logged_errors,
        "debug_written_pct": 100.0 * c.debug as f64 / logged_debug as f64,
        "lines": c.lines,
        "expected_lines": c.lines,
        "notes": format!(
            "ERROR {} of {logged_errors} written, DEBUG {} of {logged_debug}",
            c.errors, c.debug
        ),
    }))
}

#[derive(Default)]
struct Counted {
    lines: u64,
    errors: u64,
    debug: u64,
    reported_errors: u64,
    reported_debug: u64,
}

/// Reads the file back: every line JSON, each thread's ids rising, levels counted, and the
/// sink's own reports summed per level.
fn read_back(dir: &Path) -> Result<Counted, String> {
    let path = dir.join(format!("{STEM}.log"));
    let file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut c = Counted::default();
    let mut last = [None::<u64>; THREADS];
    for (no, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", no + 1))?;
        let v: Value = serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", no + 1))?;
        c.lines += 1;
        if v["target"] == "tracing_filesink" {
            c.reported_errors += v["fields"]["error"].as_u64().unwrap_or(0);
            c.reported_debug += v["fields"]["debug"].as_u64().unwrap_or(0);
            continue;
        }
        let t = v["fields"]["thread"].as_u64().ok_or("no thread")? as usize;
        let id = v["fields"]["id"].as_u64().ok_or("no id")?;
        if t >= THREADS || last[t].is_some_and(|l| l >= id) {
            return Err(format!("line {}: thread {t} id {id} out of order", no + 1));
        }
        last[t] = Some(id);
        match v["level"].as_str() {
            Some("ERROR") if id % ERROR_EVERY == 0 => c.errors += 1,
            Some("DEBUG") if id % ERROR_EVERY != 0 => c.debug += 1,
            other => return Err(format!("line {}: level {other:?} for id {id}", no + 1)),
        }
    }
    Ok(c)
}
