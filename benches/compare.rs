//! End-to-end comparison of this crate with the usual Rust file-logging pipelines.
//!
//! `cargo bench --bench compare` runs four workloads through their variants and prints one
//! markdown table per workload, then writes `target/compare.svg`.
//!
//! Every event carries the same content: the message `request handled` and the fields
//! `id` (u64, the event's number within its thread), `thread` (u64), `user` (`"alice"`) and
//! `latency_ms` (3.25). `tracing` variants log it as JSON with `fields`; the two non-`tracing`
//! loggers (spdlog-rs, ftlog) have no structured JSON output, so they log the same values as
//! text (`request handled id=.. thread=.. user=alice latency_ms=3.25`) in their default line
//! layout.
//!
//! Workloads and variants (keys for `BENCH_VARIANTS`):
//!
//! **Burst**: 4 threads, each logging `BENCH_EVENTS` (default 500,000) events as fast as it
//! can, lossless; the clock runs from a start barrier until everything is in the file.
//!
//! | key | variant |
//! |---|---|
//! | a | this crate's layer, defaults; clock stopped after `guard.flush()` |
//! | b | `fmt::layer().json()` over `tracing_appender::non_blocking` (`lossy(false)`) over a `File`; clock stopped when its worker has written every line |
//! | c | `fmt::layer().json()` over `Mutex<BufWriter<File>>`; clock stopped after its flush |
//! | d | this crate's formatter into a reused buffer, bytes discarded: the formatting floor (`tracing_filesink::__private::format_only_layer()`, a bench-only hook) |
//! | d' | `fmt::layer().json()` into `io::sink`: tracing-subscriber's formatting floor |
//! | g | (a) with `Rotation::size(8 MiB)` and `Compression::gzip()`; clock stopped after `guard.wait_idle()`, i.e. when every rotated segment is compressed (checked: backlog 0, segments compressed = rotations); `wait_idle` also fsyncs the active file first, which (a) does not pay |
//! | e | (a) with `Rotation::size(8 MiB)` and `Compression::gzip()`, clock stopped after `guard.flush()`: what the application pays while compression gets only the CPU the callers leave idle; most segments are still plain then (the notes say how many) |
//! | e' | (a) with `Rotation::size(8 MiB)` only: tells rotation's cost from compression's |
//! | m | (a) with `queue_bytes(4 MiB)`: peak memory under the burst against a small byte bound |
//! | o | as (d), with every record option on: `flatten_event`, `with_file`, `with_line_number`, `with_thread_ids`, `with_thread_names`, the ECS key names and two static fields |
//! | o' | as (d'), with fmt's same options (fmt has no renaming or static fields) |
//! | oa | (a) with (o)'s options |
//! | ob | `fmt::layer().json()` with (o')'s options over this crate's `build_writer()`: the fmt path into the same queue and files; clock stopped after `guard.flush()` |
//! | s | spdlog-rs (not `tracing`): `AsyncPoolSink` (own one-thread pool, default capacity, `OverflowPolicy::Block`) over its `FileSink`; clock stopped when the pool has written everything and exited |
//! | f | ftlog (not `tracing`, a `log` logger): `bounded(100_000, true)` (blocking when full), `FileAppender`, UTC; clock stopped after `log::logger().flush()` |
//!
//! **Sustained**: 4 threads paced at half of (a)'s events/s measured earlier in the same run
//! (`BENCH_PACED_RATE` events/s instead when it is set; 1,000,000 when it is not and (a) does
//! not run), for `BENCH_SUSTAIN_SECS` (default 20) seconds. Event `i` of each thread is due
//! at `start + i × interval`. A thread logs each event at once unless it is due
//! `BENCH_PACE_QUANTUM_US` (default 1000) or more ahead, and then sleeps until it is due: it
//! never runs more than 1 ms ahead of its schedule, and sleeps about once a millisecond.
//! (With `BENCH_PACE_QUANTUM_US=0` a thread sleeps whenever it is ahead at all, as the bench
//! did before: about 6,000 sleeps a second per thread at 500,000 events/s, each shorter than
//! the kernel's timer slack. Those sleeps took about 0.3 of the machine's 2 cores, and the
//! first event after each wake-up ran on cold caches, which made most of the rows' p99.9.)
//!
//! | key | variant |
//! |---|---|
//! | p | this crate, defaults (no rotation): the reference caller latency at that rate |
//! | q | this crate, `Rotation::size(8 MiB)` + `Compression::gzip()`: compression backlog at the end of the window, caller p99.9 against (p) |
//! | r | (q) at a quarter of (a)'s rate (half of (p)'s and (q)'s): the backlog at a pace the compressor can follow |
//!
//! **Sparse**: one thread, one event per millisecond, `BENCH_SPARSE_EVENTS` (default 5,000).
//!
//! | key | variant |
//! |---|---|
//! | sa | this crate, defaults |
//! | sd | this crate's formatter alone (as (d)), measured the same way: the floor |
//! | sb | tracing-appender as (b) |
//! | sn | no layer installed (`registry()` alone), measured the same way: what the measurement itself costs on cold caches (two clock reads, the call, `tracing`'s dispatch) |
//!
//! **Quiet** (`qa`, `qb`, `qn`, and `qa100`, `qb100`, `qn100`), **Order** (`ra`, `rb`,
//! `rpa`, `rpb`, `ta`, `tb`) and **Pressure** (`la`, `ld`, `ls`, `lb`: a DEBUG storm against a
//! slow disk, ERROR latency and loss): see `compare/quiet.rs`, `compare/order.rs` and
//! `compare/pressure.rs`.
//!
//! **Filtered out**: one thread, `BENCH_FILTER_CALLS` (default 20,000,000) `debug!` calls, ns
//! per call from the loop's total time (no per-call clock).
//!
//! | key | variant |
//! |---|---|
//! | za | this crate's layer behind a per-layer `LevelFilter::INFO`, which rejects them |
//! | zn | no layer installed (`tracing_subscriber::registry()` alone) |
//! | zb | (za) beside a layer that takes every level, so `debug!` passes the global level check and the per-layer filter itself rejects it |
//! | zc | that other layer alone |
//!
//! Each variant runs in a child process of its own (this executable, re-run with
//! `--child <key>`), so its memory figures are its own: `VmRSS` (and `RssAnon`, the part not
//! backed by a file) just before the pipeline is built, the same once it is built and has
//! logged nothing (after a flush where the API has one, and 100 ms for its threads to
//! start), and `VmHWM` at the end. A child measures, shuts
//! its pipeline down, then reads back every output file (decompressing `.gz` segments):
//! every line must be a bench event and each thread's ids must appear exactly once and in
//! order. Burst and sparse `tracing` lines are parsed as JSON (target `bench`); sustained and
//! non-`tracing` lines are scanned for their `id` and `thread` values only. It prints one
//! `RESULT {json}` line. The parent runs every variant `BENCH_RUNS` times (default 3; the
//! published table uses 5), interleaved, prints medians, and exits non-zero when any check
//! failed.
//!
//! Caller latency is measured around every single call (`Instant::now()` before and after,
//! so it includes one clock read) into a per-thread log-linear histogram (1.6% resolution,
//! 30 KiB per thread, allocated before the start barrier).
//!
//! Environment: `BENCH_RUNS`, `BENCH_VARIANTS` (comma-separated keys, e.g. `a,b,sa`; default
//! all), `BENCH_EVENTS`, `BENCH_PACED_RATE`, `BENCH_SUSTAIN_SECS`, `BENCH_PACE_QUANTUM_US`,
//! `BENCH_SPARSE_EVENTS`,
//! `BENCH_FILTER_CALLS`, `BENCH_STORM_EVENTS`, `BENCH_SLOW_MBPS`, `BENCH_DIR` (where the children's temp dirs go; default the system
//! temp dir: the sustained rows write several GB there).

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
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

