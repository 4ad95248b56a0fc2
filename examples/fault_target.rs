//! The program `.ci/faults.sh` runs under real fault tools (strace error injection, faketime
//! clock jumps, logrotate with a SIGHUP reopen). Not an example of style: a test driver.
//!
//! ```text
//! fault_target write   <dir> <events>                 write errors (strace inject=write)
//! fault_target fsync   <dir> <events>                 fsync errors (strace inject=fsync)
//! fault_target time    <dir> <daily|hourly> <rounds> <pause_ms>   time rotation (faketime)
//! fault_target sighup  <dir> <pidfile> <rounds> <pause_ms>         logrotate + SIGHUP reopen
//! fault_target step    <dir> <faketime file>          system clock steps +1 day, then -1 hour
//! fault_target verify  <dir> <expected events|->     reads everything back, checks it
//! ```
//!
//! Every event has the fields `run` (env `FAULT_RUN`, default 0) and `seq`. Each mode prints
//! one `key=value` summary line and exits 0 unless the sink panicked or the check failed.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use tracing_filesink::{FileSink, FileSinkGuard, Rotation};
use tracing_subscriber::prelude::*;

const STEM: &str = "app";

fn run_id() -> u64 {
    std::env::var("FAULT_RUN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn arg(args: &[String], i: usize, what: &str) -> String {
    args.get(i).cloned().unwrap_or_else(|| {
        eprintln!("missing argument: {what}");
        std::process::exit(2)
    })
}

fn num(args: &[String], i: usize, what: &str) -> u64 {
    arg(args, i, what).parse().unwrap_or_else(|_| {
        eprintln!("{what} must be a number");
        std::process::exit(2)
    })
}

fn init(guard_layer: (tracing_filesink::FileSinkLayer, FileSinkGuard)) -> FileSinkGuard {
    let (layer, guard) = guard_layer;
    tracing_subscriber::registry().with(layer).init();
    guard
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = arg(&args, 1, "mode");
    let dir = arg(&args, 2, "dir");
    let run = run_id();
    match mode.as_str() {
        "write" | "fsync" => {
            let events = num(&args, 3, "events");
            let guard = init(
                FileSink::builder(&dir, STEM)
                    .shutdown_timeout(Duration::from_secs(2))
                    .build()
                    .expect("build"),
            );
            let (mut flush_errors, mut sync_errors) = (0u64, 0u64);
            let mut last_error = String::new();
            for seq in 0..events {
                tracing::info!(run, seq, "event");
                if seq % 100 == 99 {
                    let res = if mode == "fsync" {
                        guard.sync()
                    } else {
                        guard.flush()
                    };
                    if let Err(e) = res {
                        last_error = e.to_string();
                        if mode == "fsync" {
                            sync_errors += 1;
                        } else {
                            flush_errors += 1;
                        }
                    }
                }
            }
            let shutdown = match guard.shutdown(Duration::from_secs(2)) {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("err({e})"),
            };
            let s = guard.stats();
            println!(
                "events={events} flush_errors={flush_errors} sync_errors={sync_errors} \
                 write_errors={} dropped={} written={} shutdown={shutdown}",
                s.write_errors, s.events_dropped, s.records_written
            );
            if !last_error.is_empty() {
                println!("last_error={last_error}");
            }
        }
        "time" => {
            let rotation = match arg(&args, 3, "daily|hourly").as_str() {
                "daily" => Rotation::daily(),
                "hourly" => Rotation::hourly(),
                other => {
                    eprintln!("unknown rotation {other}");
                    std::process::exit(2)
                }
            };
            let rounds = num(&args, 4, "rounds");
            let pause = Duration::from_millis(num(&args, 5, "pause_ms"));
            let guard = init(
                FileSink::builder(&dir, STEM)
                    .rotation(rotation)
                    .build()
                    .expect("build"),
            );
            let mut seq = 0u64;
            for _ in 0..rounds {
                for _ in 0..20 {
                    tracing::info!(run, seq, "event");
                    seq += 1;
                }
                guard.flush().expect("flush");
                // The driver script moves the fake clock meanwhile.
                std::thread::sleep(pause);
            }
            guard.shutdown(Duration::from_secs(5)).expect("shutdown");
            let s = guard.stats();
            println!("logged={seq} rotations={}", s.rotations);
        }
        // SIGHUP exists only on Unix; .ci/faults.sh runs on Linux.
        #[cfg(unix)]
        "sighup" => {
            let pidfile = arg(&args, 3, "pidfile");
            let rounds = num(&args, 4, "rounds");
            let pause = Duration::from_millis(num(&args, 5, "pause_ms"));
            let guard =
                std::sync::Arc::new(init(FileSink::builder(&dir, STEM).build().expect("build")));
            let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
                .expect("signals");
            let handle = signals.handle();
            let g = guard.clone();
            let signal_thread = std::thread::spawn(move || {
                for _ in signals.forever() {
                    if let Err(e) = g.reopen() {
                        eprintln!("reopen failed: {e}");
                    }
                }
            });
            std::fs::write(&pidfile, std::process::id().to_string()).expect("pidfile");
            let mut seq = 0u64;
            for _ in 0..rounds {
                for _ in 0..20 {
                    tracing::info!(run, seq, "event");
                    seq += 1;
                }
                guard.flush().expect("flush");
                std::thread::sleep(pause);
            }
            handle.close();
            let _ = signal_thread.join();
            guard.shutdown(Duration::from_secs(5)).expect("shutdown");
            println!("logged={seq} reopens={}", guard.stats().reopens);
        }
        "step" => step(&dir, &arg(&args, 3, "faketime timestamp file"), run),
        "verify" => {
            // `-`: any number of events (only the other checks).
            let expected = match arg(&args, 3, "expected events").as_str() {
                "-" => None,
                _ => Some(num(&args, 3, "expected events")),
            };
            match verify(Path::new(&dir), expected) {
                Ok(summary) => println!("verify: ok: {summary}"),
                Err(e) => {
                    println!("verify: FAILED: {e}");
                    std::process::exit(1);
                }
            }
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    }
}

/// Reads every file of the stem (the active file, segments, `.gz` segments, and files
/// logrotate made: `app.log.1`, ...): no temp file, every `.gz` valid, every line complete
/// JSON, no event twice, exactly `expected` events (when given).
fn verify(dir: &Path, expected: Option<u64>) -> Result<String, String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut seen = std::collections::HashSet::new();
    let mut files = 0;
    for name in &names {
        if name.starts_with(&format!(".{STEM}.")) && name.ends_with(".tmp") {
            return Err(format!("temp file {name} remains"));
        }
        if !name.starts_with(&format!("{STEM}.")) || name.ends_with(".lock") {
            continue;
        }
        files += 1;
        let raw = std::fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        let text = if name.ends_with(".gz") {
            let mut v = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut v)
                .map_err(|e| format!("{name}: invalid gzip: {e}"))?;
            v
        } else {
            raw
        };
        if !text.is_empty() && !text.ends_with(b"\n") {
            return Err(format!("{name} ends with a torn line"));
        }
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
                format!("{name}: bad line {:?}: {e}", String::from_utf8_lossy(line))
            })?;
            let f = &v["fields"];
            if let (Some(r), Some(s)) = (f["run"].as_u64(), f["seq"].as_u64()) {
                if !seen.insert((r, s)) {
                    return Err(format!("event run {r} seq {s} appears twice ({name})"));
                }
            }
        }
    }
    if expected.is_some_and(|n| n != seen.len() as u64) {
        return Err(format!(
            "{} events in {files} files, expected {}",
            seen.len(),
            expected.unwrap_or(0)
        ));
    }
    Ok(format!("{} events in {files} files", seen.len()))
}

