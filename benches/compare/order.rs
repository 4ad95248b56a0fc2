//! **Order**: events that happen-before one another, logged from several threads or tasks;
//! the file is read back and every line that comes after a line it should precede is counted
//! (an inversion).
//! - `ra`/`rb`: a token passed around 4 threads over channels: each logs `id = n`, then
//!   hands `n + 1` to the next thread (200,000 hops), so every event happens-before the next.
//! - `rpa`/`rpb`: the same with 20 µs of work before each event (20,000 hops).
//! - `ta`/`tb`: 200 tokio tasks on a 4-worker runtime, each logging 300 events with
//!   `yield_now()` between them (a task may resume on another worker): inversions within a
//!   task.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{build, Finish, Pipeline, Variant, STEM};

fn ring(hops: u64, work: Duration) {
    let threads = super::THREADS;
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..threads).map(|_| mpsc::channel::<u64>()).unzip();
    std::thread::scope(|s| {
        for (t, rx) in rxs.into_iter().enumerate() {
            let next = txs[(t + 1) % threads].clone();
            s.spawn(move || {
                while let Ok(id) = rx.recv() {
                    let until = Instant::now() + work;
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                    tracing::info!(target: "bench", id, thread = t as u64, "token");
                    if id + 1 == hops {
                        break;
                    }
                    let _ = next.send(id + 1);
                }
            });
        }
        txs[0].send(0).expect("the first thread is waiting");
        drop(txs);
    });
}

fn tasks(count: u64, per_task: u64) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(super::THREADS)
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let handles: Vec<_> = (0..count)
            .map(|task| {
                tokio::spawn(async move {
                    for id in 0..per_task {
                        tracing::info!(target: "bench", id, thread = task, "step");
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    })
}

pub(super) fn child(v: &Variant, dir: &Path) -> Result<Value, String> {
    let (expected, per_thread) = match v.key {
        "ra" | "rb" => (200_000u64, false),
        "rpa" | "rpb" => (20_000, false),
        _ => (200 * 300, true),
    };
    let mut pipeline = build(v.key, dir, expected)?;
    let start = Instant::now();
    match v.key {
        "ra" | "rb" => ring(expected, Duration::ZERO),
        "rpa" | "rpb" => ring(expected, Duration::from_micros(20)),
        _ => tasks(200, 300)?,
    }
    let wall = start.elapsed();
    match pipeline {
        Pipeline::Tracing(Finish::Sink(ref guard)) => guard
            .shutdown(Duration::from_secs(30))
            .map_err(|e| format!("shutdown: {e}"))?,
        Pipeline::Tracing(ref mut finish @ Finish::Appender { .. }) => {
            if let Finish::Appender { guard, lines } = std::mem::replace(finish, Finish::Nothing) {
                drop(guard);
                if !lines.wait(Duration::from_secs(30)) {
                    return Err("tracing-appender did not write everything".into());
                }
            }
        }
        _ => {}
    }
    drop(pipeline);
    let text =
        std::fs::read_to_string(dir.join(format!("{STEM}.log"))).map_err(|e| e.to_string())?;
    let (mut inversions, mut lines) = (0u64, 0u64);
    let mut high: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
        let id = v["fields"]["id"].as_u64().ok_or("no id")?;
        let key = if per_thread {
            v["fields"]["thread"].as_u64().ok_or("no thread")?
        } else {
            0
        };
        let h = high.entry(key).or_insert(0);
        if lines > 0 && id < *h {
            inversions += 1;
        }
        *h = (*h).max(id);
        lines += 1;
    }
    if lines != expected {
        return Err(format!("{lines} lines, {expected} expected"));
    }
    Ok(json!({
        "key": v.key,
        "inversions": inversions,
        "lines": lines,
        "expected_lines": expected,
        "wall_secs": wall.as_secs_f64(),
        "notes": "",
    }))
}