#[path = "compare/order.rs"]
mod order;
#[path = "compare/pressure.rs"]
mod pressure;
#[path = "compare/quiet.rs"]
mod quiet;

const THREADS: usize = 4;
const STEM: &str = "bench";
const SVG_PATH: &str = "target/compare.svg";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Workload {
    Burst,
    Sustained,
    Sparse,
    Filtered,
    /// One thread, one event every 10 ms (or 100 ms for keys ending in `100`).
    Quiet,
    /// Events ordered by happens-before across threads or tasks; inversions counted.
    Order,
    /// A DEBUG storm against a slow disk: ERROR latency and loss.
    Pressure,
}

impl Workload {
    fn threads(self) -> usize {
        match self {
            Workload::Burst | Workload::Sustained | Workload::Order | Workload::Pressure => THREADS,
            Workload::Sparse | Workload::Filtered | Workload::Quiet => 1,
        }
    }
}

/// How a variant's output is read back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Every line parsed as JSON: target `bench`, `fields.thread`, `fields.id`.
    Json,
    /// Every line scanned for its `id` and `thread` values (JSON or `key=value` text).
    Scan,
    /// Read back by the order workload itself: every event once, inversions counted.
    Order,
    /// Read back by the pressure workload itself: what is written plus what is reported (or
    /// counted) as dropped adds up to what was logged.
    Counted,
    /// No file: nothing to count.
    None,
}

struct Variant {
    key: &'static str,
    label: &'static str,
    workload: Workload,
    check: Check,
}

const fn v(key: &'static str, label: &'static str, workload: Workload, check: Check) -> Variant {
    Variant {
        key,
        label,
        workload,
        check,
    }
}

const VARIANTS: &[Variant] = &[
    v("a", "(a) tracing-filesink", Workload::Burst, Check::Json),
    v(
        "b",
        "(b) fmt json -> tracing-appender non_blocking (lossless) -> File",
        Workload::Burst,
        Check::Json,
    ),
    v(
        "c",
        "(c) fmt json -> Mutex<BufWriter<File>>",
        Workload::Burst,
        Check::Json,
    ),
    v(
        "d",
        "(d) tracing-filesink formatter only (floor)",
        Workload::Burst,
        Check::None,
    ),
    v(
        "d'",
        "(d') fmt json -> io::sink (floor)",
        Workload::Burst,
        Check::None,
    ),
    v(
        "g",
        "(g) tracing-filesink, rotate 8 MiB + gzip, clock stops when every segment is compressed",
        Workload::Burst,
        Check::Json,
    ),
    v(
        "e",
        "(e) tracing-filesink, rotate 8 MiB + gzip, clock stops at flush (gzip mostly still to do, not measured)",
        Workload::Burst,
        Check::Json,
    ),
    v(
        "e'",
        "(e') tracing-filesink, rotate 8 MiB, no gzip (diagnostic)",
        Workload::Burst,
        Check::Json,
    ),
    v(
        "m",
        "(m) tracing-filesink, queue_bytes 4 MiB",
        Workload::Burst,
        Check::Json,
    ),
    v(
        "o",
        "(o) tracing-filesink formatter only, every record option on (floor)",
        Workload::Burst,
        Check::None,
    ),
    v(
        "o'",
        "(o') fmt json, same fmt options -> io::sink (floor)",
        Workload::Burst,
        Check::None,
    ),
    v(
        "oa",
        "(oa) tracing-filesink, every record option on",
        Workload::Burst,
        Check::Scan,
    ),
    v(
        "ob",
        "(ob) fmt json, same fmt options -> tracing-filesink build_writer()",
        Workload::Burst,
        Check::Scan,
    ),
    v(
        "s",
        "(s) spdlog-rs AsyncPoolSink (Block) -> FileSink [not tracing; text line]",
        Workload::Burst,
        Check::Scan,
    ),
    v(
        "f",
        "(f) ftlog bounded blocking -> FileAppender [not tracing, log crate; text line]",
        Workload::Burst,
        Check::Scan,
    ),
    v(
        "p",
        "(p) tracing-filesink, no rotation",
        Workload::Sustained,
        Check::Scan,
    ),
    v(
        "q",
        "(q) tracing-filesink, rotate 8 MiB + gzip",
        Workload::Sustained,
        Check::Scan,
    ),
    v(
        "r",
        "(r) (q) at a quarter of (a)'s rate",
        Workload::Sustained,
        Check::Scan,
    ),
    v("sa", "(sa) tracing-filesink", Workload::Sparse, Check::Json),
    v(
        "sd",
        "(sd) tracing-filesink formatter only (floor)",
        Workload::Sparse,
        Check::None,
    ),
    v(
        "sb",
        "(sb) fmt json -> tracing-appender non_blocking (lossless) -> File",
        Workload::Sparse,
        Check::Json,
    ),
    v(
        "sn",
        "(sn) no layer installed (registry alone): the clock reads, the call and tracing's dispatch on cold caches",
        Workload::Sparse,
        Check::None,
    ),
    v(
        "qa",
        "(qa) tracing-filesink, one event every 10 ms",
        Workload::Quiet,
        Check::Json,
    ),
    v(
        "qb",
        "(qb) fmt json -> tracing-appender non_blocking (lossless) -> File, one event every 10 ms",
        Workload::Quiet,
        Check::Json,
    ),
    v(
        "qn",
        "(qn) no layer installed, the same loop (the floor: the loop's own sleeps)",
        Workload::Quiet,
        Check::None,
    ),
    v(
        "qa100",
        "(qa100) tracing-filesink, one event every 100 ms",
        Workload::Quiet,
        Check::Json,
    ),
    v(
        "qb100",
        "(qb100) tracing-appender as (qb), one event every 100 ms",
        Workload::Quiet,
        Check::Json,
    ),
    v(
        "qn100",
        "(qn100) no layer installed, one event every 100 ms",
        Workload::Quiet,
        Check::None,
    ),
    v(
        "ra",
        "(ra) tracing-filesink: a token passed around 4 threads over channels, 200,000 hops",
        Workload::Order,
        Check::Order,
    ),
    v(
        "rb",
        "(rb) tracing-appender (fmt json, non_blocking lossless): the same token ring",
        Workload::Order,
        Check::Order,
    ),
    v(
        "rpa",
        "(rpa) tracing-filesink: the token ring with 20 µs of work per hop, 20,000 hops",
        Workload::Order,
        Check::Order,
    ),
    v(
        "rpb",
        "(rpb) tracing-appender: the token ring with 20 µs of work per hop",
        Workload::Order,
        Check::Order,
    ),
    v(
        "ta",
        "(ta) tracing-filesink: 200 tokio tasks x 300 events, yield_now() between, 4 workers",
        Workload::Order,
        Check::Order,
    ),
    v(
        "tb",
        "(tb) tracing-appender: the same tokio tasks",
        Workload::Order,
        Check::Order,
    ),
    v(
        "la",
        "(la) tracing-filesink, defaults (Block, no shedding)",
        Workload::Pressure,
        Check::Counted,
    ),
    v(
        "ld",
        "(ld) tracing-filesink, Overflow::Drop, no shedding",
        Workload::Pressure,
        Check::Counted,
    ),
    v(
        "ls",
        "(ls) tracing-filesink, Block + Shedding::below(WARN) (80%)",
        Workload::Pressure,
        Check::Counted,
    ),
    v(
        "lb",
        "(lb) fmt json -> tracing-appender non_blocking (lossy, its default)",
        Workload::Pressure,
        Check::Counted,
    ),
    v(
        "za",
        "(za) tracing-filesink behind LevelFilter::INFO, debug! rejected",
        Workload::Filtered,
        Check::None,
    ),
    v(
        "zn",
        "(zn) no layer installed (registry alone), same debug! calls",
        Workload::Filtered,
        Check::None,
    ),
    v(
        "zb",
        "(zb) tracing-filesink behind LevelFilter::INFO beside a layer that takes every level, debug! rejected by the per-layer filter",
        Workload::Filtered,
        Check::None,
    ),
    v(
        "zc",
        "(zc) that other layer alone, same debug! calls",
        Workload::Filtered,
        Check::None,
    ),
];

