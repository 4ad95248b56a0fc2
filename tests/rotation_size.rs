//! Size rotation: the active file is finished before a record would push it past the limit.
//! Under 8 logging threads nothing is lost, duplicated or split; every segment is within the
//! limit (a lone oversized record gets a segment of its own); names sort in write order; and
//! each thread's order holds across segments.

mod common;

use std::time::Duration;

use tracing_filesink::{FileSink, ManualClock, Rotation};

const THREADS: u64 = 8;
const PER_THREAD: u64 = 5_000;
const LIMIT: u64 = 64 * 1024;

#[test]
fn eight_threads_under_size_rotation() {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app")
        .rotation(Rotation::size(LIMIT))
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let d = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for seq in 0..PER_THREAD {
                        // Varying lengths, so segment ends fall at every possible offset.
                        let pad = "x".repeat((seq * 7 + t) as usize % 200);
                        tracing::info!(thread = t, seq, pad, "rotating");
                    }
                })
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    guard.flush().unwrap();
    let stats = guard.stats();

    let segs = common::segments(tmp.path(), "app");
    assert!(
        segs.len() >= 10,
        "expected many rotations, got {}",
        segs.len()
    );
    assert_eq!(stats.rotations, segs.len() as u64);
    // Names sort in write order: sorted as strings, sequence numbers strictly increase and
    // start times never go back.
    for w in segs.windows(2) {
        assert!(
            w[0].seq < w[1].seq,
            "{} sorts before {}",
            w[0].name,
            w[1].name
        );
        assert!(w[0].label <= w[1].label, "{} then {}", w[0].name, w[1].name);
    }
    assert!(segs.iter().all(|s| !s.gz));

    let mut next = vec![0u64; THREADS as usize];
    let mut total = 0u64;
    for (name, lines) in common::all_files_lines(tmp.path(), "app") {
        let size = std::fs::metadata(tmp.path().join(&name)).unwrap().len();
        let is_active = name == "app.log";
        assert!(
            size <= LIMIT || lines.len() == 1,
            "{name}: {size} bytes in {} records, over the {LIMIT}-byte limit",
            lines.len()
        );
        if !is_active {
            // Full enough: the next record would not have fit (records are < 400 bytes).
            assert!(size > LIMIT - 400, "{name} rotated early at {size} bytes");
        }
        for l in &lines {
            let v = common::json(l);
            let t = v["fields"]["thread"].as_u64().unwrap() as usize;
            let seq = v["fields"]["seq"].as_u64().unwrap();
            assert_eq!(
                seq, next[t],
                "thread {t} in {name}: lost, duplicated or reordered"
            );
            next[t] += 1;
            total += 1;
        }
    }
    assert_eq!(total, THREADS * PER_THREAD);
    assert_eq!(stats.events_dropped, 0);
    // Nothing but the sink's own files.
    for n in common::file_names(tmp.path()) {
        assert!(
            n == "app.log"
                || n == "app.log.lock"
                || common::parse_segment_name("app", &n).is_some(),
            "unexpected file {n}"
        );
    }
}

/// The length of one record logged with `msg` at a stopped clock, measured on a sink of
/// its own: every such record has this length.
fn record_len(clock: &ManualClock, msg: &str) -> u64 {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "probe")
        .clock(clock.clone())
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&common::dispatch(layer), || tracing::info!("{msg}"));
    guard.flush().unwrap();
    common::read_active(tmp.path(), "probe").len() as u64
}

fn log_n(guard: &tracing_filesink::FileSinkGuard, d: &tracing::Dispatch, n: usize) {
    tracing::dispatcher::with_default(d, || {
        for i in 0..n {
            tracing::info!("{}", format!("record {i:04}"));
        }
    });
    guard.flush().unwrap();
}

/// A limit of exactly k records holds k records; one byte less holds k - 1.
#[test]
fn limit_is_exact_to_the_byte() {
    let clock = ManualClock::new(common::at("2026-11-26T03:14:48Z"));
    let len = record_len(&clock, "record 0000");
    for (limit, per_segment) in [(3 * len, 3), (3 * len - 1, 2), (len, 1)] {
        let tmp = tempfile::tempdir().unwrap();
        let (layer, guard) = FileSink::builder(tmp.path(), "app")
            .clock(clock.clone())
            .rotation(Rotation::size(limit))
            .build()
            .unwrap();
        log_n(&guard, &common::dispatch(layer), 10);
        let files = common::all_files_lines(tmp.path(), "app");
        let counts: Vec<usize> = files.iter().map(|(_, l)| l.len()).collect();
        // Rotation happens before the record that would not fit: the last group, full or
        // not, is still the active file.
        let expected: Vec<usize> = (0..10)
            .collect::<Vec<_>>()
            .chunks(per_segment)
            .map(<[_]>::len)
            .collect();
        assert_eq!(counts, expected, "limit {limit} with {len}-byte records");
        let all: Vec<String> = files
            .iter()
            .flat_map(|(_, l)| {
                l.iter()
                    .map(|l| common::json(l)["fields"]["message"].to_string())
            })
            .collect();
        let want: Vec<String> = (0..10).map(|i| format!("\"record {i:04}\"")).collect();
        assert_eq!(all, want);
    }
}

/// A record larger than the limit is never split and gets a segment to itself.
#[test]
fn oversized_record_gets_a_segment_of_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app")
        .rotation(Rotation::size(1000))
        .build()
        .unwrap();
    let d = common::dispatch(layer);
    let big = "B".repeat(5000);
    tracing::dispatcher::with_default(&d, || {
        // An oversized record into the fresh, empty file.
        tracing::info!(n = 0, "{big}");
        for n in 1..=3 {
            tracing::info!(n, "small");
        }
        tracing::info!(n = 4, "{big}");
        tracing::info!(n = 5, "{big}");
        tracing::info!(n = 6, "small");
    });
    guard.flush().unwrap();
    let files = common::all_files_lines(tmp.path(), "app");
    let ns: Vec<Vec<u64>> = files
        .iter()
        .map(|(_, lines)| {
            lines
                .iter()
                .map(|l| common::json(l)["fields"]["n"].as_u64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        ns,
        vec![vec![0], vec![1, 2, 3], vec![4], vec![5], vec![6]],
        "{files:#?}"
    );
    for (name, lines) in &files {
        for l in lines {
            let m = common::json(l)["fields"]["message"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(
                m == big || m == "small",
                "{name}: a record was cut: {m:.40}"
            );
        }
    }
}

/// Size and time triggers combined with `or`: whichever comes first.
#[test]
fn size_or_time() {
    let clock = ManualClock::new(common::at("2026-11-26T03:14:48Z"));
    let len = record_len(&clock, "record 0000");
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app")
        .clock(clock.clone())
        .rotation(Rotation::size(2 * len).or(Rotation::hourly()))
        .build()
        .unwrap();
    let d = common::dispatch(layer);
    log_n(&guard, &d, 3); // size: [2] + active [1]
    clock.set(common::at("2026-11-26T04:00:00Z"));
    guard.flush().unwrap(); // time: the lone record is finished
    log_n(&guard, &d, 1);
    let counts: Vec<usize> = common::all_files_lines(tmp.path(), "app")
        .iter()
        .map(|(_, l)| l.len())
        .collect();
    assert_eq!(counts, vec![2, 1, 1]);
    guard.shutdown(Duration::from_secs(5)).unwrap();
}
