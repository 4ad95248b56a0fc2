//! Rate limits per callsite and the backtrace on error (level-aware shedding, which needs a
//! slow disk, is tested inside the crate: `src/shedding_tests.rs`).

mod common;

use std::time::Duration;

use tracing::level_filters::LevelFilter;
use tracing::Dispatch;
use tracing_filesink::{Backtrace, FileSink, Format, RateLimit};
use tracing_subscriber::prelude::*;

const THREADS: u64 = 4;

fn json_lines(dir: &std::path::Path) -> Vec<serde_json::Value> {
    common::lines(&common::read_active(dir, "app"), "app.log")
        .iter()
        .map(|l| common::json(l))
        .collect()
}

/// One callsite in a hot loop and a normal one beside it, from 4 threads: the normal one
/// loses nothing, and every hot event is either in the file or counted by a report.
#[test]
fn a_hot_callsite_is_limited_and_its_counts_add_up() {
    const HOT: u64 = 200_000;
    const EVERY: u64 = 20_000;
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app")
        .rate_limit(RateLimit::per_callsite(1000, Duration::from_millis(100)))
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let d = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for i in 0..HOT {
                        tracing::info!(t, i, "hot");
                        if i % EVERY == 0 {
                            tracing::info!(t, i, "normal");
                        }
                    }
                })
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    guard.shutdown(Duration::from_secs(10)).unwrap();
    let stats = guard.stats();
    let (mut hot, mut normal, mut reported, mut reports) = (0, 0, 0, 0);
    for v in json_lines(tmp.path()) {
        let message = v["fields"]["message"].as_str().unwrap_or_default();
        match message {
            "hot" => hot += 1,
            "normal" => normal += 1,
            m if m.starts_with("events suppressed by the rate limit") => {
                assert!(m.contains("under_pressure.rs"), "names the callsite: {m}");
                assert_eq!(v["fields"]["interval_ms"], 100, "{v}");
                reported += v["fields"]["suppressed"].as_u64().unwrap();
                reports += 1;
            }
            other => panic!("unexpected record {other:?}: {v}"),
        }
    }
    assert_eq!(
        normal,
        THREADS * HOT / EVERY,
        "the normal callsite lost nothing"
    );
    assert!(stats.events_rate_limited > 0, "{stats:?}");
    assert!(
        hot < THREADS * HOT,
        "the hot callsite was limited: {stats:?}"
    );
    assert_eq!(
        hot + reported,
        THREADS * HOT,
        "logged = written + reported: {stats:?}"
    );
    assert_eq!(reported, stats.events_rate_limited, "{stats:?}");
    assert!(reports >= 1, "{stats:?}");
    assert_eq!(stats.events_dropped, 0, "{stats:?}");
}

fn backtrace_sink(
    dir: &std::path::Path,
    backtrace: Backtrace,
    format: Format,
) -> (Dispatch, tracing_filesink::FileSinkGuard) {
    let (layer, guard) = FileSink::builder(dir, "app")
        .format(format)
        .backtrace(backtrace)
        .build()
        .unwrap();
    let filter = layer.backtrace_filter(LevelFilter::INFO);
    (
        Dispatch::new(tracing_subscriber::registry().with(layer.with_filter(filter))),
        guard,
    )
}

/// Each of 4 threads logs 10 DEBUG records (below the sink's INFO filter), an INFO, then
/// an ERROR: each ERROR is preceded, among its thread's records, by exactly that thread's
/// last 4 DEBUG, in order and marked; a fifth thread logs DEBUG only and adds nothing.
#[test]
fn an_error_is_preceded_by_its_threads_last_debug_records() {
    const KEEP: usize = 4;
    let tmp = tempfile::tempdir().unwrap();
    let (dispatch, guard) = backtrace_sink(tmp.path(), Backtrace::last(KEEP), Format::Json);
    let handles: Vec<_> = (0..=THREADS)
        .map(|t| {
            let d = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for i in 0..10u64 {
                        tracing::debug!(t, i, "step");
                    }
                    if t < THREADS {
                        tracing::info!(t, "accepted");
                        tracing::error!(t, "failed");
                    }
                })
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    guard.shutdown(Duration::from_secs(10)).unwrap();
    let stats = guard.stats();
    let lines = json_lines(tmp.path());
    for t in 0..=THREADS {
        let mine: Vec<_> = lines.iter().filter(|v| v["fields"]["t"] == t).collect();
        let summary: Vec<String> = mine
            .iter()
            .map(|v| {
                format!(
                    "{} {} {}{}",
                    v["level"].as_str().unwrap(),
                    v["fields"]["message"].as_str().unwrap(),
                    v["fields"]["i"],
                    if v["backtrace"] == true { " bt" } else { "" }
                )
            })
            .collect();
        let want: Vec<String> = if t == THREADS {
            Vec::new()
        } else {
            let mut w = vec!["INFO accepted null".to_string()];
            w.extend((10 - KEEP as u64..10).map(|i| format!("DEBUG step {i} bt")));
            w.push("ERROR failed null".to_string());
            w
        };
        assert_eq!(summary, want, "thread {t}");
    }
    assert_eq!(stats.backtrace_records, THREADS * KEEP as u64, "{stats:?}");
    assert_eq!(
        stats.backtrace_bytes, 0,
        "rings freed with their threads: {stats:?}"
    );
}