/// Takes every event and does nothing with it: with it installed, `debug!` passes the global
/// level check, so a per-layer filter has to reject the event itself.
struct AcceptAll;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AcceptAll {}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let key = args.get(2).cloned().unwrap_or_default();
        let result = VARIANTS
            .iter()
            .find(|v| v.key == key)
            .ok_or_else(|| format!("unknown variant {key:?}"))
            .and_then(child);
        return match result {
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

fn env_num(name: &str, default: f64) -> f64 {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// How far ahead of its schedule a sustained thread runs before it sleeps, in µs.
fn pace_quantum_us() -> f64 {
    env_num("BENCH_PACE_QUANTUM_US", 1000.0)
}

fn env_usize(name: &str, default: usize) -> usize {
    env_num(name, default as f64) as usize
}

/// Events per thread of a workload, as the child computes them from its environment.
fn events_per_thread(w: Workload) -> usize {
    match w {
        Workload::Burst => env_usize("BENCH_EVENTS", 500_000),
        Workload::Sustained => {
            let rate = env_num("BENCH_PACED_RATE", 1_000_000.0);
            let secs = env_num("BENCH_SUSTAIN_SECS", 20.0);
            ((rate * secs) / THREADS as f64).ceil().max(1.0) as usize
        }
        Workload::Sparse => env_usize("BENCH_SPARSE_EVENTS", 5_000),
        Workload::Filtered => env_usize("BENCH_FILTER_CALLS", 20_000_000),
        Workload::Quiet | Workload::Order | Workload::Pressure => 0,
    }
}

// ---------------------------------------------------------------------------------------
// Parent: run the children, print the tables and the chart.
// ---------------------------------------------------------------------------------------

/// The median over runs of one numeric field of the children's results.
fn median_of(samples: &[Value], field: &str) -> Option<f64> {
    let mut xs: Vec<f64> = samples.iter().filter_map(|s| s[field].as_f64()).collect();
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let m = xs.len() / 2;
    Some(if xs.len() % 2 == 1 {
        xs[m]
    } else {
        (xs[m - 1] + xs[m]) / 2.0
    })
}

struct Results<'a> {
    variants: Vec<&'a Variant>,
    samples: Vec<Vec<Value>>,
}

impl Results<'_> {
    fn get(&self, key: &str, field: &str) -> Option<f64> {
        let i = self.variants.iter().position(|v| v.key == key)?;
        median_of(&self.samples[i], field)
    }

    fn of(&self, w: Workload) -> impl Iterator<Item = (&Variant, &[Value])> {
        self.variants
            .iter()
            .zip(&self.samples)
            .filter(move |(v, _)| v.workload == w)
            .map(|(v, s)| (*v, s.as_slice()))
    }
}

fn parent() -> ExitCode {
    let began = Instant::now();
    let runs = env_usize("BENCH_RUNS", 3).max(1);
    let wanted: Option<Vec<String>> = std::env::var("BENCH_VARIANTS")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    if let Some(w) = &wanted {
        if let Some(bad) = w.iter().find(|k| !VARIANTS.iter().any(|v| &v.key == k)) {
            eprintln!("compare: BENCH_VARIANTS names an unknown variant {bad:?}");
            return ExitCode::FAILURE;
        }
    }
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
        "compare: {runs} run(s) of {} variant(s), interleaved",
        variants.len()
    );

    let mut res = Results {
        samples: vec![Vec::new(); variants.len()],
        variants,
    };
    let mut failures: Vec<String> = Vec::new();
    let fixed_rate = std::env::var("BENCH_PACED_RATE").is_ok();
    let mut paced_rates = Vec::new();
    for run in 1..=runs {
        // Sustained rows are paced at half of (a)'s rate of this very run.
        let mut paced_rate = env_num("BENCH_PACED_RATE", 1_000_000.0);
        for i in 0..res.variants.len() {
            let v = res.variants[i];
            let mut env = Vec::new();
            if v.workload == Workload::Sustained {
                // (r) runs at half the others' pace: a quarter of (a)'s rate.
                let rate = if v.key == "r" {
                    paced_rate / 2.0
                } else {
                    paced_rate
                };
                env.push(("BENCH_PACED_RATE", format!("{rate:.0}")));
                if i == 0 || res.variants[i - 1].workload != Workload::Sustained {
                    paced_rates.push(paced_rate);
                }
            }
            match run_child(&exe, v, &env) {
                Ok(s) => {
                    eprintln!("  run {run}/{runs} {:<3} {}", v.key, progress(v, &s));
                    if v.key == "a" && !fixed_rate {
                        if let Some(r) = s["events_per_sec"].as_f64() {
                            paced_rate = (r / 2.0).round();
                        }
                    }
                    res.samples[i].push(s);
                }
                Err(e) => {
                    eprintln!("  run {run}/{runs} {:<3} FAILED: {e}", v.key);
                    failures.push(format!("{} run {run}: {e}", v.label));
                }
            }
        }
    }

    println!();
    println!(
        "medians of {runs} run(s); {} CPU(s); the variants' runs interleaved",
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    print_tables(&res, &paced_rates);
    print_targets(&res);
    println!();
    for (v, s) in res.variants.iter().zip(&res.samples) {
        // A sparse run's events/s is its pace (one per millisecond), not a measurement.
        let rates: Vec<String> = s
            .iter()
            .filter(|_| v.workload != Workload::Sparse)
            .filter_map(|s| s["events_per_sec"].as_f64())
            .map(fmt_rate)
            .collect();
        let notes = s.last().and_then(|s| s["notes"].as_str()).unwrap_or("");
        let rates = if rates.is_empty() {
            String::new()
        } else {
            format!("{} events/s", rates.join(", "))
        };
        if !rates.is_empty() || !notes.is_empty() {
            println!(
                "- {} runs: {rates}{}{notes}",
                v.key,
                if rates.is_empty() || notes.is_empty() {
                    ""
                } else {
                    "; "
                },
            );
        }
    }
    match write_svg(&res, Path::new(SVG_PATH)) {
        Ok(true) => println!("\nchart: {SVG_PATH}"),
        Ok(false) => {}
        Err(e) => failures.push(format!("{SVG_PATH}: {e}")),
    }
    println!("bench run time: {:.0} s", began.elapsed().as_secs_f64());

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

fn progress(v: &Variant, s: &Value) -> String {
    let ns = |k: &str| s[k].as_f64().map_or("-".into(), fmt_ns);
    let checked = match v.check {
        Check::None => "no file",
        _ => "lines ok",
    };
    match v.workload {
        Workload::Filtered => format!("{} per call", ns("ns_per_call")),
        Workload::Pressure => format!(
            "ERROR p99 {:>9}  max {:>9}  lost {}  storm {:.2} s  {checked}",
            ns("error_p99_ns"),
            ns("error_max_ns"),
            s["errors_lost"].as_f64().unwrap_or(f64::NAN),
            s["storm_secs"].as_f64().unwrap_or(f64::NAN),
        ),
        _ => format!(
            "{:>7} ev/s  p50 {:>9}  p99 {:>9}  p99.9 {:>9}  {checked}",
            s["events_per_sec"].as_f64().map_or("-".into(), fmt_rate),
            ns("p50_ns"),
            ns("p99_ns"),
            ns("p999_ns"),
        ),
    }
}

fn lines_cell(v: &Variant, samples: &[Value]) -> String {
    let lines = samples.last().and_then(|s| s["lines"].as_u64());
    match (v.check, lines) {
        (Check::None, _) => "n/a (no file, not checked)".into(),
        (Check::Json, Some(l)) => format!("{l} (checked, JSON)"),
        (Check::Scan, Some(l)) => format!("{l} (checked, ids)"),
        (Check::Order, Some(l)) => format!("{l} (read back, every event once)"),
        (Check::Counted, Some(l)) => format!("{l} (read back, written + dropped = logged)"),
        (_, None) => "FAILED".into(),
    }
}

/// A column of a table: header, field of the children's results, how a median is shown.
type Column = (&'static str, &'static str, fn(f64) -> String);

const LATENCY: [Column; 3] = [
    ("p50", "p50_ns", fmt_ns),
    ("p99", "p99_ns", fmt_ns),
    ("p99.9", "p999_ns", fmt_ns),
];

/// One markdown table of a workload's variants: medians of every column, then the lines.
fn print_table(res: &Results, w: Workload, title: &str, columns: &[Column], footer: &str) {
    if res.of(w).next().is_none() {
        return;
    }
    println!();
    println!("### {title}");
    println!();
    let headers: Vec<&str> = columns.iter().map(|c| c.0).collect();
    println!("| variant | {} | lines |", headers.join(" | "));
    println!("|---|{}---:|", "---:|".repeat(columns.len()));
    for (v, s) in res.of(w) {
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, field, show)| match median_of(s, field) {
                Some(x) => show(x),
                None if s.is_empty() => "FAILED".into(),
                None => "-".into(),
            })
            .collect();
        println!(
            "| {} | {} | {} |",
            v.label,
            cells.join(" | "),
            lines_cell(v, s)
        );
    }
    if !footer.is_empty() {
        println!();
        println!("{footer}");
    }
}

