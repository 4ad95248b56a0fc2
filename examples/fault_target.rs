//! The program `.ci/faults.sh` runs under real fault tools (strace error injection, faketime
//! clock jumps, logrotate with a SIGHUP reopen). Not an example of style: a test driver.
//!
//! ```text
//! fault_target write   <dir> <events>                 write errors (strace inject=write)
//! fault_target fsync   <dir> <events>                 fsync errors (strace inject=fsync)
//! fault_target time    <dir> <daily|hourly> <rounds> <pause_ms>   time rotation (faketime)
//! fault_target sighup  <dir> <pidfile> <rounds> <pause_ms>         logrotate + SIGHUP reopen
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