/// Logs for a quarter of a second at each of three system clock offsets (+0, +1 day, +23
/// hours: a step forward, then one back), moving the fake clock itself through libfaketime's
/// timestamp file, then reads the file back. The time order promise: the lines are in the
/// order they were logged; their times never go back except once, by the backward step; each
/// step shows in the first line logged 100 ms of logging after it at the latest (the sink
/// compares its offset with the system clock every 100 ms of logging); no line logged before a
/// step shows it.
fn step(dir: &str, ctl: &str, run: u64) {
    use std::time::Instant;
    let set_offset =
        |offset: &str| std::fs::write(ctl, format!("{offset}\n")).expect("write the faketime file");
    set_offset("+0");
    let guard = init(FileSink::builder(dir, STEM).build().expect("build"));
    // When each event was logged, by the monotonic clock (which faketime leaves alone).
    let mut logged: Vec<Instant> = Vec::new();
    let mut steps: Vec<(usize, Instant)> = Vec::new();
    for offset in ["+0", "+1d", "+23h"] {
        if offset != "+0" {
            set_offset(offset);
            steps.push((logged.len(), Instant::now()));
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(250) {
            let seq = logged.len() as u64;
            logged.push(Instant::now());
            tracing::info!(run, seq, "event");
            // Pacing the load, not synchronizing: a few thousand lines per phase.
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
    match check_steps(Path::new(dir), &logged, &steps) {
        Ok(summary) => println!("logged={} {summary}", logged.len()),
        Err(e) => {
            println!("logged={} step: FAILED: {e}", logged.len());
            std::process::exit(1);
        }
    }
}

fn check_steps(
    dir: &Path,
    logged: &[std::time::Instant],
    steps: &[(usize, std::time::Instant)],
) -> Result<String, String> {
    let text =
        std::fs::read_to_string(dir.join(format!("{STEM}.log"))).map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("bad line {line:?}: {e}"))?;
        let Some(seq) = v["fields"]["seq"].as_u64() else {
            continue;
        };
        let ts = v["timestamp"]
            .as_str()
            .ok_or_else(|| format!("no timestamp: {line}"))?;
        let t = chrono::DateTime::parse_from_rfc3339(ts).map_err(|e| format!("{ts}: {e}"))?;
        lines.push((seq as usize, t.timestamp_nanos_opt().unwrap_or(0)));
    }
    if lines.len() != logged.len() {
        return Err(format!(
            "{} event lines, {} logged",
            lines.len(),
            logged.len()
        ));
    }
    if let Some(w) = lines.windows(2).find(|w| w[1].0 != w[0].0 + 1) {
        return Err(format!("seq {} followed by {}", w[0].0, w[1].0));
    }
    const SEC: i64 = 1_000_000_000;
    // The expected change of the printed time at each step, with a second of slack for the
    // time between the lines.
    let expected = [
        (86_400 * SEC, "forward a day"),
        (-3_600 * SEC, "back an hour"),
    ];
    let mut shown = Vec::new();
    for (&(at, when), (delta, what)) in steps.iter().zip(expected) {
        // The first line from the step on whose time jumped by about `delta`.
        let jump = lines
            .windows(2)
            .position(|w| (w[1].1 - w[0].1 - delta).abs() < SEC)
            .map(|i| i + 1)
            .ok_or_else(|| format!("the step {what} never shows in the times"))?;
        if jump < at {
            return Err(format!(
                "the step {what} shows at seq {jump}, logged before the step (seq {at})"
            ));
        }
        // The line before the jump was logged before 100 ms of logging had passed since the
        // step (the check that saw the step runs at the first record 100 ms after the
        // previous check, which came before the step); a millisecond of slack for the
        // two clock readings.
        let lag = logged[jump - 1].saturating_duration_since(when);
        if lag > Duration::from_millis(101) {
            return Err(format!(
                "the step {what} shows {} lines and {lag:?} after it",
                jump - at
            ));
        }
        shown.push(format!("{what}: {} lines after", jump - at));
    }
    // Apart from the two steps, the times never go back and never jump.
    let steps_at: Vec<usize> = lines
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[1].1 < w[0].1 || w[1].1 - w[0].1 > SEC)
        .map(|(i, _)| i + 1)
        .collect();
    if steps_at.len() != 2 {
        return Err(format!(
            "times go back or jump at {} places ({steps_at:?}), expected 2",
            steps_at.len()
        ));
    }
    Ok(format!("step: ok, {}", shown.join(", ")))
}