/// Text and logfmt mark backtrace records with `backtrace=true` at the end of the line.
#[test]
fn text_and_logfmt_mark_backtrace_records() {
    for format in [Format::Text, Format::Logfmt] {
        let tmp = tempfile::tempdir().unwrap();
        let (dispatch, guard) = backtrace_sink(tmp.path(), Backtrace::last(2), format);
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::debug!(i = 1, "step");
            tracing::error!("failed");
        });
        // This thread's ring keeps its buffers for the next records.
        assert!(guard.stats().backtrace_bytes > 0, "{:?}", guard.stats());
        guard.shutdown(Duration::from_secs(10)).unwrap();
        let lines = common::lines(&common::read_active(tmp.path(), "app"), "app.log");
        assert_eq!(lines.len(), 2, "{format:?}: {lines:?}");
        assert!(
            lines[0].contains("DEBUG") && lines[0].ends_with(" backtrace=true"),
            "{format:?}: {lines:?}"
        );
        assert!(
            lines[1].contains("ERROR") && !lines[1].contains("backtrace"),
            "{format:?}: {lines:?}"
        );
    }
}

/// With the backtrace off, the wrapped filter is the filter: DEBUG stays out, and nothing
/// is kept.
#[test]
fn with_the_backtrace_off_the_filter_is_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let (dispatch, guard) = backtrace_sink(tmp.path(), Backtrace::off(), Format::Json);
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::debug!("step");
        tracing::error!("failed");
    });
    guard.shutdown(Duration::from_secs(10)).unwrap();
    let lines = json_lines(tmp.path());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(guard.stats().backtrace_bytes, 0);
}

/// The three settings read from a configuration file and from strings, and `build()`
/// refuses values that cannot mean what they seem, naming the setting.
#[cfg(feature = "serde")]
#[test]
fn the_settings_read_from_toml_and_are_checked() {
    use tracing_filesink::{ErrorKind, FileSinkConfig, Shedding};
    let tmp = tempfile::tempdir().unwrap();
    let mut c: FileSinkConfig = toml::from_str(&format!(
        "dir = {:?}\nstem = \"app\"\nshedding = \"below warn at 90%\"\n\
         rate_limit = \"100 per 1 s\"\nbacktrace = \"last 16\"\n",
        tmp.path()
    ))
    .unwrap();
    assert_eq!(
        c.shedding,
        Some(Shedding::below(tracing::Level::WARN).when_fuller_than(90))
    );
    assert_eq!(
        c.rate_limit,
        Some(RateLimit::per_callsite(100, Duration::from_secs(1)))
    );
    assert_eq!(c.backtrace, Some(Backtrace::last(16)));
    c.set("backtrace", "last 4 from trace").unwrap();
    assert_eq!(
        c.backtrace,
        Some(Backtrace::last(4).at_or_above(tracing::Level::TRACE))
    );
    let (_layer, guard) = c.builder().build().unwrap();
    guard.shutdown(Duration::from_secs(5)).unwrap();

    for (key, value) in [
        ("shedding", "below trace"),
        ("shedding", "below info at 100%"),
        ("rate_limit", "0 per 1 s"),
        ("backtrace", "last 0"),
        ("backtrace", "last 5000"),
    ] {
        let mut c = c.clone();
        c.set(key, value).unwrap();
        let e = c.builder().build().expect_err(value);
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
        assert_eq!(e.setting(), Some(key), "{e}");
    }
}
