//! **Quiet**: one thread, one event every 10 ms (keys ending in `100`: every 100 ms), for
//! `BENCH_QUIET_SECS` (default 10) seconds: the CPU time and the voluntary context switches
//! (each a thread going to sleep, so each a wake-up to come) of the whole process over the
//! loop, per second. `(qn)` runs the same loop with no layer: the loop's own sleeps. Then a
//! second phase (2 s, at most 200 events at the same pace, not counted in the first) times
//! how long after the logging call returns a reader's `read()` of the file sees the line,
//! without any flush.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{
    build, check_files, env_num, find, tracing_event, Check, Finish, Histogram, Pipeline, Variant,
    STEM,
};

/// CPU nanoseconds and voluntary context switches of every thread of the process (all of
/// them alive through the measurement).
fn process_usage() -> Result<(u64, u64), String> {
    let (mut cpu, mut switches) = (0u64, 0u64);
    for entry in std::fs::read_dir("/proc/self/task").map_err(|e| e.to_string())? {
        let task = entry.map_err(|e| e.to_string())?.path();
        if let Ok(sched) = std::fs::read_to_string(task.join("schedstat")) {
            cpu += sched
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
        if let Ok(status) = std::fs::read_to_string(task.join("status")) {
            switches += status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok((cpu, switches))
}

fn sleep_until(t: Instant) {
    if let Some(d) = t.checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
}

pub(super) fn child(v: &Variant, dir: &Path) -> Result<Value, String> {
    let gap = Duration::from_millis(if v.key.ends_with("100") { 100 } else { 10 });
    let secs = env_num("BENCH_QUIET_SECS", 10.0);
    let n = (secs * 1000.0 / gap.as_millis() as f64).max(1.0) as u64;
    let n_visible = if v.check == Check::None {
        0
    } else {
        (2000 / gap.as_millis() as u64).min(200)
    };
    let mut pipeline = build(v.key, dir, n + n_visible)?;
    // Start-up is not part of a quiet service's steady cost.
    tracing_event(0, 0);
    std::thread::sleep(Duration::from_millis(300));

    let (cpu0, sw0) = process_usage()?;
    let start = Instant::now();
    for i in 1..n {
        sleep_until(start + gap * i as u32);
        tracing_event(0, i);
    }
    sleep_until(start + gap * n as u32);
    let elapsed = start.elapsed().as_secs_f64();
    let (cpu1, sw1) = process_usage()?;
    let mut result = json!({
        "key": v.key,
        "cpu_ms_per_sec": (cpu1 - cpu0) as f64 / 1e6 / elapsed,
        "wakeups_per_sec": (sw1 - sw0) as f64 / elapsed,
    });

    if n_visible > 0 {
        let mut file = File::open(dir.join(format!("{STEM}.log"))).map_err(|e| e.to_string())?;
        file.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut hist = Histogram::new();
        let vstart = Instant::now();
        for j in 0..n_visible {
            let id = n + j;
            sleep_until(vstart + gap * j as u32);
            let needle = format!("\"id\":{id},");
            tracing_event(0, id);
            let t0 = Instant::now();
            loop {
                let got = file.read(&mut chunk).map_err(|e| e.to_string())?;
                seen.extend_from_slice(&chunk[..got]);
                if find(&seen, needle.as_bytes()).is_some() {
                    hist.record(t0.elapsed());
                    break;
                }
                if t0.elapsed() > Duration::from_secs(2) {
                    return Err(format!(
                        "event {id} not in the file 2 s after it was logged"
                    ));
                }
                if got == 0 {
                    std::thread::yield_now();
                }
            }
            // Keep only the tail a line may straddle.
            let keep = seen.len().saturating_sub(512);
            seen.drain(..keep);
        }
        result["visible_p50_ns"] = json!(hist.percentile(0.50));
        result["visible_p99_ns"] = json!(hist.percentile(0.99));
    }

    match pipeline {
        Pipeline::Tracing(Finish::Sink(ref guard)) => {
            guard
                .shutdown(Duration::from_secs(10))
                .map_err(|e| format!("shutdown: {e}"))?;
        }
        Pipeline::Tracing(ref mut finish @ Finish::Appender { .. }) => {
            if let Finish::Appender { guard, lines } = std::mem::replace(finish, Finish::Nothing) {
                drop(guard);
                if !lines.wait(Duration::from_secs(10)) {
                    return Err("tracing-appender did not write everything".into());
                }
            }
        }
        _ => {}
    }
    drop(pipeline);
    if v.check != Check::None {
        let check = check_files(dir, 1, (n + n_visible) as usize, v.check)?;
        result["lines"] = json!(check.lines);
        result["expected_lines"] = json!(n + n_visible);
    }
    result["notes"] = json!("");
    Ok(result)
}
