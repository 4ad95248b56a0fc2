//! The file tells the story in the order it happened: when event A happens-before event B
//! (same thread; or ordered through a channel, an atomic, a join, or a task moving between
//! worker threads), A is in the file before B, across rotation; and the timestamps of the
//! lines in a file never decrease. Default configuration unless a test says otherwise.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tracing_filesink::{FileSink, FileSinkGuard, Rotation};

/// Every line of the stem, in file order across rotation, as JSON.
fn records(dir: &std::path::Path) -> Vec<serde_json::Value> {
    common::all_files_lines(dir, "app")
        .into_iter()
        .flat_map(|(_, lines)| lines)
        .map(|l| common::json(&l))
        .collect()
}

fn field(v: &serde_json::Value, name: &str) -> u64 {
    v["fields"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no field {name} in {v}"))
}

/// Lines that come after a line with a higher `seq` (0 when the file is in `seq` order),
/// and checks that every `seq` below `n` is there exactly once.
fn inversions_of_a_total_order(recs: &[serde_json::Value], n: u64) -> u64 {
    let mut seen = vec![false; n as usize];
    let mut max = None;
    let mut inversions = 0;
    for r in recs {
        let seq = field(r, "seq");
        assert!(seq < n, "seq {seq} out of range");
        assert!(!seen[seq as usize], "seq {seq} written twice");
        seen[seq as usize] = true;
        if max.is_some_and(|m| seq < m) {
            inversions += 1;
        }
        max = max.max(Some(seq));
    }
    let missing = seen.iter().filter(|s| !**s).count();
    assert_eq!(missing, 0, "{missing} events missing");
    inversions
}

/// A token passed around `threads` threads: each logs `seq = n`, then hands `n + 1` to the
/// next over a channel, so every event happens-before the next. `work` is spent between
/// receiving the token and logging (a service's pace rather than a benchmark's).
fn token_ring(rotation: Option<Rotation>, threads: usize, n: u64, work: Duration) -> u64 {
    let tmp = tempfile::tempdir().unwrap();
    let mut builder = FileSink::builder(tmp.path(), "app");
    if let Some(r) = rotation {
        builder = builder.rotation(r);
    }
    let (layer, guard): (_, FileSinkGuard) = builder.build().unwrap();
    let dispatch = common::dispatch(layer);
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..threads).map(|_| mpsc::channel::<u64>()).unzip();
    let handles: Vec<_> = rxs
        .into_iter()
        .enumerate()
        .map(|(t, rx)| {
            let next = txs[(t + 1) % threads].clone();
            let d = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    while let Ok(seq) = rx.recv() {
                        let until = Instant::now() + work;
                        while Instant::now() < until {
                            std::hint::spin_loop();
                        }
                        tracing::info!(seq, thread = t as u64, "token");
                        if seq + 1 == n {
                            break;
                        }
                        // The next thread may have finished already when the ring is done.
                        let _ = next.send(seq + 1);
                    }
                })
            })
        })
        .collect();
    txs[0].send(0).unwrap();
    drop(txs);
    for h in handles {
        h.join().unwrap();
    }
    guard.flush().unwrap();
    let inv = inversions_of_a_total_order(&records(tmp.path()), n);
    guard.shutdown(Duration::from_secs(5)).unwrap();
    inv
}

#[test]
fn a_token_passed_between_threads_is_written_in_the_order_it_travelled() {
    assert_eq!(token_ring(None, 4, 40_000, Duration::ZERO), 0);
}

#[test]
fn a_token_passed_at_a_services_pace_is_written_in_order() {
    assert_eq!(token_ring(None, 4, 5_000, Duration::from_micros(20)), 0);
}

#[test]
fn the_order_holds_across_size_rotation() {
    let inversions = token_ring(Some(Rotation::size(64 * 1024)), 4, 20_000, Duration::ZERO);
    assert_eq!(inversions, 0);
}

#[test]
fn tokio_tasks_moving_between_workers_keep_their_order() {
    const TASKS: u64 = 200;
    const PER_TASK: u64 = 300;
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app").build().unwrap();
    let dispatch = common::dispatch(layer);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let d = dispatch.clone();
                tokio::spawn(async move {
                    for seq in 0..PER_TASK {
                        // The task may resume on another worker after every await.
                        tracing::dispatcher::with_default(&d, || {
                            tracing::info!(task, seq, "step");
                        });
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    drop(rt);
    guard.flush().unwrap();
    let mut next = vec![0u64; TASKS as usize];
    let mut out_of_order = 0;
    for r in records(tmp.path()) {
        let (task, seq) = (field(&r, "task") as usize, field(&r, "seq"));
        if seq != next[task] {
            out_of_order += 1;
        }
        next[task] = next[task].max(seq + 1);
    }
    assert_eq!(out_of_order, 0, "events of a task out of order or missing");
    assert!(next.iter().all(|&n| n == PER_TASK), "events missing");
}

#[test]
fn an_event_logged_before_a_signal_comes_before_the_event_the_signal_causes() {
    const ROUNDS: u64 = 20_000;
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app").build().unwrap();
    let dispatch = common::dispatch(layer);
    let flag = Arc::new(AtomicU64::new(0));
    let (d, f) = (dispatch.clone(), flag.clone());
    let b = std::thread::spawn(move || {
        tracing::dispatcher::with_default(&d, || {
            for round in 1..=ROUNDS {
                while f.load(Ordering::Acquire) < round {
                    std::hint::spin_loop();
                }
                tracing::info!(round, side = "b", "caused");
            }
        })
    });
    tracing::dispatcher::with_default(&dispatch, || {
        for round in 1..=ROUNDS {
            tracing::info!(round, side = "a", "cause");
            flag.store(round, Ordering::Release);
        }
    });
    b.join().unwrap();
    guard.flush().unwrap();
    let mut a_seen = vec![false; ROUNDS as usize + 1];
    let mut b_count = 0;
    for r in records(tmp.path()) {
        let round = field(&r, "round") as usize;
        match r["fields"]["side"].as_str() {
            Some("a") => a_seen[round] = true,
            Some("b") => {
                assert!(
                    a_seen[round],
                    "round {round}: the effect came before its cause"
                );
                b_count += 1;
            }
            other => panic!("unexpected side {other:?}"),
        }
    }
    assert_eq!(b_count, ROUNDS);
    assert!(a_seen[1..].iter().all(|s| *s));
}

#[test]
fn timestamps_never_decrease_in_a_file_while_threads_log_at_full_speed() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 50_000;
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app").build().unwrap();
    let dispatch = common::dispatch(layer);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let d = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for seq in 0..PER_THREAD {
                        tracing::info!(t, seq, "busy");
                    }
                })
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    guard.flush().unwrap();
    let recs = records(tmp.path());
    assert_eq!(recs.len() as u64, THREADS * PER_THREAD);
    // RFC 3339 in UTC with a fixed number of digits: text order is time order.
    let mut decreases = 0;
    let mut prev = String::new();
    let mut next = vec![0u64; THREADS as usize];
    for r in &recs {
        let ts = r["timestamp"].as_str().unwrap().to_owned();
        assert_eq!(ts.len(), 27, "{ts}");
        if ts < prev {
            decreases += 1;
        }
        prev = ts;
        let (t, seq) = (field(r, "t") as usize, field(r, "seq"));
        assert_eq!(seq, next[t], "thread {t} out of order");
        next[t] += 1;
    }
    assert_eq!(decreases, 0, "timestamps went back {decreases} times");
}