fn print_tables(res: &Results, paced_rates: &[f64]) {
    let count = |x: f64| format!("{x:.0}");
    let one_decimal = |x: f64| format!("{x:.1}");
    let burst: Vec<Column> = [("events/s", "events_per_sec", fmt_rate as fn(f64) -> String)]
        .into_iter()
        .chain(LATENCY)
        .chain([
            (
                "bytes/line",
                "bytes_per_line",
                one_decimal as fn(f64) -> String,
            ),
            ("RSS idle", "rss_idle_kib", fmt_kib),
            ("of it anon", "anon_idle_kib", fmt_kib),
            ("RSS burst", "rss_burst_kib", fmt_kib),
        ])
        .collect();
    print_table(
        res,
        Workload::Burst,
        &format!(
            "Burst: {THREADS} threads x {} events, lossless, clock until everything is in the file",
            events_per_thread(Workload::Burst)
        ),
        &burst,
        "RSS idle: resident memory added by building the pipeline, nothing logged; of it anon: \
         the part that is not file-backed (RssAnon: heap, thread stacks, buffers), the rest \
         being pages of the program's code and data mapped in the first time they run. RSS \
         burst: peak resident memory (VmHWM) minus the process before the pipeline was built.",
    );
    let sustained: Vec<Column> = [(
        "events/s achieved",
        "events_per_sec",
        fmt_rate as fn(f64) -> String,
    )]
    .into_iter()
    .chain(LATENCY)
    .chain([
        ("rotations", "rotations", count as fn(f64) -> String),
        ("compressed", "segments_compressed", count),
        ("backlog at end", "backlog", count),
    ])
    .collect();
    let rates: Vec<String> = paced_rates.iter().map(|r| fmt_rate(*r)).collect();
    print_table(
        res,
        Workload::Sustained,
        &format!(
            "Sustained: {THREADS} threads paced at {} ({} events/s per run; (r) at half that), \
             {:.0} s, each thread sleeping once it is {} µs ahead of its schedule",
            if std::env::var("BENCH_PACED_RATE").is_ok() {
                "BENCH_PACED_RATE"
            } else if res.variants.iter().any(|v| v.key == "a") {
                "half of (a)'s events/s of the same run"
            } else {
                "the default rate ((a) did not run)"
            },
            rates.join(", "),
            env_num("BENCH_SUSTAIN_SECS", 20.0),
            pace_quantum_us()
        ),
        &sustained,
        "events/s achieved: events over the window from the start to the final flush (below the \
         paced rate when the callers fell behind). Backlog at end: segments rotated but not yet \
         compressed when the window closed.",
    );
    print_table(
        res,
        Workload::Sparse,
        &format!(
            "Sparse: 1 thread, one event per millisecond, {} events",
            events_per_thread(Workload::Sparse)
        ),
        &LATENCY,
        "",
    );
    print_table(
        res,
        Workload::Filtered,
        &format!(
            "Filtered out: 1 thread, {} debug! calls",
            events_per_thread(Workload::Filtered)
        ),
        &[("ns per call", "ns_per_call", one_decimal)],
        "",
    );
    let quiet_columns: [Column; 4] = [
        ("CPU ms per second", "cpu_ms_per_sec", one_decimal),
        ("wake-ups per second", "wakeups_per_sec", count),
        ("visible p50", "visible_p50_ns", fmt_ns),
        ("visible p99", "visible_p99_ns", fmt_ns),
    ];
    print_table(
        res,
        Workload::Quiet,
        &format!(
            "Quiet: 1 thread, one event every 10 ms or 100 ms, {:.0} s, defaults",
            env_num("BENCH_QUIET_SECS", 10.0)
        ),
        &quiet_columns,
        "CPU and wake-ups: the whole process over the loop (every thread's CPU time, and its \
         voluntary context switches: each a thread going to sleep, so each one wake-up), per \
         second; (qn) is the loop alone, its own sleeps. Visible: from the return of the \
         logging call until a reader's read() of the file returns the line, no flush (a second \
         phase of 2 s at the same pace, up to 200 events).",
    );
    print_table(
        res,
        Workload::Pressure,
        &format!(
            "Pressure: {THREADS} threads x {} events, DEBUG with an ERROR every 1,000, disk taking {} MB/s",
            env_usize("BENCH_STORM_EVENTS", 100_000),
            env_num("BENCH_SLOW_MBPS", 20.0)
        ),
        &[
            ("ERROR p50", "error_p50_ns", fmt_ns),
            ("ERROR p99", "error_p99_ns", fmt_ns),
            ("ERROR max", "error_max_ns", fmt_ns),
            ("DEBUG p99", "debug_p99_ns", fmt_ns),
            ("storm s", "storm_secs", |x| format!("{x:.2}")),
            ("ERRORs lost", "errors_lost", count),
            ("DEBUG written %", "debug_written_pct", one_decimal),
        ],
        "Latencies: of the logging calls, all threads together. ERRORs lost: of the ERRORs \
         logged, those not in the file. DEBUG written: the share of DEBUG events in the file.",
    );
    print_table(
        res,
        Workload::Order,
        "Order: events ordered by happens-before, across threads and tasks",
        &[
            ("inversions", "inversions", count),
            ("wall s", "wall_secs", |x| format!("{x:.2}")),
        ],
        "Inversions: lines that come after a line they happen-before (the ring: a line after one \
         with a higher id; the tasks: within a task). 0 means the file is in happens-before order.",
    );
}

/// The performance targets, each from one run's medians. Printed, never a failure: the
/// bench fails only when a check of correctness fails.
fn print_targets(r: &Results) {
    const EPS: &str = "events_per_sec";
    const P50: &str = "p50_ns";
    const P99: &str = "p99_ns";
    const P999: &str = "p999_ns";
    const NS: &str = "ns_per_call";
    // (what, num / den of a field, target: Some((at least?, limit)))
    type Row = (
        &'static str,
        (&'static str, &'static str, &'static str),
        Option<(bool, f64)>,
    );
    let rows: &[Row] = &[
        ("a/b events/s", ("a", "b", EPS), Some((true, 5.0))),
        ("caller p50 b/a", ("b", "a", P50), Some((true, 5.0))),
        ("caller p99.9 b/a", ("b", "a", P999), Some((true, 10.0))),
        (
            "a/d events/s (share of the formatting floor; moonshot 0.75)",
            ("a", "d", EPS),
            Some((true, 0.5)),
        ),
        ("caller p50 a/d", ("a", "d", P50), Some((false, 1.5))),
        ("a/c events/s", ("a", "c", EPS), None),
        ("a/s (spdlog-rs) events/s", ("a", "s", EPS), None),
        ("caller p50 s/a", ("s", "a", P50), None),
        ("caller p99.9 s/a", ("s", "a", P999), None),
        ("a/f (ftlog) events/s", ("a", "f", EPS), None),
        ("caller p50 f/a", ("f", "a", P50), None),
        ("caller p99.9 f/a", ("f", "a", P999), None),
        (
            "g/a events/s (rotation + gzip, every segment compressed inside the clock)",
            ("g", "a", EPS),
            None,
        ),
        (
            "e/a events/s (gzip mostly after the clock)",
            ("e", "a", EPS),
            None,
        ),
        ("e'/a events/s (rotation only)", ("e'", "a", EPS), None),
        (
            "sustained caller p99.9 q/p",
            ("q", "p", P999),
            Some((false, 2.0)),
        ),
        (
            "sparse caller p99 sa/sd",
            ("sa", "sd", P99),
            Some((false, 1.5)),
        ),
        (
            "sparse caller p99 sb/sa",
            ("sb", "sa", P99),
            Some((true, 4.0)),
        ),
        (
            "quiet, every 10 ms: CPU qa/qb (target: no more than tracing-appender)",
            ("qa", "qb", "cpu_ms_per_sec"),
            Some((false, 1.0)),
        ),
        (
            "quiet, every 10 ms: wake-ups qa/qb (target: no more than tracing-appender's; both are one per event plus the loop's own, so 5% is left for counting noise)",
            ("qa", "qb", "wakeups_per_sec"),
            Some((false, 1.05)),
        ),
        (
            "quiet, every 100 ms: CPU qa100/qb100",
            ("qa100", "qb100", "cpu_ms_per_sec"),
            Some((false, 1.0)),
        ),
        (
            "quiet, every 100 ms: wake-ups qa100/qb100 (as above)",
            ("qa100", "qb100", "wakeups_per_sec"),
            Some((false, 1.05)),
        ),
        (
            "sparse caller p99 sd/sn (the formatter over the measurement's own floor)",
            ("sd", "sn", P99),
            None,
        ),
        ("sparse caller p99 sa/sn", ("sa", "sn", P99), None),
        (
            "filtered out, ns per call za/zn (target: within noise)",
            ("za", "zn", NS),
            None,
        ),
        (
            "filtered out by the per-layer filter, zb/zc",
            ("zb", "zc", NS),
            None,
        ),
    ];
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let mut lines: Vec<String> = Vec::new();
    for (what, (num, den, field), target) in rows {
        let (Some(x), Some(y)) = (r.get(num, field), r.get(den, field)) else {
            continue;
        };
        let q = x / y;
        lines.push(match target {
            Some((true, t)) => format!("- {what}: {q:.2} (target >= {t}: {})", verdict(q >= *t)),
            Some((false, t)) => format!("- {what}: {q:.2} (target <= {t}: {})", verdict(q <= *t)),
            None => format!("- {what}: {q:.2}"),
        });
    }
    for (key, what, target) in [("q", "q", true), ("r", "r (q at half its pace)", false)] {
        if let Some(backlog) = r.get(key, "backlog") {
            let verdict = if target {
                format!(" (target <= 1: {})", verdict(backlog <= 1.0))
            } else {
                String::new()
            };
            lines.push(format!(
                "- {what}: segments not yet compressed at the end of the window: {backlog:.0}{verdict}"
            ));
        }
    }
    if let (Some(idle), Some(anon)) = (r.get("a", "rss_idle_kib"), r.get("a", "anon_idle_kib")) {
        lines.push(format!(
            "- idle memory a built sink holds (anon: heap, stacks, buffers): {} (target <= 256 KiB: {}); \
             resident in all, with the code pages its first run mapped in: {}",
            fmt_kib(anon),
            verdict(anon <= 256.0),
            fmt_kib(idle),
        ));
    }
    for (k, queue_mib) in [("a", 64), ("m", 4)] {
        if let Some(burst) = r.get(k, "rss_burst_kib") {
            lines.push(format!(
                "- {k}: peak RSS over the empty process under the burst {}, queue_bytes {queue_mib} MiB \
                 (the writer may hold as much again while it cannot write)",
                fmt_kib(burst)
            ));
        }
    }
    if !lines.is_empty() {
        println!();
        println!("Targets (ratios of this run's medians):");
        println!();
        for l in lines {
            println!("{l}");
        }
    }
}

fn run_child(exe: &Path, v: &Variant, env: &[(&str, String)]) -> Result<Value, String> {
    let mut cmd = Command::new(exe);
    cmd.arg("--child").arg(v.key);
    for (k, val) in env {
        cmd.env(k, val);
    }
    let out = cmd
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
    if v.check != Check::None {
        let expected = r["expected_lines"].as_u64();
        let lines = r["lines"].as_u64();
        if expected.is_none() || lines != expected {
            return Err(format!(
                "{lines:?} lines in the files, expected {expected:?}"
            ));
        }
    }
    Ok(r)
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else {
        format!("{:.0}k", r / 1e3)
    }
}

fn fmt_kib(kib: f64) -> String {
    if kib.abs() < 1024.0 {
        format!("{kib:.0} KiB")
    } else {
        format!("{:.1} MiB", kib / 1024.0)
    }
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
// The chart.
// ---------------------------------------------------------------------------------------

/// Bars per variant: events/s of the burst, and caller p50 / p99 / p99.9 of the burst and of
/// the paced workloads (log scale). Returns false when no variant had figures to draw.
fn write_svg(res: &Results, path: &Path) -> Result<bool, String> {
    use plotters::prelude::*;

    let rows = |w: Workload| -> Vec<(String, [f64; 4])> {
        res.of(w)
            .filter_map(|(v, s)| {
                let m = |f: &str| median_of(s, f);
                Some((
                    v.key.to_string(),
                    [
                        m("events_per_sec").unwrap_or(0.0),
                        m("p50_ns")?,
                        m("p99_ns")?,
                        m("p999_ns")?,
                    ],
                ))
            })
            .collect()
    };
    let burst = rows(Workload::Burst);
    let mut paced = rows(Workload::Sustained);
    paced.extend(rows(Workload::Sparse));
    if burst.is_empty() && paced.is_empty() {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let root = SVGBackend::new(path, (1100, 1050)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let panels = root.split_evenly((3, 1));
    let colors = [
        RGBColor(0x4c, 0x72, 0xb0),
        RGBColor(0xdd, 0x84, 0x52),
        RGBColor(0xc4, 0x4e, 0x52),
    ];

    // Events/s, burst.
    if !burst.is_empty() {
        let max = burst.iter().map(|r| r.1[0]).fold(1.0, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(&panels[0])
            .caption(
                "Burst: events/s (4 threads, lossless, until everything is in the file)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5f64..(burst.len() as f64 - 0.5), 0f64..max)
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_label_formatter(&|y| fmt_rate(*y))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(burst.iter().enumerate().map(|(i, r)| {
                let x = i as f64;
                Rectangle::new([(x - 0.35, 0.0), (x + 0.35, r.1[0])], colors[0].filled())
            }))
            .map_err(e)?;
        chart
            .draw_series(burst.iter().enumerate().map(|(i, r)| {
                Text::new(
                    format!("{} {}", r.0, fmt_rate(r.1[0])),
                    (i as f64 - 0.35, r.1[0] + max * 0.06),
                    ("sans-serif", 13),
                )
            }))
            .map_err(e)?;
    }

    // Caller latency percentiles, log scale.
    let latency = |area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
                   title: &str,
                   rows: &[(String, [f64; 4])]|
     -> Result<(), String> {
        if rows.is_empty() {
            return Ok(());
        }
        let lo = rows.iter().map(|r| r.1[1]).fold(f64::MAX, f64::min) / 2.0;
        let hi = rows.iter().map(|r| r.1[3]).fold(1.0, f64::max) * 4.0;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5f64..(rows.len() as f64 - 0.5), (lo..hi).log_scale())
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_label_formatter(&|y| fmt_ns(*y))
            .draw()
            .map_err(e)?;
        for (p, color) in colors.iter().enumerate() {
            chart
                .draw_series(rows.iter().enumerate().map(|(i, r)| {
                    let x = i as f64 - 0.36 + 0.24 * p as f64;
                    Rectangle::new([(x, lo), (x + 0.22, r.1[p + 1])], color.filled())
                }))
                .map_err(e)?;
        }
        chart
            .draw_series(rows.iter().enumerate().map(|(i, r)| {
                Text::new(
                    r.0.clone(),
                    (i as f64 - 0.1, r.1[3] * 1.6),
                    ("sans-serif", 14),
                )
            }))
            .map_err(e)?;
        Ok(())
    };
    latency(
        &panels[1],
        "Burst: caller latency per call, log scale (p50 blue, p99 orange, p99.9 red)",
        &burst,
    )?;
    latency(
        &panels[2],
        "Paced: sustained p, q, r; sparse sa, sd, sb, sn: caller latency (p50 blue, p99 orange, p99.9 red)",
        &paced,
    )?;
    root.present().map_err(e)?;
    Ok(true)
}

// ---------------------------------------------------------------------------------------
// Child: one variant, measured, shut down, checked.
// ---------------------------------------------------------------------------------------

/// A variant's logging pipeline, and how it is brought to "everything is in the file".
enum Pipeline {
    /// A `tracing` subscriber set as the global default, and what stands behind it.
    Tracing(Finish),
    Spdlog(Option<Arc<spdlog::Logger>>),
    /// The guard flushes once more when dropped.
    Ftlog {
        _guard: ftlog::LoggerGuard,
    },
}

enum Finish {
    Sink(FileSinkGuard),
    Appender {
        guard: tracing_appender::non_blocking::WorkerGuard,
        lines: Arc<LineCount>,
    },
    Buffered(SharedBufWriter),
    Nothing,
}

fn tracing_pipeline(dispatch: Dispatch, finish: Finish) -> Result<Pipeline, String> {
    tracing::dispatcher::set_global_default(dispatch).map_err(|e| e.to_string())?;
    Ok(Pipeline::Tracing(finish))
}

fn sink(builder: tracing_filesink::Builder) -> Result<Pipeline, String> {
    let (layer, guard) = builder.build().map_err(|e| format!("build: {e}"))?;
    tracing_pipeline(
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        Finish::Sink(guard),
    )
}

fn appender(active: &Path, expected: u64) -> Result<Pipeline, String> {
    let lines = Arc::new(LineCount::new(expected));
    let file = CountingFile {
        file: File::create(active).map_err(|e| format!("{}: {e}", active.display()))?,
        lines: lines.clone(),
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(file);
    let layer = tracing_subscriber::fmt::layer().json().with_writer(writer);
    tracing_pipeline(
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        Finish::Appender { guard, lines },
    )
}

fn build(key: &str, dir: &Path, expected: u64) -> Result<Pipeline, String> {
    let active = dir.join(format!("{STEM}.log"));
    let gzip_8m = || {
        FileSink::builder(dir, STEM)
            .rotation(Rotation::size(8 << 20))
            .compression(Compression::gzip())
    };
    // (o), (oa): every record option; (o'), (ob): fmt's share of them.
    let all_options = || {
        FileSink::builder(dir, STEM)
            .flatten_event(true)
            .with_file(true)
            .with_line_number(true)
            .with_thread_ids(true)
            .with_thread_names(true)
            .rename_key("timestamp", "@timestamp")
            .rename_key("level", "log.level")
            .static_field("service.name", "bench")
            .static_field("service.version", "1.0.0")
    };
    let fmt_options = || {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_file(true)
            .with_line_number(true)
            .with_thread_ids(true)
            .with_thread_names(true)
    };
    match key {
        "a" | "p" | "sa" | "qa" | "qa100" | "ra" | "rpa" | "ta" => {
            sink(FileSink::builder(dir, STEM))
        }
        "oa" => sink(all_options()),
        "o" => tracing_pipeline(
            Dispatch::new(
                tracing_subscriber::registry().with(
                    tracing_filesink::__private::format_only_layer_for(all_options())
                        .map_err(|e| format!("build: {e}"))?,
                ),
            ),
            Finish::Nothing,
        ),
        "o'" => tracing_pipeline(
            Dispatch::new(tracing_subscriber::registry().with(fmt_options().with_writer(io::sink))),
            Finish::Nothing,
        ),
        "ob" => {
            let (writer, guard) = FileSink::builder(dir, STEM)
                .build_writer()
                .map_err(|e| format!("build_writer: {e}"))?;
            tracing_pipeline(
                Dispatch::new(
                    tracing_subscriber::registry().with(fmt_options().with_writer(writer)),
                ),
                Finish::Sink(guard),
            )
        }
        "g" | "e" | "q" | "r" => sink(gzip_8m()),
        "e'" => sink(FileSink::builder(dir, STEM).rotation(Rotation::size(8 << 20))),
        "m" => sink(FileSink::builder(dir, STEM).queue_bytes(4 << 20)),
        "b" | "sb" | "qb" | "qb100" | "rb" | "rpb" | "tb" => appender(&active, expected),
        "c" => {
            let file = File::create(&active).map_err(|e| format!("{}: {e}", active.display()))?;
            let shared = SharedBufWriter(Arc::new(Mutex::new(BufWriter::new(file))));
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .with_writer(shared.clone());
            tracing_pipeline(
                Dispatch::new(tracing_subscriber::registry().with(layer)),
                Finish::Buffered(shared),
            )
        }
        "d" | "sd" => tracing_pipeline(
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
            tracing_pipeline(
                Dispatch::new(tracing_subscriber::registry().with(layer)),
                Finish::Nothing,
            )
        }
        "za" | "zb" => {
            let (layer, guard) = FileSink::builder(dir, STEM)
                .build()
                .map_err(|e| format!("build: {e}"))?;
            // (zb) puts a layer that takes every level beside it.
            let other = (key == "zb").then_some(AcceptAll);
            tracing_pipeline(
                Dispatch::new(
                    tracing_subscriber::registry()
                        .with(other)
                        .with(layer.with_filter(LevelFilter::INFO)),
                ),
                Finish::Sink(guard),
            )
        }
        "zc" => tracing_pipeline(
            Dispatch::new(tracing_subscriber::registry().with(AcceptAll)),
            Finish::Nothing,
        ),
        "zn" | "sn" | "qn" | "qn100" => tracing_pipeline(
            Dispatch::new(tracing_subscriber::registry()),
            Finish::Nothing,
        ),
        "s" => {
            use spdlog::sink::{AsyncPoolSink, FileSink as SpdFileSink, OverflowPolicy};
            let file = SpdFileSink::builder()
                .path(&active)
                .truncate(true)
                .build_arc()
                .map_err(|e| format!("spdlog FileSink: {e}"))?;
            // A pool of its own (one thread, default capacity), so that dropping the logger
            // joins the thread once it has written everything.
            let pool = Arc::new(
                spdlog::ThreadPool::builder()
                    .build()
                    .map_err(|e| format!("spdlog ThreadPool: {e}"))?,
            );
            let async_sink = AsyncPoolSink::builder()
                .sink(file)
                .overflow_policy(OverflowPolicy::Block)
                .thread_pool(pool)
                .build_arc()
                .map_err(|e| format!("spdlog AsyncPoolSink: {e}"))?;
            let logger = spdlog::Logger::builder()
                .sink(async_sink)
                .build_arc()
                .map_err(|e| format!("spdlog Logger: {e}"))?;
            Ok(Pipeline::Spdlog(Some(logger)))
        }
        "f" => {
            let guard = ftlog::builder()
                .bounded(100_000, true)
                .utc()
                .root(ftlog::appender::FileAppender::new(&active))
                .try_init()
                .map_err(|e| format!("ftlog: {e}"))?;
            Ok(Pipeline::Ftlog { _guard: guard })
        }
        other => Err(format!("no pipeline for {other:?}")),
    }
}

/// The bench event through `tracing`.
fn tracing_event(t: usize, i: u64) {
    tracing::info!(
        target: "bench",
        id = i,
        thread = t as u64,
        user = "alice",
        latency_ms = 3.25_f64,
        "request handled"
    );
}

fn child(v: &Variant) -> Result<Value, String> {
    let mut tmp = tempfile::Builder::new();
    tmp.prefix("filesink-bench-");
    let tmp = match std::env::var_os("BENCH_DIR") {
        Some(d) => tmp.tempdir_in(d),
        None => tmp.tempdir(),
    }
    .map_err(|e| format!("temp dir: {e}"))?;
    let dir = tmp.path();
    match v.workload {
        Workload::Quiet => return quiet::child(v, dir),
        Workload::Order => return order::child(v, dir),
        Workload::Pressure => return pressure::child(v, dir),
        _ => {}
    }
    let threads = v.workload.threads();
    let n = events_per_thread(v.workload);
    let expected = (threads * n) as u64;

    let rss_before = vm_kib("VmRSS")?;
    let anon_before = vm_kib("RssAnon")?;
    let mut pipeline = build(v.key, dir, expected)?;
    if let Pipeline::Tracing(Finish::Sink(guard)) = &pipeline {
        guard.flush().map_err(|e| format!("flush: {e}"))?;
    }
    // The pipelines' threads start and allocate what they keep while idle.
    std::thread::sleep(Duration::from_millis(100));
    let rss_idle = vm_kib("VmRSS")? as i64 - rss_before as i64;
    let anon_idle = vm_kib("RssAnon")? as i64 - anon_before as i64;

    let mut result = json!({ "key": v.key, "rss_idle_kib": rss_idle, "anon_idle_kib": anon_idle });
    let mut notes = Vec::new();
    if v.workload == Workload::Filtered {
        let start = Instant::now();
        for i in 0..n as u64 {
            tracing::debug!(
                target: "bench",
                id = i,
                thread = 0u64,
                user = "alice",
                latency_ms = 3.25_f64,
                "request handled"
            );
        }
        result["ns_per_call"] = json!(start.elapsed().as_nanos() as f64 / n as f64);
        if let Pipeline::Tracing(Finish::Sink(guard)) = &pipeline {
            guard
                .shutdown(Duration::from_secs(10))
                .map_err(|e| format!("shutdown: {e}"))?;
            let written = guard.stats().records_written;
            if written != 0 {
                return Err(format!("{written} records written, expected none"));
            }
        }
        result["notes"] = json!("");
        return Ok(result);
    }

    // ---- measured: start barrier .. everything in the file ----
    let pace = match v.workload {
        Workload::Sustained => {
            let rate = env_num("BENCH_PACED_RATE", 1_000_000.0);
            result["paced_rate"] = json!(rate);
            Some(Pace {
                interval_ns: threads as f64 * 1e9 / rate,
                quantum: Duration::from_micros(pace_quantum_us() as u64),
            })
        }
        Workload::Sparse => Some(Pace {
            interval_ns: 1e6,
            quantum: Duration::ZERO,
        }),
        _ => None,
    };
    let (wall, hist) = match &mut pipeline {
        Pipeline::Tracing(finish) => {
            let (wall, hist) = workload(threads, n, pace, &tracing_event, || match finish {
                Finish::Sink(guard) => {
                    guard.flush().map_err(|e| format!("flush: {e}"))?;
                    if v.key == "g" {
                        guard
                            .wait_idle(Duration::from_secs(600))
                            .map_err(|e| format!("wait_idle: {e}"))?;
                    }
                    Ok(())
                }
                Finish::Buffered(w) => w.lock().flush().map_err(|e| format!("flush: {e}")),
                Finish::Appender { .. } | Finish::Nothing => Ok(()),
            })?;
            let mut wall = wall;
            if matches!(finish, Finish::Appender { .. }) {
                let Finish::Appender { guard, lines } = std::mem::replace(finish, Finish::Nothing)
                else {
                    unreachable!("matched just above")
                };
                // Dropping the guard is tracing-appender's flush (it waits up to 100 ms +
                // 1 s). If it gives up early, keep the clock running until the worker has
                // really written everything.
                let start = Instant::now();
                drop(guard);
                if lines.get() < expected {
                    notes.push(
                        "WorkerGuard drop returned before the worker had written everything"
                            .to_string(),
                    );
                }
                if !lines.wait(Duration::from_secs(60)) {
                    return Err(format!(
                        "tracing-appender wrote {} of {expected} lines within 60 s of the guard drop",
                        lines.get()
                    ));
                }
                wall += start.elapsed();
            }
            (wall, hist)
        }
        Pipeline::Spdlog(logger) => {
            let (wall, hist) = {
                let lg = logger.clone().ok_or("no logger")?;
                let log = move |t: usize, i: u64| {
                    spdlog::info!(
                        logger: lg,
                        "request handled id={} thread={} user={} latency_ms={}",
                        i,
                        t,
                        "alice",
                        3.25_f64
                    )
                };
                workload(threads, n, pace, &log, || Ok(()))?
            };
            // The pool is FIFO with one thread: dropping the last handle of the logger lets
            // it write what is queued and exit; the drop joins it, and the file sink's drop
            // flushes its buffer.
            let start = Instant::now();
            if let Some(l) = logger.take() {
                l.flush();
                drop(l);
            }
            (wall + start.elapsed(), hist)
        }
        Pipeline::Ftlog { .. } => {
            let log = |t: usize, i: u64| {
                ftlog::info!(
                    target: "bench",
                    "request handled id={} thread={} user={} latency_ms={}",
                    i,
                    t,
                    "alice",
                    3.25_f64
                )
            };
            workload(threads, n, pace, &log, || {
                // Writes everything queued, flushes the file, and waits for the answer.
                ftlog::logger().flush();
                Ok(())
            })?
        }
    };
    result["wall_secs"] = json!(wall.as_secs_f64());
    result["events_per_sec"] = json!(expected as f64 / wall.as_secs_f64());
    result["p50_ns"] = json!(hist.percentile(0.50));
    result["p99_ns"] = json!(hist.percentile(0.99));
    result["p999_ns"] = json!(hist.percentile(0.999));

    // ---- not measured: shut down, peak RSS, read everything back ----
    if let Pipeline::Tracing(Finish::Sink(guard)) = &pipeline {
        let s = guard.stats();
        // At the end of the window: what the application would see if it went on logging.
        result["rotations"] = json!(s.rotations);
        result["segments_compressed"] = json!(s.segments_compressed);
        // Counted here rather than taken from `compression_backlog`, which counts only the
        // segments a maintenance pass has already seen.
        result["backlog"] = json!(s
            .rotations
            .saturating_sub(s.segments_compressed + s.compression_failures));
        result["backlog_stat"] = json!(s.compression_backlog);
        if v.key == "g" && (s.compression_backlog != 0 || s.segments_compressed != s.rotations) {
            return Err(format!(
                "after wait_idle: {} rotations, {} compressed, backlog {}",
                s.rotations, s.segments_compressed, s.compression_backlog
            ));
        }
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
        notes.push(format!(
            "queue high water {} events, {} bytes",
            s.queue_high_water, s.queue_bytes_high_water
        ));
        if s.rotations > 0 {
            notes.push(format!(
                "{} rotations, {} segments compressed at the end of the clock \
                 (stats().compression_backlog then: {})",
                result["rotations"], result["segments_compressed"], result["backlog_stat"]
            ));
        }
    }
    let hwm = vm_kib("VmHWM")?;
    result["rss_burst_kib"] = json!(hwm as i64 - rss_before as i64);
    drop(pipeline);

    result["expected_lines"] = json!(expected);
    if v.check != Check::None {
        let check = check_files(dir, threads, n, v.check)?;
        result["lines"] = json!(check.lines);
        result["bytes_per_line"] = json!(check.bytes as f64 / check.lines.max(1) as f64);
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
    result["notes"] = json!(notes.join("; "));
    drop(tmp);
    Ok(result)
}

/// How each thread of a paced workload spaces its events.
#[derive(Clone, Copy)]
struct Pace {
    /// Event `i` is due `i × interval_ns` after the thread's start.
    interval_ns: f64,
    /// The thread sleeps until an event is due only when it is due this far ahead or more;
    /// otherwise it logs the event at once.
    quantum: Duration,
}

/// Runs `threads` threads released by one barrier, each logging `n` events through `log` and
/// timing every call, paced by `pace` if given. Returns the wall time from the barrier to
/// the end of `finish`, and the merged latency histogram.
fn workload<L: Fn(usize, u64) + Sync>(
    threads: usize,
    n: usize,
    pace: Option<Pace>,
    log: &L,
    finish: impl FnOnce() -> Result<(), String>,
) -> Result<(Duration, Histogram), String> {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut hist = Histogram::new();
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..n as u64 {
                        if let Some(p) = pace {
                            let due =
                                start + Duration::from_nanos((p.interval_ns * i as f64) as u64);
                            let now = Instant::now();
                            if due > now && due - now >= p.quantum {
                                std::thread::sleep(due - now);
                            }
                        }
                        let t0 = Instant::now();
                        log(t, i);
                        hist.record(t0.elapsed());
                    }
                    hist
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut hist = Histogram::new();
        for h in handles {
            hist.merge(&h.join().expect("a logging thread panicked"));
        }
        finish()?;
        Ok((start.elapsed(), hist))
    })
}

/// A log-linear histogram of nanoseconds: exact below 128 ns, then 64 buckets per power of
/// two (at most 1.6% off).
struct Histogram {
    counts: Vec<u64>,
}

impl Histogram {
    const SUB: u32 = 6;
    const LINEAR: u64 = 2 << Self::SUB;

    fn new() -> Histogram {
        // Written now, so no page fault lands inside a measured call.
        Histogram {
            counts: vec![0; Self::index(u64::MAX) + 1],
        }
    }

    fn index(ns: u64) -> usize {
        if ns < Self::LINEAR {
            return ns as usize;
        }
        let exp = 63 - ns.leading_zeros(); // >= SUB + 1
        let top = ns >> (exp - Self::SUB); // in [64, 128)
        (Self::LINEAR
            + u64::from(exp - Self::SUB - 1) * (1 << Self::SUB)
            + (top - (1 << Self::SUB))) as usize
    }

    /// The middle of bucket `i`'s range.
    fn value(i: usize) -> f64 {
        let i = i as u64;
        if i < Self::LINEAR {
            return i as f64;
        }
        let octave = (i - Self::LINEAR) >> Self::SUB;
        let top = (1 << Self::SUB) + ((i - Self::LINEAR) & ((1 << Self::SUB) - 1));
        let shift = octave + 1;
        ((top << shift) as f64) + ((1u64 << shift) as f64) / 2.0
    }

    fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[Self::index(ns)] += 1;
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    fn percentile(&self, p: f64) -> f64 {
        let total: u64 = self.counts.iter().sum();
        let rank = ((p * total as f64).ceil() as u64).clamp(1, total.max(1));
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value(i);
            }
        }
        0.0
    }
}

fn vm_kib(field: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/self/status"))
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

/// The `(thread, id)` of a bench line. `Json`: the line is parsed, its target must be
/// `bench`. `Scan`: the first `"thread":` / ` thread=` and `"id":` / ` id=` values.
fn thread_and_id(line: &[u8], check: Check) -> Result<(u64, u64), String> {
    if check == Check::Json {
        let v: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON ({e})"))?;
        return match (
            v["target"].as_str(),
            v["fields"]["thread"].as_u64(),
            v["fields"]["id"].as_u64(),
        ) {
            (Some("bench"), Some(t), Some(id)) => Ok((t, id)),
            _ => Err(format!("not a bench event: {v}")),
        };
    }
    let number = |keys: [&[u8]; 2]| {
        keys.iter().find_map(|k| {
            let at = find(line, k)? + k.len();
            let digits = line[at..].iter().take_while(|b| b.is_ascii_digit()).count();
            std::str::from_utf8(&line[at..at + digits])
                .ok()?
                .parse()
                .ok()
        })
    };
    match (
        number([b"thread\":", b" thread="]),
        number([b"\"id\":", b" id="]),
    ) {
        (Some(t), Some(id)) => Ok((t, id)),
        _ => Err(format!(
            "not a bench event: {}",
            String::from_utf8_lossy(line).trim_end()
        )),
    }
}

/// Where `needle` first occurs in `hay`: candidates by their first byte, then compared.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = hay[from..].iter().position(|&b| b == needle[0]) {
        let at = from + p;
        if hay[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Reads back every file of the stem, in write order (finished segments by sequence number,
/// then the active file): every line a bench event, each thread's ids 0..n exactly once and
/// in order.
fn check_files(dir: &Path, threads: usize, n: usize, check: Check) -> Result<FileCheck, String> {
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
    let mut result = FileCheck {
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
    let mut next = vec![0u64; threads];
    let mut line = Vec::with_capacity(512);
    for (name, path) in &files {
        let file = File::open(path).map_err(|e| format!("{name}: {e}"))?;
        result.disk_bytes += file.metadata().map_err(|e| format!("{name}: {e}"))?.len();
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
            result.lines += 1;
            result.bytes += got as u64;
            let (t, id) =
                thread_and_id(&line, check).map_err(|e| format!("{name}:{lineno}: {e}"))?;
            let t = t as usize;
            if t >= threads {
                return Err(format!("{name}:{lineno}: thread {t} out of range"));
            }
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
    Ok(result)
}
